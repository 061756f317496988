"""``benchmarks.faust_overhead``'s meter leaves the first batch out of its rate and CPU cost.

The clock and the CPU baseline start once the first batch is already fetched and decoded; a
meter that still counted that batch reported twice the records/s and half the CPU per record on
two fetches, and an absurd rate when everything came in one (``probes.Status`` had the same bug).
"""

from __future__ import annotations

import pytest

from benchmarks import faust_overhead as fo


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    now = {"wall": 100.0, "cpu": 10.0}
    monkeypatch.setattr(fo.time, "monotonic", lambda: now["wall"])
    monkeypatch.setattr(fo, "_cpu", lambda: now["cpu"])
    return now


def test_the_first_batch_is_counted_but_not_timed(clock: dict[str, float]) -> None:
    meter = fo._Meter(20_000)
    assert not meter.seen(10_000)  # fetched and decoded before the clock started
    clock["wall"] += 1.0
    clock["cpu"] += 1.0  # the second batch: 1 s of wall and CPU time
    assert meter.seen(10_000)
    r = meter.result()
    assert r["records_per_s"] == 10_000.0
    assert r["cpu_us_per_record"] == 100.0
    assert r["cpu_share"] == 1.0
    assert r["records"] == 20_000 and r["timed_records"] == 10_000


def test_a_single_batch_has_no_rate(clock: dict[str, float]) -> None:
    meter = fo._Meter(5000)
    assert meter.seen(5000)
    r = meter.result()
    assert r["records"] == 5000
    assert r["records_per_s"] is None and r["cpu_us_per_record"] is None


def test_ratios_skip_a_consumer_with_nothing_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager
    from types import SimpleNamespace
    from typing import Any

    import benchmarks.server_logs
    import streams.devstack

    @contextmanager
    def logs() -> Any:
        yield None

    monkeypatch.setattr(benchmarks.server_logs, "server_logs", logs)
    monkeypatch.setattr(streams.devstack, "start_broker",
                        lambda log_dir: SimpleNamespace(bootstrap="x", stop=lambda: None))
    monkeypatch.setattr(fo, "_produce", lambda *_: None)
    rates = {"aiokafka": 1000.0, "faust": None, "faust+fastpath": 500.0}
    monkeypatch.setattr(fo, "_run_child", lambda kind, *_: {"records_per_s": rates[kind]})
    results = fo.run(records=10)["results"]
    assert results["faust"]["ratio_to_aiokafka"] is None
    assert results["faust+fastpath"]["ratio_to_aiokafka"] == 0.5
