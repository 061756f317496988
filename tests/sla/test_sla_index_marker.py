"""The due-time index's readiness marker says the index is complete in *this* Redis process
(real Redis; review of session 15).

The sweep took any marker for a complete index. A Redis restarted from its last snapshot
brings back the marker with an index that lacks every timer written after the snapshot, and a
FLUSHALL while a rebuild ran left half an index marked ready: the warnings and breaches of the
lost timers never fired, and nothing rebuilt until the next rebalance.
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from tests.sla.sla_support import DAY, ten_day_rules
from workers.sla import agent as sla_agent
from workers.sla import timers
from workers.sla.engine import State, new_state

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
RULES = ten_day_rules()


def _states(n: int) -> list[State]:
    out = []
    for i in range(n):
        routed = {"appeal_id": f"a{i:03d}", "regime": "fz59", "region": "22",
                  "authority_id": "22-mintrans", "category": "roads", "urgent": False}
        out.append(new_state(routed, 0, T0, "Asia/Barnaul", RULES)[0])
    return out


class FlushedHalfway:
    """A client whose Redis loses the rebuild's data after its first chunk, as a FLUSHALL
    would (only this key is deleted: the session's Redis is shared with other tests)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.chunks = 0

    async def zadd(self, key: str, mapping: dict[str, float]) -> int:
        added = int(await self.client.zadd(key, mapping))
        self.chunks += 1
        if self.chunks == 1:
            await self.client.delete(key)
        return added

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_rebuild_redis_loses_halfway_is_not_marked_ready(redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, Any, int]:
        count = await timers.rebuild(FlushedHalfway(client), prefix, 0, _states(10),
                                     3 * DAY, chunk=4, token="t")
        return (count, await client.get(timers.ready_key(prefix, 0)),
                await client.zcard(timers.due_key(prefix, 0)))

    count, marker, left = redis_scenario(scenario)
    assert count == -1 and marker is None  # rebuilt again by the next maintenance pass
    assert left == 0


def test_a_whole_rebuild_is_marked_with_the_redis_process(redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, str, Any]:
        token = await timers.server_token(client)
        count = await timers.rebuild(client, prefix, 0, _states(10), 3 * DAY, chunk=4,
                                     token=token)
        return count, token, await client.get(timers.ready_key(prefix, 0))

    count, token, marker = redis_scenario(scenario)
    assert count == 20 and len(token) == 40 and marker == token.encode()
    assert timers.marker_matches(marker, token)
    assert not timers.marker_matches(marker, "another process")
    assert timers.marker_matches(marker, None)  # before the first maintenance pass


def test_the_sweep_rebuilds_an_index_whose_marker_names_another_redis_process(
        redis_scenario: Any) -> None:
    """What a restart from an older snapshot looks like to the sweep: a marker written by the
    process before the restart. It fired the timers it found and went on; now the partition
    is marked for a rebuild and nothing fires from the stale index."""
    prefix = f"{uuid.uuid4().hex}:"
    sent: list[Any] = []

    class Outbox:
        async def send_record(self, *args: Any) -> None:
            sent.append(args)

        async def flush(self) -> None:
            return None

    async def scenario(client: Any) -> set[int]:
        await client.zadd(timers.due_key(prefix, 0), {"a001|breach|0": T0})
        await client.set(timers.ready_key(prefix, 0), "the process before the restart")
        recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        rt: Any = SimpleNamespace(
            app=SimpleNamespace(tables=SimpleNamespace(recovery=recovery)),
            ctx=SimpleNamespace(redis=client, clock=SimpleNamespace(now=lambda: T0 + DAY),
                                outbox=lambda stage: Outbox()),
            needs_rebuild=False, assigned_partitions=lambda: {0}, index_dirty=set(),
            prefix=prefix, redis_token=await timers.server_token(client))
        await sla_agent._sweep(rt)
        return set(rt.index_dirty)

    assert redis_scenario(scenario) == {0}
    assert sent == []


def test_a_loss_between_the_read_of_the_states_and_the_rebuild_is_seen(
        redis_scenario: Any) -> None:
    """Redis lost its data after the maintenance pass read the table and before a
    partition's rebuild began: the rebuild was whole and marked ready, without the timers the
    agent wrote in between (review of the session's late commits). The guard key set before
    the read is gone then, and the rebuild is not marked ready. (Only this test's keys are
    deleted, as a FLUSHALL would: the session's Redis is shared.)"""
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, Any, int, Any]:
        guard = await timers.set_guard(client, prefix)
        snapshot = _states(2)
        await client.zadd(timers.due_key(prefix, 0), {"a000|breach|1": T0 + 2 * DAY})
        await client.delete(guard, timers.due_key(prefix, 0))  # Redis lost its data
        lost = await timers.rebuild(client, prefix, 0, snapshot, 3 * DAY, token="t",
                                    guard=guard)
        marker = await client.get(timers.ready_key(prefix, 0))
        guard = await timers.set_guard(client, prefix)
        whole = await timers.rebuild(client, prefix, 0, snapshot, 3 * DAY, token="t",
                                     guard=guard)
        return lost, marker, whole, await client.get(timers.ready_key(prefix, 0))

    lost, marker, whole, ready = redis_scenario(scenario)
    assert (lost, marker) == (-1, None)
    assert (whole, ready) == (4, b"t")


def test_the_maintenance_pass_rebuilds_a_lost_index_before_it_publishes_figures(
        redis_scenario: Any) -> None:
    """Redis restarted empty, and the 2-s maintenance pass ran before the sweep noticed the
    missing markers: it published the figures a batch had just made dirty, which is what the
    API's readiness reads (``agg:partitions``), so the API left its 503 "rebuilding" while
    the records and open breaches of the appeals that batch did not touch were still missing.
    The pass now reads the markers itself and rebuilds first. (This test's keys are deleted,
    as a FLUSHALL would: the session's Redis is shared.)"""
    from workers.aggregates.partials import PartitionAggregates
    from workers.aggregates.readmodel import published_partitions
    from workers.sla import read_model
    from workers.sla.engine import apply_tick

    app_id = f"t{uuid.uuid4().hex[:12]}"
    prefix = f"{app_id}:"
    now = T0 + 12 * DAY

    def breached(appeal_id: str, p: int) -> State:
        routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
                  "authority_id": "22-mintrans", "category": "roads", "urgent": False}
        state = new_state(routed, p, T0, "Asia/Barnaul", RULES)[0]
        apply_tick(state, "breach", state["cycle"], RULES)
        read_model.bump_version(state)
        return state

    async def scenario(client: Any) -> tuple[set[int], list[bool], int]:
        table = {aid.encode(): breached(aid, p)
                 for aid, p in (("a0", 0), ("a1", 1), ("b0", 0), ("b1", 1))}
        aggregates: dict[int, PartitionAggregates] = {}
        recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        rt: Any = SimpleNamespace(
            app=SimpleNamespace(tables=SimpleNamespace(recovery=recovery), rebalancing=False,
                                in_recovery=False),
            ctx=SimpleNamespace(redis=client, clock=SimpleNamespace(
                now=lambda: now, wall_time_of=lambda ts: ts)),
            table=table, needs_rebuild=False, batch_in_flight=False, index_dirty={0, 1},
            assigned_partitions=lambda: {0, 1}, prefix=prefix, redis_token=None,
            rules=RULES, gauge_authorities=set(), aggregates=aggregates,
            partition_aggregates=lambda p: aggregates.setdefault(p, PartitionAggregates()))
        for state in table.values():
            rt.partition_aggregates(state["p"]).apply_delta([], [("22-mintrans", "d", "x")])
        await sla_agent._maintain(rt)  # start-up: rebuilt and published
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)  # Redis restarted empty
        changed = {key: table[key] for key in (b"a0", b"a1")}  # a batch on each partition
        for state in changed.values():
            read_model.bump_version(state)
            rt.partition_aggregates(state["p"]).dirty = True
        await sla_agent._write_redis(rt, changed, {})
        await sla_agent._maintain(rt)  # the pass, before any sweep
        records = [bool(await client.exists(read_model.appeal_key(prefix, aid)))
                   for aid in ("a0", "a1", "b0", "b1")]
        return (await published_partitions(client, prefix), records,
                int(await client.zcard(f"{prefix}{read_model.OPEN_BREACHES}")))

    published, records, breaches = redis_scenario(scenario)
    assert published == {0, 1}
    assert records == [True] * 4  # published only with every record of the partition
    assert breaches == 4
