"""``python -m benchmarks.steady_rate`` on a small scale, against the real broker and Redis.

Why: a benchmark nobody runs rots (``benchmarks.sla_timers`` crashed for sessions before a
test ran it). This checks that a short run measures what it says: every paced appeal counted,
CPU above zero, and the intake's and SLA's batches seen by the worker's own histograms.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import steady_rate

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_steady_run_counts_every_appeal_and_its_batches(tmp_path: Path) -> None:
    doc = steady_rate.run(rate=50, seconds=3.0, overrides={}, log_dir=tmp_path,
                          settle_s=1.0, idle_s=1.0)
    assert doc["worker_cpu_s"] > 0
    assert doc["cpu_ms_per_appeal"] > 0
    assert doc["followed"] and doc["processed"] == 150
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


class _World:
    """A fake worker that processes at most ``cap`` of the paced appeals, 10 ms CPU each."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.sent = 0

    def processed(self) -> int:
        return min(self.sent, steady_rate.WARM_UP + self.cap)


def _fake_stack(monkeypatch: pytest.MonkeyPatch, world: _World) -> None:
    """``steady_rate.run`` with no broker, Redis or worker process: only its arithmetic."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from streams import topics

    @contextmanager
    def dev_stack(log_dir: Path) -> Iterator[tuple[Any, Any]]:
        yield SimpleNamespace(url="kafka://127.0.0.1:1"), SimpleNamespace(url="redis://x/0")

    class Worker:
        alive = True
        log_path = Path("worker.log")
        proc = SimpleNamespace(pid=1)

        def __init__(self, *args: Any) -> None:
            pass

        def start(self) -> Worker:
            return self

        def stop(self) -> None:
            pass

        def metrics_text(self) -> str:
            return ""

    class Progress:
        def __init__(self, bootstrap: str, group: str, topic_names: list[str]) -> None:
            self.topics = topic_names

        def snapshot(self) -> Any:
            # Everything on the first topic (an intake topic); the routed topic, last, is
            # consumed as far as it was written.
            done = world.processed()
            end = dict.fromkeys(self.topics, 0)
            committed = dict.fromkeys(self.topics, 0)
            end[self.topics[0]], committed[self.topics[0]] = world.sent, done
            end[self.topics[-1]] = committed[self.topics[-1]] = done
            return SimpleNamespace(at=0.0, end=end, committed=committed, confirmed=True)

        def close(self) -> None:
            pass

    def produce(settings: Any, messages: list[Any]) -> float:
        world.sent += len(messages)
        return 1.0

    async def paced_produce(settings: Any, messages: list[Any], rate: int, say: Any) -> float:
        world.sent += len(messages)
        return float(rate)

    monkeypatch.setattr(steady_rate, "dev_stack", dev_stack)
    monkeypatch.setattr(steady_rate, "WorkerProcess", Worker)
    monkeypatch.setattr(steady_rate, "produce", produce)
    monkeypatch.setattr(steady_rate, "paced_produce", paced_produce)
    monkeypatch.setattr(topics, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(steady_rate.procstat, "GroupProgress", Progress)
    monkeypatch.setattr(steady_rate.procstat, "cpu_seconds", lambda pid: 0.01 * world.processed())


def test_a_rate_the_worker_cannot_follow_is_flagged_and_costed_per_processed_appeal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = _World(cap=40)
    _fake_stack(monkeypatch, world)
    doc = steady_rate.run(rate=100, seconds=1.0, overrides={}, log_dir=tmp_path, settle_s=0.0,
                          idle_s=0.01, drain_timeout_s=0.6)
    assert doc["appeals"] == 100
    # 0.4 s of CPU for 40 appeals done: 10 ms each, not 4 ms over the 100 sent.
    assert doc["cpu_ms_per_appeal"] == 10.0
    assert doc["followed"] is False and doc["processed"] == 40


def test_a_rate_the_worker_follows_is_costed_once_every_appeal_is_processed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = _World(cap=10**9)
    _fake_stack(monkeypatch, world)
    doc = steady_rate.run(rate=100, seconds=1.0, overrides={}, log_dir=tmp_path, settle_s=0.0,
                          idle_s=0.01, drain_timeout_s=30.0)
    assert doc["followed"] is True and doc["processed"] == 100
    assert doc["cpu_ms_per_appeal"] == 10.0
    assert doc["wall_s"] < 10, "the CPU reading waits for the work, not a fixed pause"


def test_the_command_line_refuses_a_run_of_no_appeals(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: Any) -> dict[str, Any]:
        raise AssertionError("no run for a refused command line")

    monkeypatch.setattr(steady_rate, "run", run)
    with pytest.raises(SystemExit) as exc:
        steady_rate.main(["--rate", "1", "--seconds", "0.5"])
    assert exc.value.code == 2
    assert "--seconds" in capsys.readouterr().err
