"""The SLA timers benchmark (README "Timers at scale") runs end to end at a tiny size.

It drives the agent's own sweep through a stand-in runtime, so a change to what the sweep asks
of its runtime breaks the benchmark: commit 9aa539d gave ``ctx.outbox`` a stage argument and
``python -m benchmarks.sla_timers`` crashed with a TypeError until someone ran it by hand.
Here it runs against the session's real redis-server at a few thousand appeals.
"""

from __future__ import annotations

import pytest

from benchmarks import sla_timers
from streams.devstack import RedisServer

pytestmark = pytest.mark.integration


def test_benchmark_runs_and_fires_the_whole_burst(redis_server: RedisServer) -> None:
    appeals, burst = 3000, 300
    result = sla_timers.run(appeals=appeals, partitions=4, burst=burst, sweep_interval=0.1,
                            redis_url=redis_server.url, sample=500)
    assert result["open_appeals"] == appeals
    # Answer warning and breach for every appeal, plus the fz59 redirect stage's warning
    # unless its moment has passed (a live worker fired it already).
    assert 2 * appeals < result["timers_scheduled"] <= 2.5 * appeals
    assert result["index_size_at_burst"] == result["timers_scheduled"]
    # Every burst timer fired through the sweep and the index kept the rest. Other ticks are
    # only timers that came due during the run's few seconds (a backlog of past moments, as
    # before the states were brought up to now, would be hundreds at this size).
    assert result["burst_fired"] == burst
    assert result["other_ticks_fired"] <= 5
    assert result["timers_left_after_burst"] == -result["other_ticks_fired"]
    # The burst was in the index before its moment, so its lag is the sweep's own.
    assert result["burst_written_s_before_due"] > 0
    assert result["lag_max_s"] is not None and result["lag_max_s"] >= 0
    assert result["sweeps"] >= 1
    for key in ("state_bytes_per_appeal_tracemalloc", "state_bytes_per_appeal_serialised",
                "redis_bytes_per_appeal", "schedule_timers_per_s"):
        assert result[key] > 0, key
    # The table the CLI prints is built from the same figures.
    assert "fired 300" in sla_timers._table(result)
