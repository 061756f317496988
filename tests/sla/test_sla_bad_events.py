"""Bad events at the SLA agent: dead-lettered with a reason, and the stream goes on.

These drive the agent's handling of one event (``agent._handle``) with a stand-in runtime and
outbox, so the engine's failures can be provoked at will: the deadline rules below overflow for
periods that start after 2030, as the real calendar's arithmetic did for year 9999 (the schema
now refuses such dates before they get here; these pin what happens if anything else raises).
The running worker is tested with the same inputs in ``test_sla_poison_inputs.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from monitoring import metrics
from schemas.validation import InvalidEvent
from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import (
    DAY,
    EXTERNAL,
    INTERNAL,
    ROUTED,
    TICKS,
    fixed_clock,
    stand_in_runtime,
)
from workers.sla import agent as sla_agent
from workers.sla.engine import SlaRules, State

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)
LIMIT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
#: The SLA clock of the stand-in runtime: after every event these tests send (``LATE``
#: included), so none is refused as stamped in the future (``agent._check_not_ahead``).
NOW = dt.datetime(2032, 1, 1, tzinfo=dt.UTC)
APPEAL = "a" * 24


def _due(regime: str, start: float, *_: Any) -> float:
    """Ten days, except that it overflows beyond 2030 (as the calendar did beyond 9999)."""
    if start >= LIMIT:
        raise OverflowError("date value out of range")
    return start + 10 * DAY


def _runtime(table: dict[bytes, Any] | None = None) -> Any:
    return stand_in_runtime(
        clock=fixed_clock(NOW.timestamp()), table=table, settings=Settings(),
        rules=SlaRules(due=_due, extend=lambda regime, due, days, *a: due + days * DAY),
        owns=lambda key, partition: True)


def _event(topic: str, value: dict[str, Any] | bytes, offset: int = 0,
           key: bytes | None = APPEAL.encode()) -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=offset,
                                                   key=key, value=raw))


def _routed(registered: dt.datetime = T0, **extra: Any) -> dict[str, Any]:
    routed = {"schema_version": 1, "appeal_id": APPEAL, "regime": "fz59", "region": "22",
              "registered_at": registered.isoformat(), "category": "roads", "urgent": False,
              "confidence": 0.9, "authority_id": "22-mintrans", "routing_level": "region",
              "rule_version": "t", "routed_at": T0.isoformat()}
    routed.update(extra)
    return routed


def _lifecycle(kind: str, n: int, at: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"{APPEAL}:{n}", "appeal_id": APPEAL,
            "event": kind, "at": at.isoformat(), **extra}


LATE = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)  # valid by the schema; the rules overflow


def _run(rt: Any, *batches: list[Any]) -> tuple[RecordingOutbox, list[sla_agent.Batch]]:
    """Each list of events as one batch; the batch's states are stored as the agent does."""
    done = []

    async def main() -> RecordingOutbox:
        outbox = RecordingOutbox()
        for events in batches:
            batch = sla_agent.Batch(now=T0.timestamp())
            for event in events:
                await sla_agent._handle(rt, outbox, event, batch)
            await outbox.flush()
            rt.table.update(batch.changed)
            done.append(batch)
        return outbox

    return asyncio.run(main()), done


def _routed_state(rt: Any) -> State:
    _run(rt, [_event(ROUTED, _routed())])
    state: State = rt.table[APPEAL.encode()]
    assert state["status"] == "running"
    return state


def _count(reason: str) -> float:
    value: float = metrics.DEADLETTER.labels("sla", reason)._value.get()
    return value


@pytest.mark.parametrize("registered_at", ["2026-11-02T03:00:00z", "2026-11-02t03:00:00Z",
                                           "2026-11-02T10:00:00.000+07:00"])
def test_a_registration_time_the_schema_accepts_is_read(registered_at: str) -> None:
    """RFC 3339 (and the schema) allow a lower-case ``z``; ``fromisoformat`` refused it, and
    the appeal was dead-lettered as unprocessable and never got an SLA clock."""
    rt = _runtime()
    outbox, _ = _run(rt, [_event(ROUTED, _routed(registered_at=registered_at))])
    assert outbox.dead == []
    assert rt.table[APPEAL.encode()]["reg"] == T0.timestamp()


def test_an_error_of_any_type_in_a_transition_is_dead_lettered() -> None:
    """OverflowError from the deadline arithmetic used to escape the agent (exit 70, replayed
    and raised again on every restart): only KeyError, ValueError and TypeError were caught."""
    rt = _runtime()
    _routed_state(rt)
    bad = _lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy")
    good = _lifecycle("answered", 2, T0 + dt.timedelta(days=2))
    outbox, _ = _run(rt, [_event(EXTERNAL, bad, 1), _event(EXTERNAL, good, 2)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("unprocessable", bad)
    assert detail is not None and detail.startswith("OverflowError")
    state = rt.table[APPEAL.encode()]
    assert (state["status"], state["auth"], state["prev"]) == ("answered", "22-mintrans", [])


def test_a_failed_event_leaves_no_trace_on_the_batch_state() -> None:
    """``accepted`` then a redirect that fails halfway, in one batch: the redirect had already
    changed the authority (and the list of earlier bodies) of the state the batch then
    stored, because the batch's working state was not copied per event."""
    rt = _runtime()
    _routed_state(rt)
    accepted = _lifecycle("accepted", 1, T0 + dt.timedelta(hours=2))
    redirect = _lifecycle("redirected", 2, LATE, to_authority_id="22-minstroy")
    outbox, [batch] = _run(rt, [_event(EXTERNAL, accepted, 1), _event(EXTERNAL, redirect, 2)])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]
    stored = batch.changed[APPEAL.encode()]
    assert stored["accepted"] == (T0 + dt.timedelta(hours=2)).timestamp()
    assert (stored["auth"], stored["prev"], stored["status"]) == ("22-mintrans", [], "running")
    assert stored["events"] == [accepted["event_id"]]  # the failed one can come again


def test_a_routing_that_cannot_be_applied_is_dead_lettered_and_the_next_one_is() -> None:
    rt = _runtime()
    outbox, _ = _run(rt, [_event(ROUTED, _routed(LATE), 1),
                          _event(ROUTED, _routed(appeal_id="b" * 24), 2, key=b"b" * 24)])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]
    assert APPEAL.encode() not in rt.table and rt.table[b"b" * 24]["status"] == "running"


def test_a_held_event_that_fails_is_dead_lettered_and_the_routing_stands() -> None:
    """A held event was applied inside the routing's transition: when it raised, the routed
    record went to the dead-letter topic instead of it, and the appeal never got SLA state."""
    rt = _runtime()
    bad = _lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy")
    answered = _lifecycle("answered", 2, T0 + dt.timedelta(days=1))
    outbox, _ = _run(rt, [_event(EXTERNAL, bad, 1), _event(EXTERNAL, answered, 2)],
                     [_event(ROUTED, _routed(), 3)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("unprocessable", bad)
    assert detail is not None and detail.startswith("OverflowError")
    state = rt.table[APPEAL.encode()]
    assert (state["status"], state["auth"]) == ("answered", "22-mintrans")


def test_held_events_are_refused_one_by_one() -> None:
    """The same at the level of ``_on_routed``: the routing and the good held event stand."""
    rt = _runtime()
    held: Any = None
    for event in (_lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy"),
                  _lifecycle("accepted", 2, T0 + dt.timedelta(hours=1))):
        held, _ = sla_agent._on_lifecycle(rt, held, event)
    refused: list[Any] = []
    state, _ = sla_agent._on_routed(rt, held, _routed(), 0, refused)
    assert state is not None and state["auth"] == "22-mintrans" and "accepted" in state
    assert [(event["event_id"], reason) for event, reason, _why in refused] == [
        (f"{APPEAL}:1", "unprocessable")]


def test_events_beyond_the_held_limit_are_refused_not_dropped() -> None:
    """The held list kept its last 32 entries: the 33rd event silently pushed out the first
    (an answer), and the appeal stayed open after its routing came."""
    rt = _runtime()
    held: Any = None
    events = [_lifecycle("answered", 0, T0 + dt.timedelta(days=1))]
    events += [_lifecycle("accepted", i, T0 + dt.timedelta(hours=i))
               for i in range(1, sla_agent.MAX_PENDING + 1)]
    for event in events[:sla_agent.MAX_PENDING]:
        held, _ = sla_agent._on_lifecycle(rt, held, event)
    with pytest.raises(sla_agent.PendingOverflow):
        sla_agent._on_lifecycle(rt, held, events[-1])
    assert [e["event_id"] for e in held["pending"]] == [
        e["event_id"] for e in events[:sla_agent.MAX_PENDING]]


def test_the_event_beyond_the_held_limit_goes_to_the_dead_letter_topic() -> None:
    rt = _runtime()
    events = [_lifecycle("answered", 0, T0 + dt.timedelta(days=1))]
    events += [_lifecycle("accepted", i, T0 + dt.timedelta(hours=i))
               for i in range(1, sla_agent.MAX_PENDING + 1)]
    before = _count("pending_overflow")
    outbox, _ = _run(rt, [_event(EXTERNAL, e, i) for i, e in enumerate(events)],
                     [_event(ROUTED, _routed(), 99)])
    assert [(reason, orjson.loads(value)) for reason, value, _d in outbox.dead] == [
        ("pending_overflow", events[-1])]
    assert _count("pending_overflow") == before + 1
    assert rt.table[APPEAL.encode()]["status"] == "answered"


@pytest.mark.parametrize(("topic", "value", "reason"), [
    (TICKS, {"schema_version": 1, "appeal_id": APPEAL, "kind": "boom", "due_ts": 1e308,
             "cycle": 0}, "invalid_value"),
    (TICKS, {"appeal_id": APPEAL}, "missing_field"),
    (ROUTED, _routed(appeal_id=None), "wrong_type"),
    (ROUTED, _routed(registered_at="9999-12-20T00:00:00+00:00"), "bad_timestamp"),
    (INTERNAL, {"appeal_id": APPEAL, "event": "answered"}, "missing_field"),
    (EXTERNAL, _lifecycle("answered", 1, dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
     "bad_timestamp"),
])
def test_internal_topics_are_read_against_their_schemas(topic: str, value: dict[str, Any],
                                                        reason: str) -> None:
    """Ticks of an unknown kind were skipped without a trace, and a routed record without an
    appeal id was stored (Redis then refused it on every write)."""
    rt = _runtime()
    _routed_state(rt)
    with pytest.raises(InvalidEvent) as info:
        sla_agent._read(rt, topic, orjson.dumps(value))
    assert info.value.reason == reason
    before = rt.table[APPEAL.encode()]
    outbox, [batch] = _run(rt, [_event(topic, value)])
    assert [r for r, _v, _d in outbox.dead] == [reason] and batch.changed == {}
    assert rt.table[APPEAL.encode()] is before


def test_a_table_value_that_is_not_an_object_refuses_the_event() -> None:
    rt = _runtime({APPEAL.encode(): [1, 2, 3]})
    outbox, _ = _run(rt, [_event(EXTERNAL, _lifecycle("answered", 1, T0))])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]


def test_a_routed_record_keyed_other_than_its_appeal_is_dead_lettered() -> None:
    """Stored under its key, timed and ticked under its appeal id: the tick found no state and
    no alert was ever sent (review of session 15)."""
    rt = _runtime()
    outbox, _ = _run(rt, [_event(ROUTED, _routed(), key=b"some-other-key"),
                          _event(ROUTED, _routed(appeal_id="b" * 24), 1, key=b"b" * 24)])
    [(reason, value, _detail)] = outbox.dead
    assert reason == "key_mismatch" and orjson.loads(value)["appeal_id"] == APPEAL
    assert set(rt.table) == {b"b" * 24}
