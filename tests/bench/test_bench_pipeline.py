"""``Bench.pipeline`` against a scripted consumer group: when it is done, and when it gives up.

Why scripted: what is checked is the phase's control flow over the group's snapshots (committed
and end offsets), which a real worker on the shared two-core machine makes slow and uncertain;
no broker, Redis or worker process is started.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from streams import topics as t
from workers.bench import procstat, runner

Snap = Callable[[list[str], float], Any]


class FakeWorker:
    alive = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.proc = SimpleNamespace(pid=1, poll=lambda: None)

    def start(self) -> FakeWorker:
        return self

    def stop(self) -> None:
        pass


def script(monkeypatch: pytest.MonkeyPatch, snaps: list[Snap]) -> None:
    """The group's snapshots in turn (the last repeated); each gets the topics and its time,
    one second after the one before on the monotonic clock."""
    import time

    calls = {"n": 0}
    base = time.monotonic()

    class Progress:
        def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
            self.topics = topics

        def snapshot(self) -> Any:
            i = min(calls["n"], len(snaps) - 1)
            calls["n"] += 1
            return snaps[i](self.topics, base + calls["n"])

        def close(self) -> None:
            pass

    monkeypatch.setattr("streams.testing.WorkerProcess", FakeWorker)
    monkeypatch.setattr(procstat, "GroupProgress", Progress)
    monkeypatch.setattr(procstat, "cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 0.0)
    monkeypatch.setattr(runner, "verify_effect", lambda *args, **kwargs: {})
    # No Redis here: the figures published nothing after the inputs were committed.
    monkeypatch.setattr(runner, "last_publication",
                        lambda settings, since, sample: (since, sample(), True))


def bench(tmp_path: Path) -> tuple[runner.Bench, Any]:
    b = runner.Bench(runner.BenchOptions(events=1000, log_dir=tmp_path))
    return b, b.settings("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")


def snap(settings: Any, registered: int, committed: dict[str, int], end: dict[str, int],
         confirmed: bool = True) -> Snap:
    """Offsets by topic base name (the rest 0), as one GroupSnapshot."""
    def make(topics: list[str], at: float) -> Any:
        full = {b: t.topic_name(settings, b) for b in {*committed, *end, t.REGISTERED}}
        c = dict.fromkeys(topics, 0)
        e = dict.fromkeys(topics, 0)
        for b, v in committed.items():
            c[full[b]] = v
        for b, v in end.items():
            e[full[b]] = v
        e[full[t.REGISTERED]] = registered
        return SimpleNamespace(at=at, committed=c, end=e, confirmed=confirmed)

    return make


@pytest.mark.timeout(30)  # the old loop never returned
def test_a_phase_whose_workers_write_nothing_fails_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, settings = bench(tmp_path)
    script(monkeypatch, [snap(settings, 0, {}, {})])
    monkeypatch.setattr(runner, "PIPELINE_NO_OUTPUT_S", 1.0, raising=False)
    work = runner.Workload([("appeals.intake.web", None, b"{}")], [])
    with pytest.raises(RuntimeError) as exc:
        b.pipeline(settings, work, workers=2)
    message = str(exc.value)
    assert message.startswith("scaleout2: no registered record 1 s after the worker(s) started")
    assert "\n" not in message


@pytest.mark.timeout(30)  # the old loop never returned
def test_a_phase_over_no_appeals_is_refused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    b, settings = bench(tmp_path)
    script(monkeypatch, [snap(settings, 0, {}, {})])
    with pytest.raises(runner.BenchError, match="no appeals to process"):
        b.pipeline(settings, runner.Workload([], []), workers=2)


def test_done_waits_for_end_offsets_a_fetch_confirmed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    b, settings = bench(tmp_path)
    intake = t.intake_topic("web")
    # 1 s: the first output; 2 s: all committed up to short, unconfirmed ends of the routed
    # topic (the broker's last-batch base); 3 s: the true ends, confirmed, all committed.
    script(monkeypatch, [
        snap(settings, 10, {intake: 5}, {intake: 10, t.ROUTED: 4}),
        snap(settings, 10, {intake: 10, t.ROUTED: 7}, {intake: 10, t.ROUTED: 7},
             confirmed=False),
        snap(settings, 10, {intake: 10, t.ROUTED: 10}, {intake: 10, t.ROUTED: 10}),
    ])
    work = runner.Workload([(intake, None, b"{}")] * 10, [])
    out = b.pipeline(settings, work, workers=1)
    assert out["elapsed_s"] == 2.0, "done at the confirmed snapshot, not the short one"


def refuse_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(self: runner.Bench) -> dict[str, Any]:
        raise AssertionError("no run for a refused command line")

    monkeypatch.setattr(runner.Bench, "run", run)


def test_the_command_line_refuses_a_scaleout_of_no_appeals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    refuse_runs(monkeypatch)
    assert cli.main(["bench", "--scaleout-events", "0", "--log-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("appeals bench: --scaleout-events must be at least 1 (got 0)")
    assert len(err.splitlines()) == 1
