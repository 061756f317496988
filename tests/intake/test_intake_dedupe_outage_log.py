"""A Redis outage is logged by intake's dedupe once a minute, not once per batch.

"Redis unavailable for intake dedupe" was written for every batch while Redis was down: under
load several lines a second for as long as the outage lasted. It now comes through a
:class:`~streams.log_limit.LogLimiter`, as the HTTP servers' repeated errors do; every failure
is still counted in ``appeals_redis_errors_total``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import redis.exceptions

from streams.log_limit import LogLimiter
from tests.intake.fakes import AgentHarness

DOWN = "Redis unavailable for intake dedupe"


class DownRedis:
    """Redis refusing every script call, as during an outage."""

    def register_script(self, source: str) -> Any:
        async def call(keys: list[Any], args: list[Any], client: Any = None) -> Any:
            raise redis.exceptions.ConnectionError("connection refused")

        return call


def _appeal(i: int) -> bytes:
    return orjson.dumps({"schema_version": 1, "channel": "pos", "external_id": f"o-{i}",
                         "submitted_at": "2025-01-20T10:00:00+07:00", "region": "22",
                         "text": f"Яма на дороге номер {i}"})


def test_an_outage_is_logged_once_for_many_batches(caplog: pytest.LogCaptureFixture) -> None:
    h = AgentHarness()
    h.redis = DownRedis()  # type: ignore[assignment]
    batches = [[m] for m in h.batch("pos", [_appeal(i) for i in range(5)])]
    with caplog.at_level(logging.WARNING, logger="workers.intake.agent"):
        h.run(*batches)
    assert h.crashes == []
    assert len(h.registered()) == 5  # registered without dedupe, nothing lost
    assert [r.getMessage() for r in caplog.records if DOWN in r.getMessage()] == [
        f"{DOWN}; registering without it"]


def test_the_limiter_lets_one_line_a_interval_through_and_counts_the_rest() -> None:
    now = [100.0]
    limiter = LogLimiter(60.0, clock=lambda: now[0])
    assert limiter.allow() == 0
    assert [limiter.allow() for _ in range(3)] == [None, None, None]
    now[0] += 59.9
    assert limiter.allow() is None
    now[0] += 0.2
    assert limiter.allow() == 4  # the line says how many were left out
    assert limiter.allow() is None
