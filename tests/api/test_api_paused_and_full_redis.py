"""What the API answers for a paused appeal and with Redis full or away, on a real
redis-server through real HTTP requests (defects a review reproduced against ``appeals api``):

* an appeal paused before its deadline, still paused after it, read ``overdue_s > 0`` although
  the engine says it is neither breached nor overdue (its clock stands still; the deadline
  moves on at the resume);
* the API counted its Redis failures (``appeals_redis_errors_total``) but its ``/metrics`` did
  not export them, and a ``/metrics`` scrape with Redis away answered 503 (the API looked down);
* reads went through MULTI, which Redis over ``maxmemory`` (``noeviction``) refuses, so every
  endpoint answered 503 "not reachable" while plain reads still worked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.exceptions import OutOfMemoryError

from streams.settings import Settings
from tests.api.api_support import api_settings, own_redis, run_api
from workers.api.app import SERVICE
from workers.sla import read_model
from workers.sla.engine import SlaRules, State, apply_lifecycle, apply_tick, new_state

pytestmark = pytest.mark.integration

DAY = 86400.0
RULES = SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                 extend=lambda regime, due, days, *_: due + days * DAY)


def _engine_state(appeal_id: str, start: float, history: list[tuple[str, float]]) -> State:
    """An appeal of 22-minzdrav (due 10 days after ``start``) through the real SLA engine:
    lifecycle events (kind, at) or ``("breach", 0)`` for the breach timer firing."""
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": "22-minzdrav", "category": "healthcare"}
    state = new_state(routed, 0, start, "Asia/Barnaul", RULES)[0]
    for n, (kind, at) in enumerate(history):
        if kind == "breach":
            apply_tick(state, "breach", state["cycle"], RULES)
            continue
        apply_lifecycle(state, {
            "event_id": f"{appeal_id}-e{n}", "appeal_id": appeal_id, "event": kind,
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat()}, RULES)
    read_model.bump_version(state)
    return state


def test_paused_appeal_is_overdue_only_as_an_open_breach(redis_server: Any) -> None:
    now = time.time()
    start = now - 15 * DAY  # due 5 days ago
    states = {
        # paused 2 days in, in time, and still paused: its clock stands still
        "paused-in-time": _engine_state("paused-in-time", start, [("paused", start + 2 * DAY)]),
        # breached first, then paused: an open breach, overdue as /v1/breaches says
        "paused-breached": _engine_state("paused-breached", start, [
            ("breach", 0), ("paused", start + 12 * DAY)]),
        # running past its deadline: overdue as before
        "running-late": _engine_state("running-late", start, []),
    }
    assert states["paused-in-time"]["status"] == "paused"
    assert not states["paused-in-time"]["breached"]
    assert states["paused-breached"]["breached"]

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await read_model.write(redis, read_model.key_prefix(settings.app_id),
                               list(states.values()), now)
        listed = {b["appeal_id"]: b for b in
                  (await (await client.get("/v1/breaches?authority=22-minzdrav")).json())
                  ["breaches"]}
        got = {}
        for appeal_id in states:
            r = await client.get(f"/v1/appeals/{appeal_id}")
            assert r.status == 200
            got[appeal_id] = await r.json()

        paused = got["paused-in-time"]
        assert (paused["status"], paused["open_breach"]) == ("paused", False)
        assert paused["overdue_s"] is None, paused
        assert "paused-in-time" not in listed

        breached = got["paused-breached"]
        assert (breached["status"], breached["open_breach"]) == ("paused", True)
        assert breached["overdue_s"] == pytest.approx(5 * DAY, abs=600)
        assert listed["paused-breached"]["overdue_s"] == pytest.approx(breached["overdue_s"],
                                                                       abs=60)
        assert got["running-late"]["overdue_s"] == pytest.approx(5 * DAY, abs=600)

    run_api(api_settings(redis_server.url), body)


def _metric(text: str, operation: str) -> float | None:
    pattern = rf'^appeals_redis_errors_total\{{operation="{operation}"\}} (\S+)$'
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None


def test_api_serves_reads_with_redis_over_maxmemory_and_exports_its_redis_errors() -> None:
    with own_redis() as server:
        async def body(client: TestClient, settings: Settings, redis: Any) -> None:
            assert (await client.get("/v1/appeals/pos-abc")).status == 200
            scrape = await (await client.get("/metrics")).text()
            assert "# TYPE appeals_redis_errors_total counter" in scrape
            published_errors = _metric(scrape, "rating_publish") or 0.0

            await redis.config_set("maxmemory-policy", "noeviction")
            await redis.config_set("maxmemory", "1")
            try:
                assert await redis.hgetall(f"{settings.app_id}:appeal:pos-abc")  # plain: fine
                r = await client.get("/v1/appeals/pos-abc")
                assert r.status == 200, await r.text()
                appeal = await r.json()
                assert (appeal["open_breach"], appeal["regime"]) == (True, "pos")
                for path in ("/v1/ratings", "/v1/authorities", "/v1/breaches",
                             "/v1/authorities/22-minzdrav/stats", "/"):
                    r = await client.get(path)
                    assert r.status == 200, (path, await r.text())
                ratings = await (await client.get("/v1/ratings")).json()
                assert {e["authority_id"] for e in ratings["entries"]} >= {"22-minzdrav"}
                # The refresh could not publish the ratings (a write): counted and exported.
                await asyncio.sleep(0.5)  # past APPEALS_RATING_REFRESH: the scrape refreshes
                r = await client.get("/metrics")
                assert r.status == 200
                assert (_metric(await r.text(), "rating_publish") or 0.0) > published_errors
            finally:
                await redis.config_set("maxmemory", "0")

            # A refusal that still reaches a request has its own error code.
            async def full(appeal_id: str) -> Any:
                raise OutOfMemoryError(
                    "command not allowed when used memory > 'maxmemory'.")

            svc = client.app[SERVICE]  # type: ignore[index]
            svc.appeal_and_breach = full
            r = await client.get("/v1/appeals/pos-abc")
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "read_model_full"
            del svc.appeal_and_breach  # the real method again

            # Redis away: /metrics still answers, with the failures counted.
            server.stop()
            r = await client.get("/v1/appeals/pos-abc")
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "unavailable"
            r = await client.get("/metrics")
            assert r.status == 200, await r.text()
            text = await r.text()
            assert (_metric(text, "api_read") or 0.0) >= 1
            assert "appeals_on_time_ratio" in text

        run_api(api_settings(server.url, rating_refresh=0.2), body)
