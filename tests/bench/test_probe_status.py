"""A probe's rate leaves out the first batch, which was fetched before its clock started.

A 5,000-event bench once reported a ceiling of 5,000,000,000,000 events/s: every event came in
the ceiling's first fetch, so the whole count was divided by a near-zero time.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from workers.bench.probes import Status
from workers.bench.runner import _ratio


def test_first_batch_is_counted_but_not_timed(tmp_path: Path) -> None:
    status = Status(tmp_path / "s.json", expected=300)
    status.seen(100)
    time.sleep(0.05)
    status.seen(200)
    status.write()
    doc = orjson.loads((tmp_path / "s.json").read_bytes())
    assert doc["count"] == 300 and doc["timed_count"] == 200 and doc["done"]
    assert doc["elapsed_s"] >= 0.05


def test_a_single_batch_gives_no_timed_events(tmp_path: Path) -> None:
    status = Status(tmp_path / "s.json", expected=5000)
    status.seen(5000)
    status.write()
    doc = orjson.loads((tmp_path / "s.json").read_bytes())
    assert doc["timed_count"] == 0


def test_ratios_to_an_untimed_figure_are_left_out() -> None:
    assert _ratio(10.0, None, 2) is None
    assert _ratio(None, 5.0, 2) is None
    assert _ratio(10.0, 4.0, 2) == 2.5


def test_loop_lag_summary_reads_the_cumulative_buckets() -> None:
    from workers.bench.runner import loop_lag_summary

    text = "\n".join([
        "# TYPE appeals_event_loop_lag_seconds histogram",
        'appeals_event_loop_lag_seconds_bucket{le="0.01"} 90.0',
        'appeals_event_loop_lag_seconds_bucket{le="0.025"} 95.0',
        'appeals_event_loop_lag_seconds_bucket{le="0.1"} 99.0',
        'appeals_event_loop_lag_seconds_bucket{le="+Inf"} 100.0',
        "appeals_event_loop_lag_seconds_count 100.0",
    ])
    assert loop_lag_summary(text) == {"loop_probes": 100, "loop_lag_over_25ms_share": 0.05,
                                      "loop_lag_over_100ms_share": 0.01}
    assert loop_lag_summary("appeals_other 1.0") == {}


def test_broker_ack_windows_summarise_each_ten_seconds() -> None:
    from benchmarks.broker_acks import windows

    samples = [(0.5, 0.003), (1.0, 0.004), (9.9, 0.390), (12.0, 0.002)]
    rows = windows(samples, 10)
    assert [r["n"] for r in rows] == [3, 1]
    assert rows[0]["max_ms"] == 390.0 and rows[0]["p50_ms"] == 4.0
    assert rows[1]["from_s"] == 10


def test_latency_by_window_splits_the_run_by_sending_time() -> None:
    from workers.bench.runner import latency_by_window

    # 300 samples sent over 30 s: the first third fast, the last slow.
    timed = [(float(i * 100), 10.0 if i < 100 else 20.0 if i < 200 else 90.0)
             for i in range(300)]
    parts = latency_by_window(timed, 3)
    assert [p["samples"] for p in parts] == [100, 100, 100]
    assert [p["p50_ms"] for p in parts] == [10.0, 20.0, 90.0]
    assert latency_by_window([], 3) == []


def test_broker_fetch_slope_is_per_thousand_batches() -> None:
    from benchmarks.broker_fetch import ms_per_1000_batches

    rows = [{"batches": 5000, "fetch_p50_ms": 2.5}, {"batches": 10000, "fetch_p50_ms": 5.0},
            {"batches": 15000, "fetch_p50_ms": 7.5}]
    assert ms_per_1000_batches(rows) == 0.5
    assert ms_per_1000_batches(rows[:1]) == 0.0


def test_near_dup_sketch_benchmark_checks_both_paths_agree() -> None:
    from benchmarks.near_dup_sketches import run

    result = run(batch=40, rounds=1)
    assert result["batch"] == 40 and result["mean_text_chars"] > 0
    assert result["one_by_one_us_per_text"] > 0 and result["batched_us_per_text"] > 0
    assert result["batched_over_one_by_one"] > 0


def test_classify_cost_is_measured_cold_then_after_warming_on_other_appeals() -> None:
    import orjson

    from workers.bench.runner import Workload, _classify_cost

    seen: list[list[str]] = []

    class Recorder:
        def classify_batch(self, texts: list[str]) -> list[None]:
            seen.append(list(texts))
            return [None] * len(texts)

    sample = [f"s{i}" for i in range(4)]
    appeals = [("t", None, orjson.dumps({"text": f"a{i}"})) for i in range(10)]
    out = _classify_cost(Recorder(), Workload(appeals, []), sample, warm_with=3)
    assert set(out) == {"classify", "classify_cold"}
    # cold: the sample's first half; warming: appeals the sample is not (4..6); steady: the rest
    assert seen == [["s0", "s1"], ["a4", "a5", "a6"], ["s2", "s3"]]


def test_sketching_in_runs_bounds_the_memory_of_a_batch_of_long_letters() -> None:
    from benchmarks.near_dup_sketches import peak_mb

    # 20 letters at the length limit: in runs of one letter vs one 400,000-code-point array.
    assert peak_mb(20, chunk=20_000) * 3 < peak_mb(20, chunk=1 << 62)
