"""``appeals bench`` when a server will not start, and when a phase after the pipeline fails.

A broker that cannot start ended the bench in a DevStackError traceback (only BenchError was
caught); a latency or scale-out phase that failed threw away the minutes of figures measured
before it. No real pipeline runs here: the phases are stand-ins, except the broker start,
which runs a stand-in Tansu that fails the way a port clash does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from workers.bench import runner


def test_a_broker_that_will_not_start_is_one_line_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    fake = tmp_path / "fake-tansu.sh"
    fake.write_text('#!/bin/sh\necho "tansu: failed to bind" >&2\nexit 3\n')
    os.chmod(fake, 0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    code = cli.main(["bench", "--events", "1000", "--log-dir", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("appeals bench: ") and "Tansu" in last
    assert "Traceback" not in err


def stand_ins(monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    """Every phase measured by a stand-in; ``fail`` names the later phase that fails."""
    import contextlib
    from types import SimpleNamespace

    @contextlib.contextmanager
    def dev_stack(**kwargs: Any) -> Any:
        yield SimpleNamespace(url="kafka://127.0.0.1:1", bootstrap="127.0.0.1:1"), \
            SimpleNamespace(url="redis://127.0.0.1:1/0")

    probe = {"count": 1000, "elapsed_s": 1.0, "events_per_s": 1000.0, "cpu_s_per_1k": 0.1,
             "peak_rss_mb": 10.0, "capped": False}
    pipeline = {"workers": 1, "appeals": 1000, "lifecycle_events": 0, "elapsed_s": 1.0,
                "appeals_per_s": 1000.0, "events_per_s": 1000.0, "cpu_s": 1.0,
                "cpu_s_per_1k_events": 1.0, "cpu_s_per_1k_appeals": 1.0,
                "cpu_utilisation": 1.0, "peak_rss_mb": 10.0, "stages": {}, "triaged": 0,
                "dead_letters": 0}

    def latency_phase(self: runner.Bench, kafka: str, redis: str) -> dict[str, Any]:
        if fail == "latency":
            raise runner.BenchError("latency: the worker died; see latency.log")
        return {"latency_samples": 2, "latency_p50_ms": 5.0, "latency_p99_ms": 9.0}

    def scaleout(self: runner.Bench, *args: Any) -> dict[str, Any]:
        from streams.devstack import DevStackError

        if fail == "scale-out":
            raise DevStackError("the Tansu broker exited at start")
        raise AssertionError("only the failing case runs the scale-out")

    monkeypatch.setattr("streams.devstack.dev_stack", dev_stack)
    monkeypatch.setattr(runner.t, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(runner, "produce", lambda settings, messages: 1.0)
    monkeypatch.setattr(runner.Bench, "probe", lambda self, *a, **k: dict(probe))
    monkeypatch.setattr(runner.Bench, "pipeline", lambda self, *a, **k: dict(pipeline))
    monkeypatch.setattr(runner, "stage_compute", lambda work: {})
    monkeypatch.setattr(runner.Bench, "latency_phase", latency_phase)
    monkeypatch.setattr(runner.Bench, "scaleout", scaleout, raising=False)


@pytest.mark.parametrize("fail", ["latency", "scale-out"])
def test_a_failed_later_phase_still_prints_what_was_measured(
        fail: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    stand_ins(monkeypatch, fail)
    options = ["--skip-scaleout"] if fail == "latency" else ["--skip-latency"]
    code = cli.main(["bench", "--events", "1000", "--json", *options,
                     "--log-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    doc = orjson.loads(captured.out)
    assert doc["pipeline_events_per_s"] == 1000.0  # the figures measured before it
    assert doc["failed_phases"] == [fail]
    phase = doc["latency" if fail == "latency" else "scaleout"]
    assert phase["failed"]
    assert f"phase(s) failed: {fail}" in captured.err
    # The table marks it too.
    assert "FAILED" in runner.render_table(doc)
