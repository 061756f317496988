"""Settings that each pass their own range check but cannot run together, or that Kafka refuses
(streams.settings)."""

from __future__ import annotations

import pytest

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
