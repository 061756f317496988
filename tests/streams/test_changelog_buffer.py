"""``APPEALS_CHANGELOG_BUFFER``: how many table changelog records may wait before streams pause.

Faust's fixed 100 was less than one SLA batch writes, so under load every stream paused and
Faust logged "producer buffer full" ~15 times a second (issue 7). The pause itself stays (it
bounds memory); only its threshold is ours.
"""

from __future__ import annotations

import pytest

from streams.app import create_app
from streams.settings import ConfigError, Settings


def test_the_app_pauses_streams_only_past_the_configured_changelog_queue() -> None:
    assert Settings().changelog_buffer == 4096
    app = create_app(Settings(app_id="changelog-buffer-test", changelog_buffer=250))
    assert app.producer.buffer.max_messages == 250


def test_a_queue_smaller_than_fausts_own_is_refused() -> None:
    with pytest.raises(ConfigError, match="APPEALS_CHANGELOG_BUFFER"):
        Settings(changelog_buffer=99)
