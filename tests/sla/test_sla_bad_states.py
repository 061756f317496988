"""Stored SLA states that no version should have stored must not stop the rest (real Redis).

Older versions stored two kinds: a routed appeal without an appeal id (internal topics were
not validated) and an answer applied halfway (its moment, year 10000 in UTC, could not be
written). Such a state made every Redis write of its batch and every rebuild of its partition
fail; the failure was taken for a Redis outage, so every partition was marked for rebuild again
and no partition's figures were published. Counting its figures after a restart ended the
worker (exit 70) on every start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from monitoring import metrics
from tests.sla.sla_support import ten_day_rules
from workers.aggregates.partials import PartitionAggregates, counters_key
from workers.sla import agent as sla_agent
from workers.sla import read_model, timers
from workers.sla.engine import State, keyed_contributions, new_state

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
RULES = ten_day_rules()
YEAR_10000 = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def _state(appeal_id: str | None, partition: int) -> State:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    state, _ = new_state(routed, partition, T0, "Asia/Barnaul", RULES)
    return state


def _half_answered(appeal_id: str, partition: int) -> State:
    """What the old agent stored when ``answered`` at year 10000 (UTC) raised halfway."""
    state = _state(appeal_id, partition)
    state.update(status="answered", answered=YEAR_10000.timestamp(), on_time=False)
    return state


def _errors() -> float:
    value: float = metrics.REDIS_ERRORS.labels("sla_maintain")._value.get()
    return value


def test_figures_are_counted_without_a_state_that_cannot_be() -> None:
    good = _state("good", 0)
    rt: Any = SimpleNamespace(table={b"bad": _half_answered("bad", 0), b"good": good},
                              assigned_partitions=lambda: {0}, index_dirty=set(),
                              needs_rebuild=True, aggregates={},
                              rebuild_lock=asyncio.Lock(), assign_gen=0)
    asyncio.run(sla_agent.SlaRuntime.rebuild_aggregates(rt))
    assert dict(rt.aggregates[0].counters) == {k: 1 for k in keyed_contributions(good)}
    assert not rt.needs_rebuild


def test_the_read_model_is_written_without_the_states_it_cannot_show(
        redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, list[Any]]:
        states = [_state(None, 0), _half_answered("half", 0), _state("good", 0)]
        written = await read_model.write(client, prefix, states, T0)
        return written, sorted(await client.keys(f"{prefix}appeal:*"))

    written, keys = redis_scenario(scenario, decode_responses=True)
    assert (written, keys) == (1, [f"{prefix}appeal:good"])


def test_one_bad_state_does_not_stop_the_rebuild_and_figures_of_every_partition(
        redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    table = {b"nullid": _state(None, 0), b"half": _half_answered("half", 0),
             b"good0": _state("good0", 0), b"good1": _state("good1", 1)}
    aggregates: dict[int, PartitionAggregates] = {}
    for key in (b"good0", b"good1"):
        state = table[key]
        aggregates.setdefault(state["p"], PartitionAggregates()).apply_delta(
            [], keyed_contributions(state))
    errors = _errors()

    async def scenario(client: Any) -> dict[str, Any]:
        recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        rt: Any = SimpleNamespace(
            app=SimpleNamespace(tables=SimpleNamespace(recovery=recovery)),
            ctx=SimpleNamespace(redis=client, clock=SimpleNamespace(now=lambda: T0)),
            needs_rebuild=False, assigned_partitions=lambda: {0, 1}, index_dirty={0, 1},
            table=table, prefix=prefix, rules=RULES, gauge_authorities=set(),
            partition_aggregates=lambda p: aggregates.setdefault(p, PartitionAggregates()))
        await sla_agent._maintain(rt)
        return {
            "dirty": rt.index_dirty,
            "figures": [p for p in (0, 1) if await client.exists(counters_key(prefix, p))],
            "ready": [p for p in (0, 1) if await client.exists(timers.ready_key(prefix, p))],
            "appeals": sorted(await client.keys(f"{prefix}appeal:*")),
            "timers": sorted(await client.zrange(timers.due_key(prefix, 0), 0, -1)),
        }

    seen = redis_scenario(scenario, decode_responses=True)
    assert _errors() == errors  # a bad state is not a Redis outage
    assert seen["dirty"] == set() and seen["figures"] == [0, 1] and seen["ready"] == [0, 1]
    assert seen["appeals"] == [f"{prefix}appeal:good0", f"{prefix}appeal:good1"]
    assert seen["timers"] == ["good0|breach|0", "good0|warning|0"]
