"""The scale-out's rebalance run: the second worker joins mid-stream, and the verdict needs it.

Two workers started together join in one assignment generation, so the speed-up run never
moved a partition with work in flight, yet its "exactly once across the rebalance" was quoted.
Here the phase runs against a scripted consumer group (no broker, Redis or worker): the second
worker must start only after the first committed 30% of the intake, the rebalance is read from
the workers' logs, and a run whose logs show none fails the verdict.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from streams import topics as t
from workers.bench import procstat, runner

GEN_LINE = "[2026-11-28 00:00:00,000] [1] [INFO] generation id {g} app consumers id {g} \n"


def script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any, n: int,
           first_worker_gens: list[int]) -> list[tuple[int, int]]:
    """Intake committed 10% more each snapshot; returns (worker, committed) at each start."""
    starts: list[tuple[int, int]] = []
    state = {"committed": 0, "workers": 0}
    intake = t.topic_name(settings, t.intake_topic("web"))

    class Worker:
        alive = True

        def __init__(self, settings: Any, log_path: Path, **kwargs: Any) -> None:
            self.log_path = tmp_path / log_path.name
            self.proc: Any = None

        def start(self) -> Worker:
            index = state["workers"]
            state["workers"] += 1
            starts.append((index, state["committed"]))
            gens = first_worker_gens if index == 0 else [1]
            self.log_path.write_text("".join(GEN_LINE.format(g=g) for g in gens))
            self.proc = SimpleNamespace(pid=1, poll=lambda: None)
            return self

        def stop(self) -> None:
            pass

    class Progress:
        def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
            self.topics = topics

        def snapshot(self) -> Any:
            import time

            state["committed"] = min(n, state["committed"] + n // 10)
            c = dict.fromkeys(self.topics, 0)
            e = dict.fromkeys(self.topics, 0)
            c[intake] = e[intake] = state["committed"]
            e[intake] = n
            e[t.topic_name(settings, t.REGISTERED)] = state["committed"]
            return SimpleNamespace(at=time.monotonic(), committed=c, end=e, confirmed=True)

        def close(self) -> None:
            pass

    monkeypatch.setattr("streams.testing.WorkerProcess", Worker)
    monkeypatch.setattr(procstat, "GroupProgress", Progress)
    monkeypatch.setattr(procstat, "cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 0.0)
    monkeypatch.setattr(runner, "verify_effect",
                        lambda *a, **k: {"exactly_once_in_effect": True})
    # No Redis here: the figures published nothing after the inputs were committed.
    monkeypatch.setattr(runner, "last_publication",
                        lambda settings, since, sample: (since, sample(), True))
    monkeypatch.setattr("time.sleep", lambda s: None)
    return starts


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        first_worker_gens: list[int]) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    b = runner.Bench(runner.BenchOptions(events=1000, log_dir=tmp_path))
    settings = b.settings("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")
    n = 1000
    starts = script(monkeypatch, tmp_path, settings, n, first_worker_gens)
    work = runner.Workload([(t.intake_topic("web"), None, b"{}")] * n, [])
    out = b.pipeline(settings, work, workers=2, join_at=0.3)
    return out, starts


def test_the_second_worker_joins_mid_stream_and_the_rebalance_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, starts = run(tmp_path, monkeypatch, first_worker_gens=[0, 1])
    assert starts[0] == (0, 0)
    assert starts[1][0] == 1 and 300 <= starts[1][1] < 1000, starts
    assert out["joined_at_share"] is not None and 0.3 <= out["joined_at_share"] < 1.0
    assert out["assignments"] == {"worker-0": 2, "worker-1": 1}
    assert out["generations"] == {"worker-0": ["0", "1"], "worker-1": ["1"]}
    assert out["rebalance_seen"] is True
    assert out["exactly_once_across_rebalance"] is True


def test_no_rebalance_in_the_logs_fails_the_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first worker never took a second assignment: nothing moved, nothing was shown.
    out, _ = run(tmp_path, monkeypatch, first_worker_gens=[0])
    assert out["rebalance_seen"] is False
    assert out["exactly_once_across_rebalance"] is False


def test_the_scaleout_phase_reports_the_rebalance_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def pipeline(self: runner.Bench, settings: Any, work: Any, workers: int,
                 join_at: float | None = None, feed: list[Any] | None = None
                 ) -> dict[str, Any]:
        calls.append((work.n, workers, join_at, len(feed) if feed is not None else None))
        out = {"events_per_s": 10.0, "appeals_per_s": 5.0, "appeals": work.n,
               "exactly_once_in_effect": True}
        if join_at is not None:
            out.update(rebalance_seen=True, exactly_once_across_rebalance=True,
                       joined_at_share=0.3)
        return out

    monkeypatch.setattr(runner.Bench, "pipeline", pipeline)
    monkeypatch.setattr(t, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(runner, "produce", lambda settings, messages: 1.0)
    b = runner.Bench(runner.BenchOptions(events=1000, scaleout_events=800,
                                         log_dir=tmp_path))
    b.opts.rebalance_events = 500
    work = runner.Workload([("appeals.intake.web", None, b"{}")] * 1000, [],
                           {str(i): "web" for i in range(1000)})
    scale = b.scaleout("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0", work,
                       {"events_per_s": 5.0})
    # The rebalance run: half pre-produced, the other half fed while it runs.
    assert calls == [(800, 2, None, None), (500, 2, runner.REBALANCE_JOIN_AT, 250)]
    assert scale["speedup"] == 2.0
    assert scale["rebalance"]["exactly_once_across_rebalance"] is True


def test_two_workers_peak_rss_is_their_sum(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    b = runner.Bench(runner.BenchOptions(events=1000, log_dir=tmp_path))
    settings = b.settings("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")
    script(monkeypatch, tmp_path, settings, 1000, [0, 1])
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 100.0)
    work = runner.Workload([(t.intake_topic("web"), None, b"{}")] * 1000, [])
    out = b.pipeline(settings, work, workers=2)
    assert out["peak_rss_mb"] == 200.0
    assert out["peak_rss_mb_per_worker"] == [100.0, 100.0]
