"""``python -m benchmarks.steady_rate`` on a small scale, against the real broker and Redis.

Why: a benchmark nobody runs rots (``benchmarks.sla_timers`` crashed for sessions before a
test ran it). This checks that a short run measures what it says: every paced appeal counted,
CPU above zero, and the intake's and SLA's batches seen by the worker's own histograms.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from benchmarks import steady_rate

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_steady_run_counts_every_appeal_and_its_batches(tmp_path: Path) -> None:
    doc = steady_rate.run(rate=50, seconds=3.0, overrides={}, log_dir=tmp_path,
                          settle_s=1.0, idle_s=1.0)
    assert doc["worker_cpu_s"] > 0
    assert doc["cpu_ms_per_appeal"] > 0
    batches = doc["appeals_stage_batch_size"]
    assert {"intake", "sla"} <= set(batches)
    # Every paced appeal went through the intake's batches and the SLA's: the histograms'
    # sums are the events they handled, so count x mean covers all 150 (the SLA also sees
    # nothing else here: no lifecycle events are sent).
    assert round(batches["intake"]["count"] * batches["intake"]["mean"]) == 150
    assert round(batches["sla"]["count"] * batches["sla"]["mean"]) == 150


def test_the_command_line_refuses_a_rate_of_zero() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.steady_rate", "--rate", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--rate" in proc.stderr


def test_histogram_delta_reads_prometheus_text() -> None:
    head = "# TYPE appeals_stage_batch_size histogram\n"  # as a /metrics scrape has it
    before = (head + 'appeals_stage_batch_size_count{stage="intake"} 2.0\n'
              'appeals_stage_batch_size_sum{stage="intake"} 10.0\n')
    after = (head + 'appeals_stage_batch_size_count{stage="intake"} 6.0\n'
             'appeals_stage_batch_size_sum{stage="intake"} 50.0\n'
             'appeals_stage_batch_size_count{stage="sla"} 0.0\n')
    got = steady_rate.histogram_delta(before, after, "appeals_stage_batch_size", 40)
    assert got == {"intake": {"count": 4, "mean": 10.0, "per_appeal": 0.1}}
    assert orjson.dumps(got)  # JSON-serialisable as printed by --json
