"""Redis restarted empty, and the workers have not published every partition again yet.

A review restarted the API's Redis empty: stats answered ``answered: 0`` (10 before), the
rating listed every body unrated, ``/v1/appeals/pos-abc`` said 404 ``unknown_appeal``, the
on-time gauges vanished, ``/healthz`` said 200 ``ok``, and the refresher published the empty
rating over the rating sorted sets: nothing told a client these were no real data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, own_redis, run_api, seed
from workers.aggregates.partials import PartitionAggregates, publish
from workers.api.openapi import document
from workers.api.service import rating_key

pytestmark = pytest.mark.integration

GAUGE = 'appeals_on_time_ratio{authority="22-minzdrav",window="1d"}'
READS = ("/v1/authorities/22-minzdrav/stats?window=1d", "/v1/ratings?window=1d",
         "/v1/authorities", "/v1/municipalities/barnaul/stats", "/v1/categories/healthcare/stats",
         "/v1/appeals/pos-abc", "/v1/appeals/never-seen", "/v1/breaches", "/")


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def _code(r: ClientResponse) -> str | None:
    if r.content_type != "application/json":
        return None
    data = await r.json()
    return data.get("error", {}).get("code") if isinstance(data, dict) else None


def test_an_emptied_read_model_is_503_rebuilding_until_every_partition_published() -> None:
    with own_redis() as server:
        async def body(client: TestClient, settings: Settings, redis: Any) -> None:
            stats = await (await client.get(READS[0])).json()
            assert stats["figures"]["answered"] == 10
            assert GAUGE in await (await client.get("/metrics")).text()
            health = await (await client.get("/healthz")).json()
            assert health == {"status": "ok", "read_model": "ready",
                              "partitions_published": 2, "partitions": 2}

            server.restart_empty()
            for _ in range(5):  # the pooled connections died with the old server
                with contextlib.suppress(Exception):
                    await redis.ping()
                    break

            async def rebuilding() -> bool:
                r = await client.get(READS[0])
                return r.status == 503 and await _code(r) == "rebuilding"

            await _until(rebuilding)
            for path in READS:
                r = await client.get(path)
                assert (r.status, await _code(r)) == (503, "rebuilding"), path
                assert int(r.headers["Retry-After"]) >= 1
                assert "0 of 2 partitions" in (await r.json())["error"]["message"]
            r = await client.get("/healthz")
            assert r.status == 200
            assert await r.json() == {"status": "ok", "read_model": "rebuilding",
                                      "partitions_published": 0, "partitions": 2}
            # The gauges stay as last computed; the empty rating was never published.
            await asyncio.sleep(settings.rating_refresh * 3)
            metrics = await client.get("/metrics")
            assert metrics.status == 200 and GAUGE in await metrics.text()
            assert not await redis.exists(rating_key(settings.app_id, "22", "1d"),
                                          rating_key(settings.app_id, "22", "1d") + ":entries")

            # One partition back: still rebuilding (its sums alone are not the figures).
            await publish(redis, f"{settings.app_id}:", 1, PartitionAggregates())
            r = await client.get(READS[0])
            assert (r.status, await _code(r)) == (503, "rebuilding")
            # Some partitions published and not the rest: the message names the setting an
            # API configured with more partitions than the topics have would wait on for ever.
            assert "1 of 2 partitions" in (message := (await r.json())["error"]["message"])
            assert "APPEALS_PARTITIONS (2)" in message
            assert (await (await client.get("/healthz")).json())["partitions_published"] == 1

            await seed(redis, settings)  # the workers' rebuild: every partition again

            async def ready() -> bool:
                return (await client.get(READS[0])).status == 200

            await _until(ready)
            stats = await (await client.get(READS[0])).json()
            assert stats["figures"]["answered"] == 10
            assert (await client.get("/v1/appeals/pos-abc")).status == 200
            r = await client.get("/v1/appeals/never-seen")
            assert (r.status, await _code(r)) == (404, "unknown_appeal")
            assert (await (await client.get("/healthz")).json())["read_model"] == "ready"

        run_api(api_settings(server.url, rating_refresh=0.2), body)


def test_rebuilding_is_documented_on_the_paths_that_read_the_read_model() -> None:
    doc = document()
    for path in ("/v1/authorities/{authority_id}/stats", "/v1/ratings", "/v1/breaches",
                 "/v1/appeals/{appeal_id}", "/"):
        response = doc["paths"][path]["get"]["responses"]["503"]
        assert "`rebuilding`" in response["description"], path
        assert "Retry-After" in response["headers"]
    health = doc["paths"]["/healthz"]["get"]["responses"]["200"]
    schema = health["content"]["application/json"]["schema"]
    assert schema["properties"]["read_model"]["enum"] == ["ready", "rebuilding"]


def test_the_supervisor_page_is_503_rebuilding_while_its_snapshot_is_cached(
        redis_server: Any) -> None:
    """The page reads the rating from the cached snapshot (up to APPEALS_RATING_REFRESH old)
    and the breaches from Redis: with Redis emptied since, it answered 200 with "0 open
    breaches" where /v1/breaches answered 503 rebuilding."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        r = await client.get("/?region=22")
        assert r.status == 200 and 'data-appeal="pos-abc"' in await r.text()
        # Redis lost its data (the snapshot stays cached for the 30 s refresh).
        await redis.delete(f"{settings.app_id}:agg:partitions",
                           f"{settings.app_id}:breaches:open",
                           f"{settings.app_id}:breaches:open:22-minzdrav")
        for path in ("/?region=22", "/supervisor", "/v1/breaches"):
            r = await client.get(path)
            assert (r.status, await _code(r)) == (503, "rebuilding"), path
            assert r.headers["Retry-After"] == "5"

    run_api(api_settings(redis_server.url, rating_refresh=30.0), body)
