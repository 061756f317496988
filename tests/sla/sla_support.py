"""A stand-in of the SLA worker's runtime for driving ``workers.sla.agent`` in-process.

The agent reads a handful of attributes of its runtime (state table, rules, topic names,
partition ownership, the SLA clock); these tests give it plain values so that one batch of
events can be run without a broker. Kept in one place so that a new attribute the agent
reads is added once, not in every test file that builds the stand-in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from workers.aggregates.partials import PartitionAggregates
from workers.sla import agent as sla_agent
from workers.sla.engine import SlaRules

DAY = 86400.0
EXTERNAL, INTERNAL, ROUTED, TICKS = "p.lifecycle", "p.sla.lifecycle", "p.routed", "p.ticks"


def fixed_clock(moment: float) -> SimpleNamespace:
    """An SLA clock standing at ``moment`` (epoch seconds), wall time equal to event time."""
    return SimpleNamespace(now=lambda: moment, wall_time_of=lambda ts: ts)


def ten_day_rules() -> SlaRules:
    """Every regime due ten calendar days after its start; an extension adds whole days."""
    return SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY)


def stand_in_runtime(*, clock: Any, rules: SlaRules, settings: Settings,
                     owns: Callable[..., bool], table: dict[bytes, Any] | None = None,
                     ctx_extra: dict[str, Any] | None = None, **extra: Any) -> SimpleNamespace:
    """The runtime the SLA agent's batch handlers read; ``extra`` adds attributes (the
    maintenance pass's ``app``, ``assigned_partitions``, ``table_lock``)."""
    aggregates: dict[int, PartitionAggregates] = {}
    return SimpleNamespace(
        table={} if table is None else table, router=None, rules=rules,
        resolve_parent=lambda authority: None,
        region_tz=lambda region, hint: "Asia/Barnaul",
        partition_aggregates=lambda p: aggregates.setdefault(p, PartitionAggregates()),
        ctx=SimpleNamespace(clock=clock, settings=settings, **(ctx_extra or {})),
        external_lifecycle_topic=EXTERNAL, lifecycle_topic=INTERNAL, routed_topic=ROUTED,
        ticks_topic=TICKS, owns=owns, **extra)


def run_one_batch(rt: Any, *events: Any) -> tuple[RecordingOutbox, sla_agent.Batch]:
    """``events`` as one batch of the SLA agent; its states stored as the agent stores them."""

    async def main() -> tuple[RecordingOutbox, sla_agent.Batch]:
        outbox = RecordingOutbox()
        batch = sla_agent.Batch(now=time.time())
        for event in events:
            await sla_agent._handle(rt, outbox, event, batch)
        await outbox.flush()
        rt.table.update(batch.changed)
        return outbox, batch

    return asyncio.run(main())
