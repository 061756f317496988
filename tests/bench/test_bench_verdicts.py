"""``appeals bench`` exits 1 when a correctness verdict is false, not only when a phase failed.

A run whose outputs were not exactly once in effect (the scale-out's per-appeal check, the
rebalance run's verdict) printed ``false`` in the table and the JSON and exited 0, so a script
or CI job took it for a pass. Checked on the function that decides the exit status, and through
``appeals bench`` itself with every phase a stand-in (no broker, Redis or worker: a whole bench
takes minutes on this machine).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from workers.bench import cli as bench_cli
from workers.bench import runner


def doc(scale_ok: bool | None = True, rebalance_ok: bool | None = True,
        rebalance_seen: bool = True, phases: list[str] | None = None) -> dict[str, Any]:
    reb: dict[str, Any] = {}
    if rebalance_ok is not None:
        reb = {"exactly_once_in_effect": rebalance_ok, "rebalance_seen": rebalance_seen,
               "exactly_once_across_rebalance": bool(rebalance_ok and rebalance_seen)}
    scale: dict[str, Any] = {}
    if scale_ok is not None:
        scale = {"exactly_once_in_effect": scale_ok, "rebalance": reb}
    return {"pipeline": {"read_model_entries": 10}, "scaleout": scale,
            "failed_phases": phases or []}


def test_all_verdicts_true_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.failed_verdicts(doc()) == []
    assert bench_cli.exit_status(doc()) == 0
    assert capsys.readouterr().err == ""


def test_a_skipped_scaleout_has_no_verdict_to_fail() -> None:
    assert bench_cli.exit_status(doc(scale_ok=None)) == 0


@pytest.mark.parametrize(("report", "named"), [
    (doc(scale_ok=False), "scaleout.exactly_once_in_effect"),
    (doc(rebalance_ok=False),
     "scaleout.rebalance.exactly_once_across_rebalance (outputs not exactly once in effect)"),
    (doc(rebalance_seen=False),
     "scaleout.rebalance.exactly_once_across_rebalance (no rebalance seen while work was left)"),
    ({"pipeline": {"exactly_once_in_effect": False}, "scaleout": {}, "failed_phases": []},
     "pipeline.exactly_once_in_effect"),
])
def test_a_false_verdict_exits_1_in_one_line(
        report: dict[str, Any], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.exit_status(report) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("appeals bench: verdict(s) false: ") and named in err[0]


def test_a_failed_phase_and_a_false_verdict_share_the_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.exit_status(doc(rebalance_ok=False, phases=["latency"])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "phase(s) failed: latency" in err[0] and "verdict(s) false: " in err[0]


def stand_ins(monkeypatch: pytest.MonkeyPatch, scale: dict[str, Any]) -> None:
    """Every phase a stand-in; the scale-out's result is ``scale``."""

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
    monkeypatch.setattr("streams.devstack.dev_stack", dev_stack)
    monkeypatch.setattr(runner.t, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(runner, "produce", lambda settings, messages: 1.0)
    monkeypatch.setattr(runner.Bench, "probe", lambda self, *a, **k: dict(probe))
    monkeypatch.setattr(runner.Bench, "pipeline", lambda self, *a, **k: dict(pipeline))
    monkeypatch.setattr(runner, "stage_compute", lambda work: {})
    monkeypatch.setattr(runner.Bench, "scaleout", lambda self, *a: dict(scale))


SCALE = {"appeals": 1000, "events_per_s": 1500.0, "appeals_per_s": 1500.0,
         "cpu_s_per_1k_appeals": 1.0, "peak_rss_mb": 20.0, "speedup": 1.5,
         "exactly_once_in_effect": True, "registered_records": 1000,
         "registered_distinct": 1000, "routed_records": 990, "routed_distinct": 990,
         "triaged_distinct": 10, "read_model_entries": 990, "aggregate_received": 990}


@pytest.mark.parametrize("json_out", [True, False])
def test_appeals_bench_with_a_false_rebalance_verdict_prints_it_and_exits_1(
        json_out: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    reb = {"appeals": 500, "joined_at_share": 0.3, "assigned_at_share": None,
           "assignments": {"worker-0": 1, "worker-1": 1}, "generations": {},
           "rebalance_seen": False, "exactly_once_in_effect": True,
           "exactly_once_across_rebalance": False}
    stand_ins(monkeypatch, {**SCALE, "rebalance": reb})
    code = cli.main(["bench", "--events", "1000", "--skip-latency", "--log-dir", str(tmp_path),
                     *(["--json"] if json_out else [])])
    captured = capsys.readouterr()
    assert code == 1
    if json_out:
        out = orjson.loads(captured.out)  # still one JSON object on stdout
        assert out["scaleout"]["rebalance"]["exactly_once_across_rebalance"] is False
        assert out["failed_verdicts"] == [
            "scaleout.rebalance.exactly_once_across_rebalance (no rebalance seen while work "
            "was left)"]
        assert out["failed_phases"] == []
    else:
        assert "exactly once in effect across it: False" in captured.out
        assert "FAILED verdicts: scaleout.rebalance.exactly_once_across_rebalance" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith(
        "appeals bench: verdict(s) false: scaleout.rebalance.exactly_once_across_rebalance")


def test_appeals_bench_with_every_verdict_true_exits_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    reb = {"appeals": 500, "joined_at_share": 0.3, "assigned_at_share": 0.6,
           "assignments": {"worker-0": 2, "worker-1": 1}, "generations": {},
           "rebalance_seen": True, "exactly_once_in_effect": True,
           "exactly_once_across_rebalance": True}
    stand_ins(monkeypatch, {**SCALE, "rebalance": reb})
    code = cli.main(["bench", "--events", "1000", "--skip-latency", "--json",
                     "--log-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    assert orjson.loads(captured.out)["failed_verdicts"] == []
    assert "verdict" not in captured.err
