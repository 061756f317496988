"""Appeals from a region without rules: one warning a minute per region, not one per appeal
(routing fixes, D8). Every one of them is counted in appeals_routed_total{level="unroutable"}."""

from __future__ import annotations

import logging

import pytest

from streams.log_limit import LogLimiter
from workers.routing import RouteInput, Router
from workers.routing import router as router_module


def test_one_warning_a_minute_per_region_without_rules(
    router: Router, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(router_module, "_UNROUTABLE_LOG",
                        LogLimiter(60.0, lambda: now[0]), raising=False)
    caplog.set_level(logging.WARNING, logger="workers.routing.router")

    def route(n: int, region: str) -> None:
        for k in range(n):
            decision = router.route(RouteInput(f"a{k}", region, "roads", text="яма"))
            assert decision.level == "unroutable"

    route(5, "54")
    route(3, "77")
    route(2, "xx")  # invalid codes: one key
    now[0] += 30
    route(2, "54")
    now[0] += 31
    route(1, "54")
    lines = [r.getMessage() for r in caplog.records if r.name == "workers.routing.router"]
    assert len(lines) == 4, lines
    assert "region 54" in lines[0] and "0 more" in lines[0]
    assert "region 77" in lines[1]
    assert "an invalid region code" in lines[2] and "'xx'" not in lines[2]
    assert "region 54" in lines[3] and "6 more" in lines[3]
    assert all('appeals_routed_total{level="unroutable"}' in line for line in lines)


def test_the_limiter_forgets_the_oldest_keys_past_its_bound() -> None:
    now = [0.0]
    limiter = LogLimiter(60.0, lambda: now[0], max_keys=2)
    assert limiter.allow("a") == 0
    assert limiter.allow("a") is None
    assert limiter.allow("b") == 0
    assert limiter.allow("c") == 0  # «a» forgotten
    assert limiter.allow("a") == 0
    assert limiter.allow("c") is None
