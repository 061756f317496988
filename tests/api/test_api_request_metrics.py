"""The API counts its answers by route and code, times them, and exports whether the read model
is ready.

A 500, a 503 ``busy`` and a 503 ``rebuilding`` changed no series on the API's ``/metrics``
(only ``appeals_redis_errors_total``, for Redis errors), so an API failing every reader while
it answered scrapes was seen by no alert.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api.app import SERVICE
from workers.api.pool import PoolBusy

APPEAL = "/v1/appeals/{appeal_id}"


async def _scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await r.text())
            for s in family.samples}


def _requests(scrape: dict[Any, float], route: str, code: str) -> float:
    return scrape.get(("appeals_api_requests_total", (("code", code), ("route", route))), 0.0)


def _timed(scrape: dict[Any, float], route: str) -> float:
    return scrape.get(("appeals_api_request_duration_seconds_count", (("route", route),)), 0.0)


def test_answers_are_counted_by_route_and_code(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        svc = client.app[SERVICE]
        before = await _scrape(client)
        assert (await client.get("/v1/appeals/pos-abc")).status == 200
        assert (await client.get("/v1/appeals/secret-42")).status == 404
        assert (await client.get("/v1/appeals/secret%0A42")).status == 400
        assert (await client.get("/no/such/secret-path")).status == 404
        assert (await client.get("/v1/breaches")).status == 200
        ready = await _scrape(client)
        assert ready[("appeals_api_read_model_ready", ())] == 1.0

        async def bug(*_args: Any) -> Any:
            raise RuntimeError("a bug")

        async def busy(*_args: Any) -> Any:
            raise PoolBusy("every connection in use")

        original = svc.appeal_and_breach
        svc.appeal_and_breach = bug
        assert (await client.get("/v1/appeals/pos-abc")).status == 500
        svc.appeal_and_breach = busy
        r = await client.get("/v1/appeals/pos-abc")
        assert (r.status, (await r.json())["error"]["code"]) == (503, "busy")
        svc.appeal_and_breach = original
        await redis.delete(f"{settings.app_id}:agg:partitions")  # Redis lost its data
        r = await client.get("/v1/breaches")
        assert (r.status, (await r.json())["error"]["code"]) == (503, "rebuilding")

        after = await _scrape(client)
        for route, code, n in ((APPEAL, "200", 1), (APPEAL, "404", 1), (APPEAL, "400", 1),
                               (APPEAL, "500", 1), (APPEAL, "503", 1),
                               ("unmatched", "404", 1), ("/v1/breaches", "200", 1),
                               ("/v1/breaches", "503", 1)):
            assert _requests(after, route, code) - _requests(before, route, code) == n, (
                route, code)
        assert _timed(after, APPEAL) - _timed(before, APPEAL) == 5
        assert _timed(after, "unmatched") - _timed(before, "unmatched") == 1
        assert after[("appeals_api_read_model_ready", ())] == 0.0
        # Bounded labels: route templates only, never a requested path or an appeal id.
        text = await (await client.get("/metrics")).text()
        assert "secret" not in text and "pos-abc" not in text
        r = await client.get("/healthz")
        assert (await r.json())["read_model"] == "rebuilding"

    run_api(api_settings(redis_server.url), body)
