"""A stand-in of the SLA worker's runtime for driving ``workers.sla.agent`` in-process.

The agent reads a handful of attributes of its runtime (state table, rules, topic names,
partition ownership, the SLA clock); these tests give it plain values so that one batch of
events can be run without a broker. Kept in one place so that a new attribute the agent
reads is added once, not in every test file that builds the stand-in; the records the tests
feed it (routed appeals, lifecycle events) are built here too, so that a field the schemas
add is added once.

The fixtures that hand a test a ready runtime are in ``tests/sla/conftest.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson

from monitoring import metrics
from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from workers.aggregates.partials import PartitionAggregates
from workers.sla import agent as sla_agent
from workers.sla.engine import SlaRules, State

DAY = 86400.0
EXTERNAL, INTERNAL, ROUTED, TICKS = "p.lifecycle", "p.sla.lifecycle", "p.routed", "p.ticks"
#: The registration (and routing) moment of the appeals the tests route: Mon 2 Nov 2026,
#: 10:00 in Barnaul.
T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)
APPEAL = "a" * 24
KEY = APPEAL.encode()
#: Deadline arithmetic overflows for periods that start from here on (as the real calendar's
#: did for year 9999; the schema refuses such dates before they reach the engine).
LIMIT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
#: The SLA clock of the ``rt`` fixture: after every event these tests send, so none is
#: refused as stamped in the future (``agent._check_not_ahead``).
NOW = dt.datetime(2032, 1, 1, tzinfo=dt.UTC)


def overflowing_rules() -> SlaRules:
    """Ten days, except that a period starting at :data:`LIMIT` or later overflows."""

    def due(regime: str, start: float, *_: Any) -> float:
        if start >= LIMIT:
            raise OverflowError("date value out of range")
        return start + 10 * DAY

    return SlaRules(due=due, extend=lambda regime, due, days, *a: due + days * DAY)


def owns_all(key: Any, partition: int) -> bool:
    """Partition ownership of a worker that holds every partition."""
    return True


def fixed_clock(moment: float) -> SimpleNamespace:
    """An SLA clock standing at ``moment`` (epoch seconds), wall time equal to event time."""
    return SimpleNamespace(now=lambda: moment, wall_time_of=lambda ts: ts)


def ten_day_rules(**extra: Any) -> SlaRules:
    """Every regime due ten calendar days after its start; an extension adds whole days.
    ``extra`` sets the other rules (``escalation_after``, ``early_hold``)."""
    return SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY, **extra)


def stand_in_runtime(*, clock: Any, rules: SlaRules, settings: Settings | None = None,
                     owns: Callable[..., bool] = owns_all,
                     table: dict[bytes, Any] | None = None,
                     resolve_parent: Callable[[str], str | None] = lambda authority: None,
                     region_tz: Callable[[str, str | None], str] = lambda region, hint: (
                         "Asia/Barnaul"),
                     router: Any = None, ctx_extra: dict[str, Any] | None = None,
                     **extra: Any) -> SimpleNamespace:
    """The runtime the SLA agent's batch handlers read (default settings, every partition
    owned); ``extra`` adds attributes (the maintenance pass's ``app``,
    ``assigned_partitions``, ``table_lock``). ``aggregates`` holds the partitions' figures,
    as on the real runtime."""
    aggregates: dict[int, PartitionAggregates] = {}
    return SimpleNamespace(
        table={} if table is None else table, router=router, rules=rules,
        resolve_parent=resolve_parent,
        region_tz=region_tz, aggregates=aggregates,
        partition_aggregates=lambda p: aggregates.setdefault(p, PartitionAggregates()),
        ctx=SimpleNamespace(clock=clock, settings=Settings() if settings is None else settings,
                            **(ctx_extra or {})),
        external_lifecycle_topic=EXTERNAL, lifecycle_topic=INTERNAL, routed_topic=ROUTED,
        ticks_topic=TICKS, owns=owns, **extra)


def message(topic: str, value: dict[str, Any] | bytes, offset: int = 0,
            key: bytes | None = KEY, partition: int = 0) -> SimpleNamespace:
    """A consumed record as the agent's handler reads it (``value`` as JSON unless bytes)."""
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition,
                                                   offset=offset, key=key, value=raw))


def routed_record(registered: dt.datetime = T0, appeal_id: str | None = APPEAL,
                  **extra: Any) -> dict[str, Any]:
    """A routed appeal (fz59, region 22, to ``22-mintrans``, routed at :data:`T0`);
    ``extra`` overrides or adds fields."""
    routed = {"schema_version": 1, "appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "registered_at": registered.isoformat(), "category": "roads", "urgent": False,
              "confidence": 0.9, "authority_id": "22-mintrans", "routing_level": "region",
              "rule_version": "t", "routed_at": T0.isoformat()}
    routed.update(extra)
    return routed


def lifecycle(kind: str, n: int, at: dt.datetime, appeal_id: str = APPEAL,
              **extra: Any) -> dict[str, Any]:
    """Lifecycle event number ``n`` of the appeal (its id ``<appeal>:<n>``), stamped ``at``."""
    return {"schema_version": 1, "event_id": f"{appeal_id}:{n}", "appeal_id": appeal_id,
            "event": kind, "at": at.isoformat(), **extra}


def run_batches(rt: Any, *batches: list[Any], now: float | None = None
                ) -> tuple[RecordingOutbox, list[sla_agent.Batch]]:
    """Each list of events as one batch of the SLA agent (its ``now`` :data:`T0` unless
    given), the batch's states stored as the agent stores them; one outbox records all."""
    done = []

    async def main() -> RecordingOutbox:
        outbox = RecordingOutbox()
        for events in batches:
            batch = sla_agent.Batch(now=T0.timestamp() if now is None else now)
            for event in events:
                await sla_agent._handle(rt, outbox, event, batch)
            await outbox.flush()
            rt.table.update(batch.changed)
            done.append(batch)
        return outbox

    return asyncio.run(main()), done


def run_each(rt: Any, *events: Any) -> RecordingOutbox:
    """Each event in its own batch (see :func:`run_batches`)."""
    outbox, _ = run_batches(rt, *([event] for event in events))
    return outbox


def run_one_batch(rt: Any, *events: Any) -> tuple[RecordingOutbox, sla_agent.Batch]:
    """``events`` as one batch of the SLA agent at the wall clock's now."""
    outbox, [batch] = run_batches(rt, list(events), now=time.time())
    return outbox, batch


def route(rt: Any, **routed: Any) -> State:
    """The appeal routed (:func:`routed_record` of ``routed``) and its running state."""
    run_batches(rt, [message(ROUTED, routed_record(**routed))])
    state: State = rt.table[str(routed.get("appeal_id", APPEAL)).encode()]
    assert state["status"] == "running"
    return state


def dead_count(reason: str) -> float:
    """The SLA worker's dead letters counted with ``reason`` so far."""
    value: float = metrics.DEADLETTER.labels("sla", reason)._value.get()
    return value
