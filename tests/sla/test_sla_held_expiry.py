"""Lifecycle events held for an appeal that is never routed end as dead letters
(``agent._expire_held``), after ``APPEALS_SLA_PENDING_MAX_AGE``.

An event that overtakes its appeal's routing is held in the state table under the appeal's
key. For an id no appeal has (a typo, another system's id, before the fix an upper-case
spelling of ours) the routing never comes: the events stayed in the table for good, and nobody
learnt of them (review of the SLA timers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.settings import ConfigError, Settings
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import (
    DAY,
    INTERNAL,
    ROUTED,
    T0,
    fixed_clock,
    message,
    routed_record,
    stand_in_runtime,
    ten_day_rules,
)
from workers.sla import agent as sla_agent
from workers.sla.lifecycle_routing import PartitionCheck

PARTITIONS = 4
MAX_AGE = 7 * DAY
UNKNOWN = "ffffffffffffffffffffffff"
KNOWN = "0b7c7a0e1f7e5a559a0b3d0f"


def _runtime(assigned: set[int] | None = None) -> Any:
    # The SLA clock reads two days after T0: the held answers, a day after it, are in its
    # past (one stamped ahead of it is refused: agent._check_not_ahead).
    outboxes: list[RecordingOutbox] = []

    def outbox(_stage: str) -> RecordingOutbox:
        outboxes.append(RecordingOutbox())
        return outboxes[-1]

    return stand_in_runtime(
        clock=fixed_clock(T0.timestamp() + 2 * DAY), rules=ten_day_rules(),
        settings=Settings(sla_pending_max_age=MAX_AGE), owns=PartitionCheck(PARTITIONS),
        ctx_extra={"outbox": outbox},
        app=SimpleNamespace(tables=SimpleNamespace(recovery=SimpleNamespace(
            completed=SimpleNamespace(is_set=lambda: True))), rebalancing=False,
            in_recovery=False),
        assigned_partitions=lambda: set(range(PARTITIONS)) if assigned is None else assigned,
        table_lock=asyncio.Lock(), outboxes=outboxes)


def _event(rt: Any, topic: str, value: dict[str, Any], key: str) -> Any:
    return message(topic, value, key=key.encode(), partition=rt.owns.partition_of(key.encode()))


def _handle(rt: Any, now: float, *events: Any) -> None:
    async def main() -> None:
        outbox = RecordingOutbox()
        batch = sla_agent.Batch(now=now)
        for event in events:
            await sla_agent._handle(rt, outbox, event, batch)
        await outbox.flush()
        rt.table.update(batch.changed)

    asyncio.run(main())


def _answer(appeal_id: str, n: int = 1) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"ans-{n}", "appeal_id": appeal_id,
            "event": "answered", "at": (T0 + dt.timedelta(days=1)).isoformat()}


def _routed(appeal_id: str) -> dict[str, Any]:
    return routed_record(appeal_id=appeal_id)


def _expire(rt: Any, now: float) -> tuple[int, list[tuple[str, Any, str | None]]]:
    deleted = asyncio.run(sla_agent._expire_held(rt, now))
    dead = [(reason, orjson.loads(value), detail)
            for box in rt.outboxes for reason, value, detail in box.dead]
    return deleted, dead


def test_events_held_past_the_limit_are_dead_lettered_and_their_state_deleted() -> None:
    rt = _runtime()
    held_at = T0.timestamp()
    _handle(rt, held_at, _event(rt, INTERNAL, _answer(UNKNOWN, 1), UNKNOWN))
    _handle(rt, held_at + DAY, _event(rt, INTERNAL, _answer(UNKNOWN, 2), UNKNOWN))
    assert rt.table[UNKNOWN.encode()]["since"] == held_at  # the first event's moment
    assert _expire(rt, held_at + MAX_AGE - 1) == (0, [])
    assert UNKNOWN.encode() in rt.table
    deleted, dead = _expire(rt, held_at + MAX_AGE)
    assert deleted == 1
    assert [(reason, value) for reason, value, _ in dead] == [
        ("unknown_appeal", _answer(UNKNOWN, 1)), ("unknown_appeal", _answer(UNKNOWN, 2))]
    assert dead[0][2] == ("no routing for this appeal id within 7 days "
                          "(held since 2026-11-02T03:00:00+00:00)")
    [box] = [b for b in rt.outboxes if b.records]
    assert {key for _, key, _ in box.records} == {UNKNOWN.encode()}  # keyed by the id
    assert UNKNOWN.encode() not in rt.table


def test_routed_appeals_recent_holds_and_other_workers_partitions_stay() -> None:
    rt = _runtime()
    now = T0.timestamp()
    _handle(rt, now, _event(rt, ROUTED, _routed(KNOWN), KNOWN))
    _handle(rt, now, _event(rt, INTERNAL, _answer(UNKNOWN), UNKNOWN))
    recent = "eeeeeeeeeeeeeeeeeeeeeeee"
    _handle(rt, now + 2 * DAY, _event(rt, INTERNAL, _answer(recent), recent))
    before = dict(rt.table)
    theirs = _runtime(assigned=set(range(PARTITIONS)) - {rt.owns.partition_of(UNKNOWN.encode())})
    theirs.table = rt.table
    assert _expire(theirs, now + MAX_AGE) == (0, [])  # not this worker's partition
    assert rt.table == before
    deleted, dead = _expire(rt, now + MAX_AGE)
    assert deleted == 1 and [v["appeal_id"] for _, v, _ in dead] == [UNKNOWN]
    assert set(rt.table) == {KNOWN.encode(), recent.encode()}


def test_a_state_held_before_since_was_recorded_counts_from_its_newest_event() -> None:
    rt = _runtime()
    legacy = [_answer(UNKNOWN, 1), {**_answer(UNKNOWN, 2), "at": "2026-11-04T03:00:00Z"}]
    rt.table[UNKNOWN.encode()] = {"pending": legacy}
    newest = dt.datetime(2026, 11, 4, 3, 0, tzinfo=dt.UTC).timestamp()
    assert _expire(rt, newest + MAX_AGE - 1) == (0, [])
    deleted, dead = _expire(rt, newest + MAX_AGE)
    assert deleted == 1 and [v for _, v, _ in dead] == legacy


def test_a_routing_that_comes_while_the_expiry_waits_wins() -> None:
    """The expiry looks again under the table lock the agent holds for a batch: a batch that
    routes the appeal meanwhile applies the held events, and none is dead-lettered."""
    rt = _runtime()
    now = T0.timestamp()
    _handle(rt, now, _event(rt, INTERNAL, _answer(KNOWN), KNOWN))

    async def main() -> int:
        async with rt.table_lock:  # a batch is in flight
            expiry = asyncio.ensure_future(sla_agent._expire_held(rt, now + MAX_AGE))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not expiry.done()
            outbox = RecordingOutbox()
            batch = sla_agent.Batch(now=now + MAX_AGE)
            await sla_agent._handle(rt, outbox, _event(rt, ROUTED, _routed(KNOWN), KNOWN),
                                    batch)
            rt.table.update(batch.changed)
        return await expiry

    assert asyncio.run(main()) == 0
    assert [d for box in rt.outboxes for d in box.dead] == []
    assert rt.table[KNOWN.encode()]["status"] == "answered"


def test_nothing_is_expired_while_the_tables_recover() -> None:
    rt = _runtime()
    _handle(rt, T0.timestamp(), _event(rt, INTERNAL, _answer(UNKNOWN), UNKNOWN))
    rt.app.in_recovery = True
    assert _expire(rt, T0.timestamp() + 10 * MAX_AGE) == (0, [])
    assert UNKNOWN.encode() in rt.table


def test_the_limit_is_a_validated_setting() -> None:
    assert Settings.load({}).sla_pending_max_age == 7 * DAY
    assert Settings.load({"APPEALS_SLA_PENDING_MAX_AGE": "86400"}).sla_pending_max_age == DAY
    for bad in ("60", "0", "-1", str(400 * DAY)):
        with pytest.raises(ConfigError, match="APPEALS_SLA_PENDING_MAX_AGE must be"):
            Settings.load({"APPEALS_SLA_PENDING_MAX_AGE": bad})
