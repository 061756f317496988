"""An open breached appeal stays visible in the API however long nobody acts on it.

After its escalation nothing writes an open appeal's read model again; with the 90-day expiry
every record once had, the appeal dropped out of ``open_breaches`` (and ``/v1/appeals/{id}``,
the supervisor page) while the figures still counted it as open and overdue. ``TTL_S`` = 1 s
stands for the 90 days; the rest is the real writer, the real service and a real Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from streams.clock import SlaClock
from streams.settings import Settings
from workers.api.service import ApiService
from workers.routing import load_rules
from workers.sla import read_model
from workers.sla.engine import State

pytestmark = pytest.mark.integration

DAY = 86400.0


def _state(appeal_id: str, status: str, due: float, **extra: Any) -> State:
    state: State = {"id": appeal_id, "p": 0, "status": status, "auth": "22-minzhkh",
                    "regime": "fz59", "cat": "housing_utilities", "muni": None,
                    "reg": due - 30 * DAY, "due": due, "answered": None, "alerts": [],
                    "cycle": 0, "ext": 0, "breached": due, "bdays": ["2025-01-01"], "v": 4}
    state.update(extra)
    return state


def test_open_breach_outlives_the_retention(redis_server: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_model, "TTL_S", 1)
    settings = Settings(redis=redis_server.url, app_id=f"ret-{uuid.uuid4().hex[:8]}")
    due = time.time() - 170 * DAY

    async def go() -> tuple[Any, ...]:
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(settings.redis)
        try:
            svc = ApiService(settings, redis, load_rules(None, default_region="22"),
                             SlaClock(1.0, 0.0))
            await read_model.write(redis, read_model.key_prefix(settings.app_id),
                                   [_state("open1", "running", due),
                                    _state("paused1", "paused", due + DAY),
                                    _state("done1", "answered", due, answered=due + DAY)],
                                   due + 3 * DAY)
            await asyncio.sleep(1.5)
            page = await svc.open_breaches(None, 100)
            return ([b.appeal_id for b in page.items], page.total, await svc.appeal("open1"),
                    await svc.appeal("done1"))
        finally:
            await redis.aclose()

    ids, total, open_doc, done_doc = asyncio.run(go())
    assert (ids, total) == (["open1", "paused1"], 2)
    assert open_doc is not None and (open_doc["status"], open_doc["sla"]) == ("running",
                                                                              "breached")
    assert done_doc is None  # answered: kept for the retention only
