"""Settings that each pass their own range check but cannot run together, or that Kafka refuses
(streams.settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import create_app, heartbeat_interval
from streams.settings import ConfigError, Settings


def test_no_linger_without_natural_batches_is_refused() -> None:
    """With APPEALS_BATCH_LINGER=0 Faust's take_events has no time bound: without natural
    batches a partial batch waited for APPEALS_BATCH_SIZE events and agents stalled."""
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_BATCH_LINGER": "0", "APPEALS_NATURAL_BATCHES": "false"})
    message = str(exc.value)
    assert message.startswith("APPEALS_BATCH_LINGER ") and "APPEALS_NATURAL_BATCHES" in message
    with pytest.raises(ConfigError):
        Settings().replace(natural_batches=False, batch_linger=0.0)
    # Each half on its own is fine: natural batches go when nothing more is waiting.
    assert Settings.load({"APPEALS_BATCH_LINGER": "0"}).batch_linger == 0.0
    assert not Settings.load({"APPEALS_NATURAL_BATCHES": "false"}).natural_batches


@pytest.mark.parametrize("raw", ["1", "5.9"])
def test_a_session_shorter_than_kafkas_minimum_is_refused(raw: str) -> None:
    """Apache Kafka refuses sessions below group.min.session.timeout.ms (6 s by default): the
    worker started and then failed to join its group."""
    with pytest.raises(ConfigError, match=r"^APPEALS_SESSION_TIMEOUT must be at least 6 s "):
        Settings.load({"APPEALS_SESSION_TIMEOUT": raw})
    assert Settings.load({"APPEALS_SESSION_TIMEOUT": "6"}).session_timeout == 6.0


@pytest.mark.parametrize("session", [6.0, 10.0, 45.0, 300.0])
def test_the_heartbeat_stays_below_a_third_of_the_session(session: float,
                                                          tmp_path: Path) -> None:
    app = create_app(Settings(session_timeout=session, data_dir=str(tmp_path)))
    assert app.conf.broker_session_timeout == session
    assert 1.0 <= app.conf.broker_heartbeat_interval < session / 3


def test_the_heartbeat_rule_holds_for_any_session() -> None:
    """The 1 s floor made the heartbeat equal a 1 s session; the rule itself holds below the
    settings' minimum too."""
    for session in (0.5, 1.0, 2.0, 3.0, 5.0, 6.0, 7.5):
        assert heartbeat_interval(session) < session / 3
