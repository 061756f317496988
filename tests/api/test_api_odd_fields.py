"""An odd value in the read model, or a bug, must not turn the API into text/plain 500s.

A review put one field ``22-minzdrav||answered`` (a windowed counter without its day) into a
partition's hash: every figures endpoint, the supervisor page and ``/metrics`` answered
aiohttp's text/plain 500; so did a member ``x`` of ``agg:partitions``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import TZ_TODAY, api_settings, run_api
from workers.api.app import SERVICE

pytestmark = pytest.mark.integration

PATHS = ("/v1/ratings?window=1d", "/v1/authorities", "/v1/categories/healthcare/stats",
         "/v1/authorities/22-minzdrav/stats?window=1d", "/")


def test_a_field_without_a_day_and_an_odd_partition_member_are_left_out(
        redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await redis.hset(f"{settings.app_id}:agg:1", mapping={"22-minzdrav||answered": 1})
        await redis.sadd(f"{settings.app_id}:agg:partitions", "x")
        await asyncio.sleep(settings.rating_refresh + 0.3)
        for path in PATHS:
            r = await client.get(path)
            assert r.status == 200, (path, r.status, (await r.text())[:200])
        stats = await (await client.get("/v1/authorities/22-minzdrav/stats?window=1d")).json()
        assert stats["figures"]["answered"] == 10  # the seeded ones; the odd field left out
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        assert 'appeals_on_time_ratio{authority="22-minzdrav"' in await metrics.text()

    run_api(api_settings(redis_server.url, rating_refresh=0.2), body)


def test_a_sketch_bin_out_of_range_is_left_out(redis_server: Any) -> None:
    """One sketch field ``{"100000": 100}`` (a bin the mapping cannot turn back into a time)
    made the quantile raise OverflowError: the ratings, the authorities' list and figures and
    the supervisor page answered 500, and the rating refresher failed each time."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await redis.hset(f"{settings.app_id}:aggsk:1",
                         mapping={f"22-minsoc|{TZ_TODAY.isoformat()}": '{"100000": 100}'})
        await asyncio.sleep(settings.rating_refresh + 0.3)
        for path in (*PATHS, "/v1/authorities/22-minsoc/stats?window=1d"):
            r = await client.get(path)
            assert r.status == 200, (path, r.status, (await r.text())[:200])
        stats = await (await client.get("/v1/authorities/22-minzdrav/stats?window=1d")).json()
        assert stats["figures"]["median_response_s"] is not None  # the seeded sketch

    run_api(api_settings(redis_server.url, rating_refresh=0.2), body)


def test_an_unforeseen_error_is_a_json_500_without_internals(
        redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a handler raises beyond the errors the API knows is a JSON 500 (the error
    format every client reads), with nothing of the exception in it; ``/metrics`` still
    answers when the snapshot fails that way."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        svc = client.app[SERVICE]

        def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError("secret-internal-detail")

        async def broken_snapshot(*_: Any, **__: Any) -> Any:
            raise RuntimeError("secret-internal-detail")

        monkeypatch.setattr(svc, "window_bounds", broken)
        r = await client.get("/v1/categories/healthcare/stats")
        assert r.status == 500 and r.content_type == "application/json"
        data = await r.json()
        assert data["error"]["code"] == "internal_error"
        assert "secret" not in await r.text() and "RuntimeError" not in await r.text()
        monkeypatch.setattr(svc, "snapshot", broken_snapshot)
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        assert "appeals_redis_errors_total" in await metrics.text()

    run_api(api_settings(redis_server.url), body)
