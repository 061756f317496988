"""The API serves the outcomes that redirects past the deadline and reopens now keep.

Figures published from real SLA states (the engine's contributions, as the SLA agent publishes
them) to a real Redis, read back through the HTTP API: a body that let its deadline pass and
then redirected the appeal shows it as ``redirected_overdue`` and in its on-time share, and a
late answer stays in the figures after a reopen and a quick second answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from streams.settings import Settings
from workers.aggregates.partials import PartitionAggregates, publish
from workers.api.app import create_app
from workers.api.openapi import document
from workers.sla.engine import SlaRules, State, apply_lifecycle, keyed_contributions, new_state

DAY = 86400.0
RULES = SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                 extend=lambda regime, due, days, *_: due + days * DAY)


def _ev(kind: str, at: float, n: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "appeal_id": "a", "event": kind,
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), **extra}


def _state(appeal_id: str, authority: str, start: float,
           history: list[tuple[str, float, dict[str, Any]]]) -> State:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": authority, "category": "healthcare"}
    state = new_state(routed, 0, start, "Asia/Barnaul", RULES)[0]
    for n, (kind, at, extra) in enumerate(history):
        apply_lifecycle(state, _ev(kind, at, n, **extra), RULES)
    return state


def test_stats_show_redirected_overdue_and_keep_a_reopened_late_answer(
        redis_server: Any) -> None:
    now = time.time()
    start = now - 14 * DAY  # due 4 days ago; everything below is inside the 30-day window
    states = [
        # 22-minzdrav sits on it past its deadline, then hands it to 22-minsoc.
        _state("r1", "22-minzdrav", start,
               [("redirected", now - DAY, {"to_authority_id": "22-minsoc"})]),
        # 22-minzdrav answers one on time.
        _state("r2", "22-minzdrav", start, [("answered", start + DAY, {})]),
        # 22-mincifry answers late, the appeal is reopened and answered at once.
        _state("r3", "22-mincifry", start,
               [("answered", now - 3 * DAY, {}), ("reopened", now - 2 * DAY, {}),
                ("answered", now - 2 * DAY + 60, {})]),
    ]
    settings = Settings.load({}).replace(redis=redis_server.url,
                                         app_id=f"api-outcomes-{uuid.uuid4().hex[:8]}",
                                         partitions=1, rating_min_volume=5)

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        redis = aioredis.Redis.from_url(redis_server.url)
        agg = PartitionAggregates()
        for state in states:
            agg.apply_delta([], keyed_contributions(state))
        await publish(redis, f"{settings.app_id}:", 0, agg)
        app = create_app(settings, aioredis.Redis.from_url(redis_server.url))
        async with TestClient(TestServer(app)) as client:
            out = []
            for subject in ("authorities/22-minzdrav", "authorities/22-mincifry",
                            "categories/healthcare"):
                r = await client.get(f"/v1/{subject}/stats?window=30d")
                assert r.status == 200, subject
                out.append((await r.json())["figures"])
        await redis.aclose()
        return out[0], out[1], out[2]

    minzdrav, mincifry, healthcare = asyncio.run(main())
    assert (minzdrav["answered"], minzdrav["answered_on_time"],
            minzdrav["redirected_overdue"], minzdrav["breaches"]) == (1, 1, 1, 1)
    assert minzdrav["on_time_share"] == 0.5  # was 1.0: passing the late one on paid
    assert (mincifry["answered"], mincifry["answered_on_time"]) == (2, 1)
    assert mincifry["on_time_share"] == 0.5  # was 1.0: the reopen erased the late answer
    assert healthcare["redirected_overdue"] == 1
    documented = document()["components"]["schemas"]["Figures"]["properties"]
    assert set(minzdrav) <= set(documented) and "redirected_overdue" in documented
