"""Passes over the whole SLA table give the event loop back every few thousand states.

A review measured one synchronous pass per rebalance (the figures' rebuild, then each
partition's index rebuild) and per recompute at 12-50 µs an appeal: 14-50 s of a held loop at
1,000,000 appeals, with every agent, timer, commit and rebalance callback waiting. These tests
count the turns another coroutine gets during such a pass (none before), and check that the
results are those of the one-step pass, that a rebalance in the middle of the figures' rebuild
makes it start again, and that two callers do not rebuild twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from workers.sla import agent as sla_agent
from workers.sla import recompute as rc
from workers.sla import timers
from workers.sla.engine import SlaRules, State, keyed_contributions, new_state

DAY = 86400.0
T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
N = 5 * sla_agent.YIELD_EVERY


class _Period:
    days = 10.0

    def due(self, regime: str, start: float, *_: Any) -> float:
        return start + self.days * DAY

    def extend(self, regime: str, due: float, days: int, *_: Any) -> float:
        return due + days * DAY


PERIOD = _Period()
RULES = SlaRules(due=PERIOD.due, extend=PERIOD.extend, escalation_after=2 * DAY)


def _table(n: int = N, partitions: int = 2) -> dict[bytes, State]:
    table: dict[bytes, State] = {}
    for i in range(n):
        routed = {"appeal_id": f"{i:024x}", "regime": "fz59", "region": "22",
                  "authority_id": f"22-body-{i % 7}", "category": "roads", "urgent": False}
        state, _ = new_state(routed, i % partitions, T0 + i, "Asia/Barnaul", RULES)
        table[state["id"].encode()] = state
    return table


def _runtime(table: dict[bytes, State]) -> Any:
    return SimpleNamespace(
        table=table, assigned_partitions=lambda: {0, 1}, index_dirty=set(), needs_rebuild=True,
        aggregates={}, rebuild_lock=asyncio.Lock(), assign_gen=0, rules=RULES)


async def _with_turns(work: Awaitable[Any], on_turn: Any = None) -> tuple[Any, int]:
    """Run ``work`` while another task counts the turns the loop gives it."""
    turns = 0
    done = False

    async def other() -> None:
        nonlocal turns
        while not done:
            turns += 1
            if on_turn is not None:
                on_turn(turns)
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    start = turns
    try:
        result = await work
    finally:
        done = True
        await task
    return result, turns - start


def _truth(table: dict[bytes, State]) -> dict[int, Counter[Any]]:
    out: dict[int, Counter[Any]] = {0: Counter(), 1: Counter()}
    for state in table.values():
        out[state["p"]].update(keyed_contributions(state))
    return out


def test_the_figures_rebuild_yields_and_counts_what_one_pass_counts() -> None:
    table = _table()
    rt = _runtime(table)
    ok, turns = asyncio.run(_with_turns(sla_agent.SlaRuntime.rebuild_aggregates(rt)))
    assert ok and not rt.needs_rebuild
    assert turns >= N // sla_agent.YIELD_EVERY - 1
    truth = _truth(table)
    assert {p: +Counter(a.counters) for p, a in rt.aggregates.items()} == truth


def test_a_rebalance_in_the_middle_makes_the_figures_rebuild_start_again() -> None:
    table = _table()
    rt = _runtime(table)
    before = rt.aggregates

    def rebalance(turn: int) -> None:
        if turn == 2:
            rt.assign_gen += 1
            rt.needs_rebuild = True

    ok, _ = asyncio.run(_with_turns(sla_agent.SlaRuntime.rebuild_aggregates(rt), rebalance))
    assert ok is False and rt.needs_rebuild and rt.aggregates is before
    assert asyncio.run(sla_agent.SlaRuntime.rebuild_aggregates(rt))
    assert {p: +Counter(a.counters) for p, a in rt.aggregates.items()} == _truth(table)


def test_a_second_caller_waits_for_the_rebuild_in_progress_and_finds_it_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(2 * sla_agent.YIELD_EVERY)
    rt = _runtime(table)
    counted = Counter[str]()
    real = sla_agent.keyed_contributions

    def counting(state: State) -> Any:
        counted["states"] += 1
        return real(state)

    monkeypatch.setattr(sla_agent, "keyed_contributions", counting)

    async def both() -> list[bool]:
        return list(await asyncio.gather(sla_agent.SlaRuntime.rebuild_aggregates(rt),
                                         sla_agent.SlaRuntime.rebuild_aggregates(rt)))

    assert asyncio.run(both()) == [True, True]
    assert counted["states"] == len(table), "one pass, not two"


def test_the_index_rebuild_collects_every_partition_in_one_yielding_pass() -> None:
    table = _table()
    table[b"no-id"] = {"p": 0}
    rt: Any = SimpleNamespace(table=table, rules=RULES)
    got, turns = asyncio.run(_with_turns(sla_agent._states_by_partition(rt, {0, 1})))
    assert turns >= N // sla_agent.YIELD_EVERY - 1
    for p in (0, 1):
        assert [s["id"] for s in got[p]] == [s["id"] for s in table.values()
                                             if s.get("p") == p and "id" in s]


def test_a_partitions_recompute_yields(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.aggregates.partials import PartitionAggregates

    monkeypatch.setattr(rc, "reload_rules", lambda rt: None)
    table = _table(3 * rc.YIELD_EVERY, partitions=1)
    aggregates: dict[int, PartitionAggregates] = {}
    rt: Any = SimpleNamespace(
        table=table, rules=RULES, recompute_request=None,
        ctx=SimpleNamespace(clock=SimpleNamespace(now=lambda: T0 + DAY)),
        partition_aggregates=lambda p: aggregates.setdefault(p, PartitionAggregates()))
    data = orjson.loads(rc.control_message("req", 0)[1])
    PERIOD.days = 12.0
    try:
        moved, turns = asyncio.run(_with_turns(rc.recompute_partition(rt, data, 0, {})))
    finally:
        PERIOD.days = 10.0
    assert len(moved) == len(table)
    assert turns >= 2


def test_large_timer_plans_go_to_redis_in_pieces(redis_scenario: Any) -> None:
    """A recompute's plan of 12,000 timers goes in pipelines of at most WRITE_CHUNK members,
    and the index holds exactly what one pipeline would have written."""
    import uuid

    from workers.sla.engine import Effects, Timer

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    plans = {0: timers.Plan(), 1: timers.Plan()}
    for i in range(12_000):
        plans[i % 2].record(Effects(timers=[Timer(f"{i:024x}", "breach", T0 + i, 1)]))
    plans[0].record(Effects(cancel=[Timer(f"{i:024x}", "breach", 0.0, 1)
                                    for i in range(0, 2_000, 2)]))
    sizes: list[int] = []

    async def scenario(client: Any) -> list[int]:
        real_pipeline = client.pipeline

        def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real_pipeline(*args, **kwargs)
            real_execute = pipe.execute

            async def execute(*a: Any, **k: Any) -> Any:
                sizes.append(sum((len(c[0]) - 2) // (2 if c[0][0] == "ZADD" else 1)
                                 for c in pipe.command_stack))
                return await real_execute(*a, **k)

            pipe.execute = execute
            return pipe

        client.pipeline = counting_pipeline
        await timers.write_plans(client, prefix, plans)
        return [await client.zcard(timers.due_key(prefix, p)) for p in (0, 1)]

    counts = redis_scenario(scenario)
    assert counts == [6_000 - 1_000, 6_000]
    assert len(sizes) >= 3
    assert max(sizes) <= timers.WRITE_CHUNK and sum(sizes) == 11_000 + 1_000  # adds, removes
