"""Helpers of the API tests: settings, a hand-made read model, the app behind a real server.

Everything runs against a real redis-server (the session's, or one of its own when a test
stops or freezes it) and real HTTP requests through aiohttp's test server and client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from streams.devstack import RedisServer, start_redis
from streams.settings import Settings
from workers.aggregates.partials import PartitionAggregates, publish
from workers.api.app import create_app

LOG_DIR = Path(os.environ.get("APPEALS_TEST_LOG_DIR", "var/test-logs"))
TZ_TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()  # region 22's zone
ANSWERED = {"22-minzdrav": (10, 9), "22-minsoc": (8, 4), "22-mincifry": (2, 2)}

Body = Callable[[TestClient, Settings, Any], Awaitable[None]]


def api_settings(redis_url: str, **changes: Any) -> Settings:
    return Settings.load({}).replace(redis=redis_url, app_id=f"api-{uuid.uuid4().hex[:8]}",
                                     partitions=2, rating_min_volume=5, **changes)


async def seed(redis: Any, settings: Settings) -> None:
    """Figures of three bodies (also under a category and a municipality) and one open
    breach, ``pos-abc`` of 22-minzdrav, as the aggregates and the SLA writer store them.
    The other partitions publish no figures, as a worker publishes a quiet partition: until
    every partition has, the API answers 503 ``rebuilding``."""
    today = TZ_TODAY.isoformat()
    agg = PartitionAggregates()
    for auth, (answered, on_time) in ANSWERED.items():
        for subject in (auth, "cat:healthcare", "muni:barnaul"):
            agg.apply_delta([], [(subject, today, "answered")] * answered
                            + [(subject, today, "answered_on_time")] * on_time)
            for i in range(answered):
                agg.add_response(subject, today, 3600.0 * (i + 1))
    await publish(redis, f"{settings.app_id}:", 0, agg)
    for partition in range(1, settings.partitions):
        await publish(redis, f"{settings.app_id}:", partition, PartitionAggregates())
    await redis.hset(f"{settings.app_id}:appeal:pos-abc", mapping={
        "status": "running", "sla": "breached", "authority_id": "22-minzdrav",
        "regime": "pos", "category": "healthcare", "municipality": "barnaul",
        "registered_at": "2026-01-01T00:00:00+00:00", "due_at": "2026-01-10T00:00:00+00:00",
        "answered_at": "", "updated_at": "2026-01-11T00:00:00+00:00"})
    due = dt.datetime(2026, 1, 10, tzinfo=dt.UTC).timestamp()
    await redis.zadd(f"{settings.app_id}:breaches:open", {"pos-abc": due})
    await redis.zadd(f"{settings.app_id}:breaches:open:22-minzdrav", {"pos-abc": due})


def run_api(settings: Settings, body: Body, *, client_factory: Callable[[], Any] | None = None,
            unlimited_connections: bool = False, **create_kwargs: Any) -> None:
    """Seed, start the app (with its own Redis client unless ``client_factory`` makes one),
    run ``body(client, settings, redis)`` and shut everything down."""
    async def main() -> None:
        redis = aioredis.Redis.from_url(settings.redis)
        try:
            await seed(redis, settings)
            client = client_factory() if client_factory else None
            app = create_app(settings, client, **create_kwargs)
            kwargs: dict[str, Any] = {}
            if unlimited_connections:  # aiohttp's client sends at most 100 at once otherwise
                kwargs["connector"] = aiohttp.TCPConnector(limit=0)
            async with TestClient(TestServer(app), **kwargs) as http:
                await body(http, settings, redis)
        finally:
            await redis.aclose()

    asyncio.run(main())


@contextlib.contextmanager
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test that stops, freezes or kills it; always resumed and
    stopped afterwards."""
    server = start_redis(log_dir=LOG_DIR)
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            if server.alive():
                os.kill(server.pid, signal.SIGCONT)
        server.stop()
