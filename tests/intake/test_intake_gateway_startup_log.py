"""`appeals gateway` says where it listens and keeps the Kafka clients' INFO chatter out
(review of the CLI, D5: no line named the port, and ~19 kafka-python INFO lines came first)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from streams.settings import Settings
from workers.intake import gateway


@pytest.fixture
def kafka_loggers() -> Iterator[None]:
    names = ("kafka", "aiokafka")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_the_gateway_logs_its_address_and_quiets_kafka(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        kafka_loggers: None) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(gateway.web, "run_app", lambda _app, **kw: served.append(kw))
    monkeypatch.setenv("APPEALS_GATEWAY_TOKENS", "c1:secret-token-1")
    caplog.set_level(logging.INFO)
    gateway.run_gateway(Settings(), host="127.0.0.1", port=18084)
    assert served and (served[0]["host"], served[0]["port"]) == ("127.0.0.1", 18084)
    assert "gateway on http://127.0.0.1:18084/" in caplog.messages
    assert logging.getLogger("kafka").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("aiokafka").getEffectiveLevel() >= logging.WARNING
