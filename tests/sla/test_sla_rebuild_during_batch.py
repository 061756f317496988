"""The figures' rebuild after a rebalance must not run while a batch is in flight.

The SLA agent changes its partition figures as it applies each event and writes the states to
the table only after the broker has acknowledged the batch's outputs. A rebalance sets
``needs_rebuild``; if the 2-second maintenance pass rebuilt the figures from the table during
that wait, the batch's changes were dropped (3 new appeals published as ``received`` 0) until
some later rebuild.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from types import SimpleNamespace

from tests.sla.sla_support import ten_day_rules
from workers.aggregates.partials import PartitionAggregates
from workers.sla import agent as sla_agent
from workers.sla.engine import State, keyed_contributions, new_state

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
RULES = ten_day_rules()


def _state(appeal_id: str) -> State:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, "Asia/Barnaul", RULES)[0]


class _Runtime:
    """The parts of ``SlaRuntime`` the rebuild and the maintenance pass's start use."""

    rebuild_aggregates = sla_agent.SlaRuntime.rebuild_aggregates
    partition_aggregates = sla_agent.SlaRuntime.partition_aggregates

    def __init__(self) -> None:
        recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        self.app = SimpleNamespace(tables=SimpleNamespace(recovery=recovery))
        self.table: dict[bytes, State] = {}
        self.aggregates: dict[int, PartitionAggregates] = {}
        self.index_dirty: set[int] = set()
        self.needs_rebuild = False
        self.batch_in_flight = False
        self.rebuild_lock = asyncio.Lock()
        self.assign_gen = 0

    def assigned_partitions(self) -> set[int]:
        return {0}


def _received(rt: _Runtime) -> int:
    return sum(n for (auth, _day, counter), n in rt.aggregates[0].counters.items()
               if auth == "22-mintrans" and counter == "received")


def test_maintenance_does_not_rebuild_the_figures_of_a_batch_in_flight() -> None:
    rt = _Runtime()
    states = {f"a{i}".encode(): _state(f"a{i}") for i in range(3)}
    # The batch: figures changed per event, states not stored yet, awaiting the broker.
    rt.batch_in_flight = True
    for state in states.values():
        rt.partition_aggregates(0).apply_delta([], keyed_contributions(state))
    rt.needs_rebuild = True  # a rebalance completed meanwhile
    asyncio.run(sla_agent._maintain(rt))  # type: ignore[arg-type]
    assert _received(rt) == 3, "the batch's figures survive the maintenance pass"
    # The batch stores its states and ends; the next pass rebuilds from the table: the same.
    rt.table.update(states)
    rt.batch_in_flight = False
    assert asyncio.run(rt.rebuild_aggregates())
    truth: Counter[tuple[str, str, str]] = Counter()
    for state in rt.table.values():
        truth.update(keyed_contributions(state))
    assert dict(rt.aggregates[0].counters) == dict(truth)
    assert _received(rt) == 3
