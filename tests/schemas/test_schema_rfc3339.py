"""``date-time`` is RFC 3339 section 5.6, not whatever ``datetime.fromisoformat`` reads.

The hot path checked ``date-time`` with ``fromisoformat`` (ISO 8601, much wider), so a
lifecycle event or an intake record a non-Python reader of the same schema refuses was accepted:
a space for the ``T``, the basic format, week and ordinal dates, no seconds, a comma fraction,
an offset with seconds. A triaged ``at`` so spelt went verbatim into a triage-feedback
``decided_at``, and an intake ``submitted_at`` without seconds (the pattern allowed it) into a
registered record its own schema refuses. RFC 3339 also allows a lowercase ``t`` and ``z``,
which were refused. A leap second (``:60``) is refused with a message saying why.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

import schemas.validation as V
import workers.intake.adapters  # noqa: F401  (registers the channel adapters)
from schemas.records import SourcePosition
from schemas.validation import InvalidEvent, is_datetime, load_schema, validate
from workers.intake.core import intake_from_dict, register
from workers.route import agent as route_agent
from workers.sla.engine import event_time


def _event(at: str) -> dict[str, object]:
    return {"schema_version": 1, "event_id": "e-1", "appeal_id": "a" * 24,
            "event": "answered", "at": at}


NOT_RFC3339 = [
    "2026-11-25 10:00:00+07:00",          # space for the T
    "20261125T100000+0700",               # ISO 8601 basic format
    "2026-W48-3T10:00:00+07:00",          # week date
    "2026-329T10:00:00Z",                 # ordinal date
    "2026-11-25T10+07:00",                # hour alone
    "2026-11-25T10:00+07:00",             # no seconds
    "2026-11-25T10:00:00,5+07:00",        # comma fraction
    "2026-11-25T10:00:00+07:00:30",       # offset with seconds
    "2026-11-25T10:00:00+0700",           # offset without its colon
    "2026-11-25T10:00:00.+07:00",         # a point and no digits
    "2026-11-25T10:00:00+07:00\n",        # a trailing newline
    "2026-11-25T24:00:00Z",               # hour 24
    "2026-02-30T10:00:00Z",               # no such day
    "2026-11-25T10:00:00+24:00",          # no such offset
    "2026-11-25T10:00:00+03:60",          # offset minutes 60 (was read as +04:00)
    "2026-11-25T10:00:00+03:99",          # offset minutes 99 (was read as +04:39)
    "2026-11-25T10:00:00-05:75",          # offset minutes 75 (was read as -06:15)
]


@pytest.mark.parametrize("at", NOT_RFC3339)
def test_iso_8601_that_is_not_rfc_3339_is_refused(at: str) -> None:
    assert not is_datetime(at)
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", _event(at))
    assert info.value.reason == "invalid_value"
    assert info.value.detail.startswith("data.at ")


@pytest.mark.parametrize("at", ["2026-11-25t10:00:00z", "2026-11-25T10:00:00z",
                                "2026-11-25t10:00:00+07:00",
                                "2026-11-25T10:00:00.123456789+07:00"])
def test_rfc_3339_spellings_are_accepted_and_read(at: str) -> None:
    validate("lifecycle-event", _event(at))
    moment = V.parse_datetime(at)
    assert moment.utcoffset() is not None
    assert event_time(_event(at)) == moment.timestamp()  # the SLA engine reads it too


def test_a_leap_second_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", _event("2026-12-31T23:59:60Z"))
    assert info.value.reason == "invalid_value"
    assert "leap second" in info.value.detail and "data.at" in info.value.detail
    # not every second 60 is a leap second: a malformed one keeps the plain message
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", _event("2026-12-31T23:60:60Z"))
    assert "leap second" not in info.value.detail


@pytest.mark.parametrize("schema", ["intake-appeal", "registered-appeal"])
def test_the_submitted_at_pattern_needs_seconds(schema: str) -> None:
    """The pattern is what a producer whose validator skips ``format`` checks (JSON Schema
    2020-12 makes ``format`` an annotation by default) relies on."""
    pattern = re.compile(load_schema(schema)["properties"]["submitted_at"]["pattern"])
    assert not pattern.search("2026-11-25T10:00+07:00")
    assert not pattern.search("2026-11-25 10:00:00+07:00")
    assert pattern.search("2026-11-25T10:00:00+07:00")
    assert pattern.search("2026-11-25t10:00:00.5z")


@pytest.mark.parametrize("schema", ["intake-appeal", "registered-appeal"])
def test_the_submitted_at_pattern_keeps_the_offset_in_range(schema: str) -> None:
    """RFC 3339 ``time-numoffset``: hours 00-23, minutes 00-59."""
    pattern = re.compile(load_schema(schema)["properties"]["submitted_at"]["pattern"])
    for offset in ("+03:60", "+03:99", "-05:75", "+24:00", "+99:00"):
        assert not pattern.search(f"2026-11-25T10:00:00{offset}"), offset
    for offset in ("+00:00", "-00:00", "+05:45", "+23:59", "-12:00", "+14:00"):
        assert pattern.search(f"2026-11-25T10:00:00{offset}"), offset
        assert is_datetime(f"2026-11-25T10:00:00{offset}"), offset


CANONICAL = {"schema_version": 1, "channel": "pos", "external_id": "pos-1",
             "submitted_at": "2026-11-25T10:00:00+07:00", "region": "22",
             "text": "Во дворе не вывозят мусор"}


def test_a_canonical_submitted_at_without_seconds_is_refused_at_intake() -> None:
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(dict(CANONICAL, submitted_at="2026-11-25T10:00+07:00"))
    assert "submitted_at" in info.value.detail


def test_a_canonical_submitted_at_with_offset_minutes_over_59_is_refused_at_intake() -> None:
    """``+03:99`` was registered verbatim and read as +04:39."""
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(dict(CANONICAL, submitted_at="2026-11-25T10:00:00+03:99"))
    assert info.value.reason == "invalid_value" and "submitted_at" in info.value.detail


def test_an_accepted_intake_record_registers_valid() -> None:
    appeal = intake_from_dict(dict(CANONICAL, submitted_at="2026-11-25t03:00:00z"))
    registered = register(appeal, registered_at=dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC),
                          source=SourcePosition("appeals.intake.pos", 0, 1))
    validate("registered-appeal", registered.to_dict())


def test_native_adapters_still_read_other_spellings_and_emit_rfc_3339() -> None:
    """Only the canonical fields are strict: a channel adapter reads its source's own
    spellings (a space for the T, no seconds, e-mail dates) and writes RFC 3339."""
    appeal = intake_from_dict({"channel": "email", "message_id": "<m-1@example.org>",
                               "from": "a@example.org", "body": "Нет воды",
                               "received": "2025-01-15 12:00", "region": "22"})
    assert is_datetime(appeal.submitted_at)


@pytest.mark.parametrize("at", ["2026-11-25 10:00:00+07:00", "20261125T100000+0700"])
def test_a_decision_time_that_is_not_rfc_3339_is_not_copied_into_feedback(at: str) -> None:
    decided = route_agent._decided_at(at)
    assert decided != at and is_datetime(decided)
