"""An existing per-appeal topic with another partition count stops start-up (streams.topics).

The SLA agent reads the per-appeal topics as one co-partitioned stream: an older deployment's
4-partition ``appeals.routed`` next to 8-partition topics put an appeal's events on partitions
that do not line up, and ``ensure_topics`` (whose docstring promised a check) said nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from streams import topics as t
from streams.settings import ConfigError
from streams.testing import isolated_settings
from workers import cli

pytestmark = pytest.mark.integration


def _create(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def test_a_per_appeal_topic_with_another_count_is_a_config_error(broker: Any) -> None:
    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=8)
    routed = t.topic_name(settings, t.ROUTED)
    _create(broker.bootstrap, routed, 4)
    with pytest.raises(ConfigError) as info:
        t.ensure_topics(settings, timeout=10)
    message = str(info.value)
    assert routed in message and "4" in message and "8" in message
    assert "APPEALS_PARTITIONS" in message


def test_matching_counts_pass_and_other_topics_only_warn(broker: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=4)
    deadletter = t.topic_name(settings, t.DEADLETTER)  # original keys: not co-partitioned
    _create(broker.bootstrap, deadletter, 2)
    _create(broker.bootstrap, t.topic_name(settings, t.ROUTED), 4)
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        created = t.ensure_topics(settings, timeout=10)
    assert t.topic_name(settings, t.LIFECYCLE) in created
    assert any(deadletter in r.getMessage() for r in caplog.records)
    assert t.ensure_topics(settings, timeout=10) == []  # all there now, all the same count


def test_topics_create_reports_it_in_one_line(broker: Any, capsys: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=8)
    _create(broker.bootstrap, t.topic_name(settings, t.SLA_TICKS), 3)
    monkeypatch.setenv("APPEALS_KAFKA", broker.url)
    monkeypatch.setenv("APPEALS_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("APPEALS_PARTITIONS", "8")
    rc = cli.main(["topics", "create"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "configuration error" in err and "APPEALS_PARTITIONS is 8" in err
    assert "Traceback" not in err
