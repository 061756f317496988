"""Publishing a partition's figures while the SLA agent keeps changing them (real Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.exceptions

from workers.aggregates.partials import PartitionAggregates, publish
from workers.aggregates.readmodel import read_figures

PREFIX = "publish-test:"


class _DeltaDuringExecute:
    """The real client, except that ``hook`` runs while a MULTI is in flight: what the SLA
    agent does when it applies a batch during the publisher's await."""

    def __init__(self, client: Any, hook: Callable[[], None]) -> None:
        self.client, self.hook = client, hook

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self.client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            self.hook()
            return await execute(*args, **kwargs)

        pipe.execute = hooked
        return pipe


def _received(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(f.received for f in read_figures(client, PREFIX, 1).values())
    finally:
        client.close()


def test_a_change_during_the_write_is_published_by_the_next_round(
        redis_server: Any, redis_scenario: Callable[..., object]) -> None:
    agg = PartitionAggregates()
    agg.apply_delta([], [("auth-1", "2026-11-26", "received")])
    late = [("auth-1", "2026-11-26", "received"), ("auth-1", "2026-11-26", "received")]

    async def scenario(client: Any) -> None:
        hooked = _DeltaDuringExecute(client, lambda: agg.apply_delta(late[:1], late))
        await publish(hooked, PREFIX, 0, agg)
        # The snapshot written had 1; the change made meanwhile must still be pending.
        assert agg.dirty
        if agg.dirty:  # what the SLA agent's 2 s maintenance does
            await publish(client, PREFIX, 0, agg)
        assert not agg.dirty

    redis_scenario(scenario)
    assert _received(redis_server.url) == 2


def test_a_failed_write_leaves_the_figures_pending(redis_scenario: Callable[..., object]) -> None:
    agg = PartitionAggregates()
    agg.apply_delta([], [("auth-1", "2026-11-26", "received")])

    def fail() -> None:
        raise redis.exceptions.ConnectionError("down")

    async def scenario(client: Any) -> None:
        with pytest.raises(redis.exceptions.ConnectionError):
            await publish(_DeltaDuringExecute(client, fail), PREFIX + "f:", 0, agg)

    redis_scenario(scenario)
    assert agg.dirty
