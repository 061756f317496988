"""Benchmark: what one worker spends per appeal at a steady rate it can follow.

Why: `appeals bench` measures a worker flat out (a backlog) and the latency at one fixed rate.
When the host is too slow for that rate, the latency phase measures a queue growing without
end, and the flat-out figure mixes in batch sizes a live stream never reaches. This runs one
worker at a given steady rate (appeals only, as the latency phase) and reports its CPU per
appeal from the start of the paced part until it has processed it, its idle CPU before, and the
batch sizes its own histograms saw, so runs on different hosts or commits can be compared at the
same rate. A worker that has not caught up ``--drain-timeout`` s after the last appeal was sent
could not follow the rate: the run says so, and its figures are per appeal it processed.

Run: ``.venv/bin/python -m benchmarks.steady_rate [--rate 300] [--seconds 40] [--json]
[--set NAME=VALUE ...]``. Only ratios within one run (or alternating pairs) mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from schemas.records import CHANNELS
from streams import topics as t
from streams.devstack import dev_stack
from streams.processes import WorkerProcess
from streams.testing import isolated_settings
from workers.bench import procstat
from workers.bench.runner import paced_produce, parse_overrides, produce
from workers.demo.generator import Generator

#: Appeals sent before measuring, so the classifier's per-token caches and the worker's
#: connections are past their first use (a live worker has seen many appeals).
WARM_UP = 2000
HISTOGRAMS = ("appeals_stage_batch_size", "appeals_broker_ack_wait_seconds")
#: Seconds after the paced part the worker has to finish it before the run says it could not
#: follow the rate.
DRAIN_TIMEOUT_S = 60.0


def histogram_totals(metrics_text: str, name: str) -> dict[str, tuple[float, float]]:
    """(count, sum) per ``stage`` label of one histogram in Prometheus text format."""
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != name:
            continue
        for s in family.samples:
            if s.name in (f"{name}_count", f"{name}_sum"):
                pair = out.setdefault(s.labels["stage"], [0.0, 0.0])
                pair[0 if s.name.endswith("_count") else 1] = s.value
    return {stage: (c, s) for stage, (c, s) in out.items()}


def histogram_delta(before: str, after: str, name: str, n: int) -> dict[str, dict[str, float]]:
    """Per stage: observations, their mean and observations per appeal between two scrapes."""
    b, a = histogram_totals(before, name), histogram_totals(after, name)
    out = {}
    for stage, (count, total) in a.items():
        dc = count - b.get(stage, (0.0, 0.0))[0]
        ds = total - b.get(stage, (0.0, 0.0))[1]
        if dc > 0:
            out[stage] = {"count": int(dc), "mean": round(ds / dc, 4),
                          "per_appeal": round(dc / n, 4)}
    return out


def _wait_processed(settings: Any, worker: WorkerProcess, n: int, timeout: float = 300.0) -> None:
    """Until the SLA agent has committed ``n`` routed records: the warm-up is behind us."""
    progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id,
                                      [t.topic_name(settings, t.ROUTED)])
    deadline = time.monotonic() + timeout
    try:
        while sum(progress.snapshot().committed.values()) < n:
            if not worker.alive:
                raise RuntimeError(f"the worker exited; see {worker.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the warm-up was not processed in {timeout:.0f} s")
            time.sleep(0.5)
    finally:
        progress.close()


def _drain(settings: Any, worker: WorkerProcess, taken0: int, n: int,
           timeout: float) -> tuple[int, bool]:
    """Until the worker has processed everything sent; (appeals it took in since, whether all).

    "Processed" is the pipeline bench's "done": the consumer group has committed every offset
    of the intake topics and of the SLA stage's routed input, whatever became of each appeal
    (routed, held for triage, dead-lettered). The count is the intake's committed offsets since
    the paced part began (``taken0``), at most ``n``.
    """
    intake = [t.topic_name(settings, t.intake_topic(c)) for c in CHANNELS]
    routed = t.topic_name(settings, t.ROUTED)
    progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id,
                                      [*intake, routed])
    deadline = time.monotonic() + timeout
    try:
        while True:
            snap = progress.snapshot()
            taken = min(n, sum(snap.committed[x] for x in intake) - taken0)
            if snap.confirmed and taken >= n and all(
                    snap.committed[x] >= snap.end[x] for x in [*intake, routed]):
                return taken, True
            if not worker.alive:
                raise RuntimeError(f"the worker exited; see {worker.log_path}")
            if time.monotonic() > deadline:
                return max(0, taken), False
            time.sleep(0.5)
    finally:
        progress.close()


def run(rate: int, seconds: float, overrides: dict[str, Any], log_dir: Path,
        settle_s: float = 5.0, idle_s: float = 10.0,
        drain_timeout_s: float = DRAIN_TIMEOUT_S) -> dict[str, Any]:
    """Warm up until processed, settle, measure the idle CPU, then the paced part.

    The final CPU reading waits until the worker has processed every paced appeal (up to
    ``drain_timeout_s``): it used to be taken 3 s after the last was sent whatever the worker
    had done, so at a rate it could not follow the CPU of part of the work was divided by all
    of it. When it does not finish in time, the CPU is divided by the appeals it took in and
    ``followed`` is False.
    """
    with dev_stack(log_dir=log_dir) as (broker, redis):
        settings = isolated_settings(broker.url, redis.url, **overrides)
        t.ensure_topics(settings)
        worker = WorkerProcess(settings, log_dir / "worker.log").start()
        gen = Generator(seed=7, malformed_share=0.0, run_id="steady")
        try:
            warm = [gen.appeal(time.time()) for _ in range(WARM_UP)]
            produce(settings, [(t.intake_topic(a.channel), None, a.value) for a in warm])
            _wait_processed(settings, worker, len(warm))
            time.sleep(settle_s)
            pid = worker.proc.pid if worker.proc else 0
            i0, it0 = procstat.cpu_seconds(pid), time.monotonic()
            time.sleep(idle_s)
            idle = (procstat.cpu_seconds(pid) - i0) / (time.monotonic() - it0)
            steady = [gen.appeal(time.time()) for _ in range(int(rate * seconds))]
            before = worker.metrics_text()
            c0, t0 = procstat.cpu_seconds(pid), time.monotonic()
            sent_rate = asyncio.run(paced_produce(
                settings, [(t.intake_topic(a.channel), None, a.value) for a in steady], rate,
                lambda _line: None))
            # The intake topics hold the warm-up and the paced appeals, nothing else.
            processed, followed = _drain(settings, worker, len(warm), len(steady),
                                         drain_timeout_s)
            cpu, wall = procstat.cpu_seconds(pid) - c0, time.monotonic() - t0
            after = worker.metrics_text()
        finally:
            worker.stop()
    n = len(steady)
    return {
        "rate_per_s": rate,
        "achieved_rate_per_s": round(sent_rate, 1),
        "appeals": n,
        # Whether the worker processed every paced appeal within drain_timeout_s of the last
        # being sent; when not, the per-appeal figures are over the `processed` ones.
        "followed": followed,
        "processed": processed,
        "wall_s": round(wall, 2),
        "worker_cpu_s": round(cpu, 2),
        "worker_cores": round(cpu / wall, 3),
        "worker_idle_cores": round(idle, 3),
        "cpu_ms_per_appeal": round(1000 * cpu / processed, 3) if processed else None,
        "cpu_ms_per_appeal_above_idle": (round(1000 * (cpu - idle * wall) / processed, 3)
                                         if processed else None),
        **{name: histogram_delta(before, after, name, processed or n) for name in HISTOGRAMS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.steady_rate",
        description="One worker at a steady rate of appeals: CPU per appeal and batch sizes.")
    parser.add_argument("--rate", type=int, default=300, help="appeals per second (default 300)")
    parser.add_argument("--seconds", type=float, default=40.0,
                        help="length of the paced part (default 40)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="override a worker setting; repeatable")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to wait once the warm-up is processed (default 5)")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of idle CPU measured before the paced part (default 10)")
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT_S,
                        help="seconds the worker has, after the paced part, to process it "
                             f"before the run says it could not follow (default "
                             f"{DRAIN_TIMEOUT_S:g})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (args.rate <= 0 or args.seconds <= 0 or args.idle <= 0 or args.settle < 0
            or args.drain_timeout <= 0):
        parser.error("--rate, --seconds, --idle and --drain-timeout must be positive, "
                     "--settle not negative")
    if int(args.rate * args.seconds) < 1:
        parser.error("--rate x --seconds must make at least one appeal")
    overrides = {"partitions": 4, "session_timeout": 6.0, **parse_overrides(args.overrides)}
    with tempfile.TemporaryDirectory(prefix="steady-rate-") as tmp:
        doc = run(args.rate, args.seconds, overrides, Path(tmp), args.settle, args.idle,
                  args.drain_timeout)
    if args.json:
        print(json.dumps(doc))
        return 0
    if not doc["followed"]:
        print(f"could not follow: the worker processed {doc['processed']:,} of "
              f"{doc['appeals']:,} paced appeals within {args.drain_timeout:g} s of the last; "
              "the figures below are per processed appeal (try a lower --rate)")
    per = (f"{doc['cpu_ms_per_appeal']:.3f} ms CPU per appeal "
           f"({doc['cpu_ms_per_appeal_above_idle']:.3f} above its idle "
           f"{doc['worker_idle_cores']:.3f} cores)" if doc["processed"] else
           "no appeal processed")
    print(f"{doc['rate_per_s']} appeals/s for {args.seconds:.0f} s "
          f"(achieved {doc['achieved_rate_per_s']:.0f}/s): worker {doc['worker_cores']:.2f} "
          f"cores, {per}")
    for name in HISTOGRAMS:
        for stage, h in doc[name].items():
            print(f"  {name}[{stage}]: {h['count']} batches, mean {h['mean']}, "
                  f"{h['per_appeal']} per appeal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
