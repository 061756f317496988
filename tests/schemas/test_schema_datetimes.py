"""``date-time`` fields need a UTC offset (RFC 3339), or the reader's time zone decides.

The SLA engine turns a lifecycle event's ``at`` into an instant with ``.timestamp()``: a naive
``at`` would be read in each worker host's own zone. Such an event is refused at validation
(dead-lettered by the SLA agent with ``invalid_value``).
"""

from __future__ import annotations

import pytest

from schemas.validation import InvalidEvent, validate


def _event(at: str) -> dict[str, object]:
    return {"schema_version": 1, "event_id": "e-1", "appeal_id": "a" * 24,
            "event": "answered", "at": at}


@pytest.mark.parametrize("at", ["2026-11-25T10:00:00+07:00", "2026-11-25T03:00:00Z",
                                "2026-11-25T03:00:00.123+00:00"])
def test_aware_lifecycle_timestamps_are_valid(at: str) -> None:
    validate("lifecycle-event", _event(at))


@pytest.mark.parametrize("at", ["2026-11-25T10:00:00", "2026-11-25", "2026-11-25 10:00",
                                "\u0662026-11-25T10:00:00+07:00", "вчера"])
def test_naive_or_malformed_lifecycle_timestamps_are_refused(at: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", _event(at))
    assert info.value.reason == "invalid_value"
    assert "at" in info.value.detail
