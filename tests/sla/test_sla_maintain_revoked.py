"""The maintenance pass publishes only partitions the worker still holds.

``_maintain`` took the assignment once and then awaited one publish per partition: a partition
revoked during the pass (and published meanwhile by its new owner) was published again by the
old owner with its stale figures, and a quiet partition kept them (review of session 16).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

import workers.sla.agent as agent
from workers.aggregates.partials import PartitionAggregates, snapshot_args


class _Pipe:
    def __init__(self) -> None:
        self.n = 0

    async def __aenter__(self) -> _Pipe:
        return self

    async def __aexit__(self, *_: Any) -> bool:
        return False

    def zcard(self, _key: str) -> None:
        self.n += 1

    async def execute(self) -> list[int]:
        return [0] * self.n


class _Redis:
    async def info(self, _section: str) -> dict[str, str]:
        return {"run_id": "r1"}

    def pipeline(self, transaction: bool = False) -> _Pipe:
        return _Pipe()

    async def mget(self, keys: list[str]) -> list[bytes]:
        return [b"r1"] * len(keys)  # every index complete in this Redis process


def test_a_partition_revoked_during_the_pass_is_left_to_its_new_owner(
        monkeypatch: pytest.MonkeyPatch) -> None:
    owned = {0, 1}
    published: dict[int, bytes] = {}
    stale = PartitionAggregates()
    stale.apply_delta([], [("22-a", "2026-03-10", "received")])
    aggs = {0: PartitionAggregates(), 1: stale}
    aggs[0].apply_delta([], [("22-b", "2026-03-10", "received")])
    rt = SimpleNamespace(
        app=SimpleNamespace(tables=SimpleNamespace(recovery=SimpleNamespace(
            completed=SimpleNamespace(is_set=lambda: True))), rebalancing=False,
            in_recovery=False),
        needs_rebuild=False, batch_in_flight=False, index_dirty=set(), redis_token=None,
        ctx=SimpleNamespace(redis=_Redis(), clock=SimpleNamespace(now=lambda: 1.7732e9)),
        prefix="t:", aggregates=aggs, gauge_authorities=set(),
        assigned_partitions=lambda: set(owned),
        partition_aggregates=lambda p: aggs.setdefault(p, PartitionAggregates()))

    async def publish(_redis: Any, _prefix: str, p: int, agg: PartitionAggregates) -> None:
        published[p] = snapshot_args(agg)[0]
        agg.dirty = False
        await asyncio.sleep(0)
        if p == 0:
            owned.discard(1)  # a rebalance hands partition 1 to another worker meanwhile

    monkeypatch.setattr(agent, "publish", publish)
    monkeypatch.setattr(agent, "_refresh_gauges", lambda *_: None)
    asyncio.run(agent._maintain(rt))  # type: ignore[arg-type]
    assert sorted(published) == [0]
