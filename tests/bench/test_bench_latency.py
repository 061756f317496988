"""The latency phase with too few samples for percentiles, and the options that lead there.

``statistics.quantiles`` needs two points: a latency run that timed one appeal raised at the
very end of ``appeals bench`` and lost every other phase's figures. The phase runs here with no
broker, Redis or worker: the records it would read are made from the appeals it "sent".
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from workers.bench import procstat, runner
from workers.intake.core import appeal_id_for


class FakeWorker:
    alive = True
    log_path = Path("latency.log")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.proc = SimpleNamespace(pid=1, poll=lambda: None)

    def start(self) -> FakeWorker:
        return self

    def stop(self) -> None:
        pass

    def metrics_text(self) -> str:
        return ""


def fake_phase(monkeypatch: pytest.MonkeyPatch, routed_share: float = 1.0,
               dies: bool = False) -> None:
    """Every appeal the paced part sends is routed 50 ms later (the first ``routed_share`` of
    them; the rest never); with ``dies`` the worker is gone when the sending ends."""
    sent: list[tuple[str, bytes]] = []

    class Progress:
        def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
            pass

        def snapshot(self) -> Any:
            # The warm-up's 200, then what the worker wrote of the steady appeals.
            return SimpleNamespace(end={"routed": 200 + int(len(sent) * routed_share)},
                                   committed={}, confirmed=True)

        def close(self) -> None:
            pass

    async def paced_produce(settings: Any, messages: list[Any], rate: int, say: Any) -> float:
        sent.extend((base, value) for base, _, value in messages)
        if dies:
            FakeWorker.alive = False
        return float(rate)

    def read_topic(settings: Any, base: str, **kwargs: Any) -> list[Any]:
        if base == t.ROUTED:
            return [SimpleNamespace(
                value=orjson.dumps({"appeal_id": appeal_id_for(d["channel"], d["external_id"])}),
                timestamp=1000 + i * 10 + 50)
                for i, d in enumerate(orjson.loads(v) for _, v in sent)
                if i < len(sent) * routed_share]
        return [SimpleNamespace(value=v, timestamp=1000 + i * 10)
                for i, (b, v) in enumerate(sent) if b == base]

    class Watch:
        """The live consumer of appeals.routed: each record arrives 10 ms after its
        CreateTime (the producer's hand-over), 60 ms after the intake record's."""

        error = ""  # what the real one's consumer process failed with, if it did

        def __init__(self, settings: Any) -> None:
            pass

        def start(self) -> None:
            pass

        def settle(self) -> None:
            pass

        def stop(self) -> None:
            pass

        @property
        def arrived(self) -> dict[str, float]:
            return {appeal_id_for(d["channel"], d["external_id"]): 1000 + i * 10 + 60
                    for i, d in enumerate(orjson.loads(v) for _, v in sent)
                    if i < len(sent) * routed_share}

    monkeypatch.setattr(runner, "RoutedWatch", Watch, raising=False)
    monkeypatch.setattr(FakeWorker, "alive", True)
    monkeypatch.setattr("streams.testing.WorkerProcess", FakeWorker)
    monkeypatch.setattr("streams.testing.read_topic", read_topic)
    monkeypatch.setattr(t, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(runner, "produce", lambda settings, messages: 1.0)
    monkeypatch.setattr(runner, "paced_produce", paced_produce)
    monkeypatch.setattr(procstat, "GroupProgress", Progress)
    monkeypatch.setattr(procstat, "cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 0.0)


def latency(tmp_path: Path, rate: int, seconds: float) -> dict[str, Any]:
    bench = runner.Bench(runner.BenchOptions(log_dir=tmp_path, latency_rate=rate,
                                             latency_seconds=seconds))
    return bench.latency("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")


def test_one_latency_sample_gives_no_percentiles_and_no_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_phase(monkeypatch)
    out = latency(tmp_path, rate=1, seconds=1.0)
    assert out["latency_samples"] == 1
    assert out["latency_p50_ms"] is None and out["latency_p99_ms"] is None


def test_two_latency_samples_give_percentiles(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake_phase(monkeypatch)
    out = latency(tmp_path, rate=2, seconds=1.0)
    assert out["latency_samples"] == 2 and out["latency_p50_ms"] == 60.0


def test_latency_is_measured_to_arrival_not_to_the_routed_create_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The routed record's CreateTime is the worker producer's hand-over, 10 ms before a
    # consumer of appeals.routed has it: the reported latency is to that arrival.
    fake_phase(monkeypatch)
    out = latency(tmp_path, rate=50, seconds=1.0)
    assert out["latency_p50_ms"] == 60.0 and out["latency_p99_ms"] == 60.0
    assert out["latency_to_handover_p50_ms"] == 50.0


def test_a_worker_that_dies_during_the_run_fails_the_phase(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It routed 40% before it died: those used to give p50/p99 and no error at all.
    fake_phase(monkeypatch, routed_share=0.4, dies=True)
    with pytest.raises(runner.BenchError, match=r"latency: the worker died .*latency\.log"):
        latency(tmp_path, rate=100, seconds=1.0)


@pytest.mark.timeout(30)
def test_appeals_never_routed_fail_the_phase(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker lives on but stops routing: the wait ends when nothing new comes, and the
    # phase fails instead of giving percentiles over the first 60%.
    fake_phase(monkeypatch, routed_share=0.6)
    monkeypatch.setattr(runner, "LATENCY_STALL_S", 0.5, raising=False)
    with pytest.raises(runner.BenchError, match="routed or triaged and nothing new"):
        latency(tmp_path, rate=100, seconds=1.0)


def test_a_routed_record_missing_from_the_read_fails_the_phase(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_phase(monkeypatch)
    import streams.testing

    read = streams.testing.read_topic

    def short(settings: Any, base: str, **kwargs: Any) -> list[Any]:
        # All outputs "written", but one routed record is not there to read.
        out = read(settings, base, **kwargs)
        return out[1:] if base == t.ROUTED else out

    monkeypatch.setattr("streams.testing.read_topic", short)
    with pytest.raises(runner.BenchError, match="1 of 100 appeals to be routed"):
        latency(tmp_path, rate=100, seconds=1.0)


def test_the_report_says_too_few_samples() -> None:
    doc = {"ceiling_events_per_s": None, "naive_events_per_s": None, "date": "d",
           "machine": {"cpu": "c", "cores": 2}, "load_average_before": 0.1,
           "load_average_after": 0.1, "command": "appeals bench", "total_seconds": 1.0,
           "ceiling": {"events_per_s": None, "cpu_s_per_1k": None, "peak_rss_mb": 1.0},
           "naive": {"events_per_s": None, "cpu_s_per_1k": None, "peak_rss_mb": 1.0,
                     "count": 1, "capped": False},
           "pipeline": {"events_per_s": 1.0, "cpu_s_per_1k_events": 1.0, "peak_rss_mb": 1.0,
                        "appeals": 1, "lifecycle_events": 0, "appeals_per_s": 1.0,
                        "cpu_s_per_1k_appeals": 1.0, "stages": {}, "elapsed_s": 1.0,
                        "cpu_s": 1.0, "cpu_utilisation": 1.0, "triaged": 0},
           "stage_compute_us_per_event": {},
           "latency": {"latency_samples": 1, "latency_p50_ms": None, "latency_p99_ms": None},
           "scaleout": {}}
    assert ("latency intake->routed: 1 sample(s), too few for percentiles"
            in runner.render_table(doc))


@pytest.mark.parametrize("options", [
    ["--latency-rate", "0"],
    ["--latency-seconds", "-1"],
    ["--latency-rate", "1", "--latency-seconds", "1"],  # one appeal: one sample at most
])
def test_the_command_line_refuses_a_latency_run_too_small_to_measure(
        options: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    def run(self: runner.Bench) -> dict[str, Any]:
        raise AssertionError("no run for a refused command line")

    monkeypatch.setattr(runner.Bench, "run", run)
    assert cli.main(["bench", *options, "--log-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("appeals bench: --latency-") and len(err.splitlines()) == 1
    # The same numbers with the latency run left out are fine.
    monkeypatch.setattr(runner.Bench, "run", lambda self: {})
    monkeypatch.setattr(runner, "render_table", lambda doc: "")
    assert cli.main(["bench", *options, "--skip-latency", "--log-dir", str(tmp_path)]) == 0


def test_a_p99_from_fewer_than_100_samples_carries_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_phase(monkeypatch)
    assert "fewer than 100" in latency(tmp_path, rate=50, seconds=1.0)["latency_p99_warning"]
    assert "latency_p99_warning" not in latency(tmp_path, rate=200, seconds=1.0)
