"""``date-time`` fields need a UTC offset (RFC 3339), or the reader's time zone decides.

The SLA engine turns a lifecycle event's ``at`` into an instant with ``.timestamp()``: a naive
``at`` would be read in each worker host's own zone. Such an event is refused at validation
(dead-lettered by the SLA agent with ``invalid_value``). A well-formed moment outside the years
``MIN_YEAR``..``MAX_YEAR`` is refused as ``bad_timestamp``.
"""

from __future__ import annotations

import pytest

from schemas.validation import MAX_YEAR, MIN_YEAR, InvalidEvent, validate


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


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+00:00", "1999-12-31T23:59:59Z",
                                "2000-01-01T00:30:00+01:00",  # 1999 in UTC
                                "2100-01-01T00:00:00Z", "9999-12-20T00:00:00+00:00",
                                "9999-12-31T23:00:00-05:00"])  # year 10000 in UTC
def test_moments_outside_the_plausible_years_are_bad_timestamps(at: str) -> None:
    """RFC 3339 allows years 1..9999: an answer dated year 1 counted as on time, and a
    redirect dated 9999 overflowed the deadline arithmetic and ended the SLA worker."""
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", _event(at))
    assert info.value.reason == "bad_timestamp"
    assert info.value.detail.startswith("data.at ")  # the field, as intake's gateway reads it
    assert repr(at) in info.value.detail


@pytest.mark.parametrize("at", [f"{MIN_YEAR}-01-01T00:00:00Z",
                                f"{MIN_YEAR}-01-01T06:00:00+05:00",
                                f"{MAX_YEAR}-12-31T23:59:59.999+00:00",
                                f"{MAX_YEAR + 1}-01-01T03:00:00+07:00"])  # MAX_YEAR in UTC
def test_moments_within_the_plausible_years_are_valid(at: str) -> None:
    validate("lifecycle-event", _event(at))


def test_every_date_time_field_has_the_range() -> None:
    routed = {"schema_version": 1, "appeal_id": "a" * 24, "regime": "fz59", "region": "22",
              "registered_at": "9999-12-20T00:00:00+00:00", "category": "roads",
              "urgent": False, "confidence": 0.9, "authority_id": "22-mintrans",
              "routing_level": "region", "rule_version": "t",
              "routed_at": "2026-11-25T03:00:00Z"}
    with pytest.raises(InvalidEvent) as info:
        validate("routed-appeal", routed)
    assert info.value.reason == "bad_timestamp" and "registered_at" in info.value.detail
