"""Bad events at the SLA agent: dead-lettered with a reason, and the stream goes on.

These drive the agent's handling of one event (``agent._handle``) with a stand-in runtime and
outbox, so the engine's failures can be provoked at will: the deadline rules of the ``rt``
fixture (``sla_support.overflowing_rules``) overflow for periods that start after 2030, as the
real calendar's arithmetic did for year 9999 (the schema now refuses such dates before they
get here; these pin what happens if anything else raises).
The running worker is tested with the same inputs in ``test_sla_poison_inputs.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from tests.sla.sla_support import (
    APPEAL,
    EXTERNAL,
    INTERNAL,
    KEY,
    ROUTED,
    T0,
    TICKS,
    dead_count,
    lifecycle,
    message,
    routed_record,
    run_batches,
)
from workers.sla import agent as sla_agent
from workers.sla.engine import State

LATE = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)  # valid by the schema; the rules overflow


@pytest.mark.parametrize("registered_at", ["2026-11-02T03:00:00z", "2026-11-02t03:00:00Z",
                                           "2026-11-02T10:00:00.000+07:00"])
def test_a_registration_time_the_schema_accepts_is_read(registered_at: str, rt: Any) -> None:
    """RFC 3339 (and the schema) allow a lower-case ``z``; ``fromisoformat`` refused it, and
    the appeal was dead-lettered as unprocessable and never got an SLA clock."""
    outbox, _ = run_batches(rt, [message(ROUTED, routed_record(registered_at=registered_at))])
    assert outbox.dead == []
    assert rt.table[KEY]["reg"] == T0.timestamp()


def test_an_error_of_any_type_in_a_transition_is_dead_lettered(
        rt: Any, routed_state: State) -> None:
    """OverflowError from the deadline arithmetic used to escape the agent (exit 70, replayed
    and raised again on every restart): only KeyError, ValueError and TypeError were caught."""
    bad = lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy")
    good = lifecycle("answered", 2, T0 + dt.timedelta(days=2))
    outbox, _ = run_batches(rt, [message(EXTERNAL, bad, 1), message(EXTERNAL, good, 2)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("unprocessable", bad)
    assert detail is not None and detail.startswith("OverflowError")
    state = rt.table[KEY]
    assert (state["status"], state["auth"], state["prev"]) == ("answered", "22-mintrans", [])


def test_a_failed_event_leaves_no_trace_on_the_batch_state(rt: Any, routed_state: State) -> None:
    """``accepted`` then a redirect that fails halfway, in one batch: the redirect had already
    changed the authority (and the list of earlier bodies) of the state the batch then
    stored, because the batch's working state was not copied per event."""
    accepted = lifecycle("accepted", 1, T0 + dt.timedelta(hours=2))
    redirect = lifecycle("redirected", 2, LATE, to_authority_id="22-minstroy")
    outbox, [batch] = run_batches(rt, [message(EXTERNAL, accepted, 1),
                                       message(EXTERNAL, redirect, 2)])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]
    stored = batch.changed[KEY]
    assert stored["accepted"] == (T0 + dt.timedelta(hours=2)).timestamp()
    assert (stored["auth"], stored["prev"], stored["status"]) == ("22-mintrans", [], "running")
    assert stored["events"] == [accepted["event_id"]]  # the failed one can come again


def test_a_routing_that_cannot_be_applied_is_dead_lettered_and_the_next_one_is(rt: Any) -> None:
    other = routed_record(appeal_id="b" * 24)
    outbox, _ = run_batches(rt, [message(ROUTED, routed_record(LATE), 1),
                                 message(ROUTED, other, 2, key=b"b" * 24)])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]
    assert KEY not in rt.table and rt.table[b"b" * 24]["status"] == "running"


def test_a_held_event_that_fails_is_dead_lettered_and_the_routing_stands(rt: Any) -> None:
    """A held event was applied inside the routing's transition: when it raised, the routed
    record went to the dead-letter topic instead of it, and the appeal never got SLA state."""
    bad = lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy")
    answered = lifecycle("answered", 2, T0 + dt.timedelta(days=1))
    outbox, _ = run_batches(rt, [message(EXTERNAL, bad, 1), message(EXTERNAL, answered, 2)],
                            [message(ROUTED, routed_record(), 3)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("unprocessable", bad)
    assert detail is not None and detail.startswith("OverflowError")
    state = rt.table[KEY]
    assert (state["status"], state["auth"]) == ("answered", "22-mintrans")


def test_held_events_are_refused_one_by_one(rt: Any) -> None:
    """The same at the level of ``_on_routed``: the routing and the good held event stand."""
    held: Any = None
    for event in (lifecycle("redirected", 1, LATE, to_authority_id="22-minstroy"),
                  lifecycle("accepted", 2, T0 + dt.timedelta(hours=1))):
        held, _ = sla_agent._on_lifecycle(rt, held, event)
    refused: list[Any] = []
    state, _ = sla_agent._on_routed(rt, held, routed_record(), 0, refused)
    assert state is not None and state["auth"] == "22-mintrans" and "accepted" in state
    assert [(event["event_id"], reason) for event, reason, _why in refused] == [
        (f"{APPEAL}:1", "unprocessable")]


def test_events_beyond_the_held_limit_are_refused_not_dropped(rt: Any) -> None:
    """The held list kept its last 32 entries: the 33rd event silently pushed out the first
    (an answer), and the appeal stayed open after its routing came."""
    held: Any = None
    events = [lifecycle("answered", 0, T0 + dt.timedelta(days=1))]
    events += [lifecycle("accepted", i, T0 + dt.timedelta(hours=i))
               for i in range(1, sla_agent.MAX_PENDING + 1)]
    for event in events[:sla_agent.MAX_PENDING]:
        held, _ = sla_agent._on_lifecycle(rt, held, event)
    with pytest.raises(sla_agent.PendingOverflow):
        sla_agent._on_lifecycle(rt, held, events[-1])
    assert [e["event_id"] for e in held["pending"]] == [
        e["event_id"] for e in events[:sla_agent.MAX_PENDING]]


def test_the_event_beyond_the_held_limit_goes_to_the_dead_letter_topic(rt: Any) -> None:
    events = [lifecycle("answered", 0, T0 + dt.timedelta(days=1))]
    events += [lifecycle("accepted", i, T0 + dt.timedelta(hours=i))
               for i in range(1, sla_agent.MAX_PENDING + 1)]
    before = dead_count("pending_overflow")
    outbox, _ = run_batches(rt, [message(EXTERNAL, e, i) for i, e in enumerate(events)],
                            [message(ROUTED, routed_record(), 99)])
    assert [(reason, orjson.loads(value)) for reason, value, _d in outbox.dead] == [
        ("pending_overflow", events[-1])]
    assert dead_count("pending_overflow") == before + 1
    assert rt.table[KEY]["status"] == "answered"


@pytest.mark.parametrize(("topic", "value", "reason"), [
    (TICKS, {"schema_version": 1, "appeal_id": APPEAL, "kind": "boom", "due_ts": 1e308,
             "cycle": 0}, "invalid_value"),
    (TICKS, {"appeal_id": APPEAL}, "missing_field"),
    (ROUTED, routed_record(appeal_id=None), "wrong_type"),
    (ROUTED, routed_record(registered_at="9999-12-20T00:00:00+00:00"), "bad_timestamp"),
    (INTERNAL, {"appeal_id": APPEAL, "event": "answered"}, "missing_field"),
    (EXTERNAL, lifecycle("answered", 1, dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
     "bad_timestamp"),
])
def test_internal_topics_are_read_against_their_schemas(
        topic: str, value: dict[str, Any], reason: str, rt: Any, routed_state: State) -> None:
    """Ticks of an unknown kind were skipped without a trace, and a routed record without an
    appeal id was stored (Redis then refused it on every write)."""
    with pytest.raises(InvalidEvent) as info:
        sla_agent._read(rt, topic, orjson.dumps(value))
    assert info.value.reason == reason
    before = rt.table[KEY]
    outbox, [batch] = run_batches(rt, [message(topic, value)])
    assert [r for r, _v, _d in outbox.dead] == [reason] and batch.changed == {}
    assert rt.table[KEY] is before


def test_a_table_value_that_is_not_an_object_refuses_the_event(rt: Any) -> None:
    rt.table[KEY] = [1, 2, 3]
    outbox, _ = run_batches(rt, [message(EXTERNAL, lifecycle("answered", 1, T0))])
    assert [reason for reason, _v, _d in outbox.dead] == ["unprocessable"]


def test_a_routed_record_keyed_other_than_its_appeal_is_dead_lettered(rt: Any) -> None:
    """Stored under its key, timed and ticked under its appeal id: the tick found no state and
    no alert was ever sent (review of session 15)."""
    other = routed_record(appeal_id="b" * 24)
    outbox, _ = run_batches(rt, [message(ROUTED, routed_record(), key=b"some-other-key"),
                                 message(ROUTED, other, 1, key=b"b" * 24)])
    [(reason, value, _detail)] = outbox.dead
    assert reason == "key_mismatch" and orjson.loads(value)["appeal_id"] == APPEAL
    assert set(rt.table) == {b"b" * 24}
