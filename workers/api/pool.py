"""The API's Redis client: a bounded pool whose exhaustion is told apart from an outage.

Why: redis-py's default pool raises ``MaxConnectionsError`` (a ``ConnectionError``) the moment
more than ``max_connections`` commands are in flight, and the API answered that as "the read
model (Redis) is not reachable" while Redis was healthy (150 parallel requests were enough).
Here a request waits up to :data:`POOL_WAIT_S` for a free connection (``BlockingConnectionPool``)
and only then fails, with :class:`PoolBusy`, which the API answers as 503 ``busy`` with
``Retry-After``: the client should come back in a moment, and operators should not go looking
for a Redis outage. The pool size is ``APPEALS_API_REDIS_CONNECTIONS``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.connection import BlockingConnectionPool

from streams.settings import Settings

#: Seconds a command waits for a free pooled connection before :class:`PoolBusy`.
POOL_WAIT_S = 2.0
#: Seconds one Redis command (or connecting) may take before it counts as an outage.
SOCKET_TIMEOUT_S = 5.0


class PoolBusy(redis.exceptions.ConnectionError):
    """Every pooled connection stayed in use for the whole wait: this process is saturated,
    Redis itself answered. A ``ConnectionError`` subclass so code that only knows redis-py's
    errors still treats it as a failed command; the API checks for it first."""


class WaitingConnectionPool(BlockingConnectionPool):
    """``BlockingConnectionPool`` that raises :class:`PoolBusy` when its wait runs out.

    redis-py raises a plain ``ConnectionError("No connection available.")`` from the wait's
    ``TimeoutError``, the same type as a refused connection; the cause tells them apart (a
    failure to connect is raised after the wait, outside it, and never with that cause).
    """

    async def get_connection(self, command_name: Any = None, *keys: Any,
                             **options: Any) -> Any:
        try:
            return await super().get_connection()
        except redis.exceptions.ConnectionError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError | TimeoutError):
                raise PoolBusy(f"no free Redis connection within {self.timeout:g} s "
                               f"({self.max_connections} in use)") from exc
            raise


def make_client(settings: Settings, wait: float | None = None) -> aioredis.Redis:
    """The API's client over a :class:`WaitingConnectionPool` of
    ``APPEALS_API_REDIS_CONNECTIONS`` connections; closing the client closes the pool."""
    pool = WaitingConnectionPool.from_url(
        settings.redis, max_connections=settings.api_redis_connections,
        timeout=POOL_WAIT_S if wait is None else wait,
        socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S)
    return aioredis.Redis.from_pool(pool)
