"""``Bench.probe`` against fake probe processes: its figures and how it ends.

Why fakes: the real probes need a broker and compete for the shared machine's two cores; what is
checked here is the benchmark's own arithmetic and control flow around a probe's status file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from workers.bench import runner


def fake_popen(doc: dict[str, Any], then: str = "") -> Any:
    """A Popen stand-in: a process that writes ``doc`` as the probe's status, then ``then``."""
    real_popen = subprocess.Popen

    def popen(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        status = cmd[cmd.index("--status") + 1]
        body = f"open({status!r}, 'wb').write({orjson.dumps(doc)!r})\n{then}"
        return real_popen([sys.executable, "-c", body], **kw)

    return popen


def bench(tmp_path: Path) -> runner.Bench:
    return runner.Bench(runner.BenchOptions(events=20_000, log_dir=tmp_path))


def test_cpu_per_thousand_is_over_the_timed_events(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Two fetches of 10,000: the CPU baseline was taken after the first, so cpu_s (1 s) is
    # what the second 10,000 cost, 0.1 s per 1,000, not 0.05 over all 20,000.
    doc = {"count": 20_000, "timed_count": 10_000, "expected": 20_000, "elapsed_s": 0.5,
           "cpu_s": 1.0, "peak_rss_mb": 50.0, "done": True}
    monkeypatch.setattr(runner.subprocess, "Popen", fake_popen(doc))
    out = bench(tmp_path).probe("ceiling", "127.0.0.1:1", ["t"], 20_000, cap=5.0)
    assert out["events_per_s"] == 20_000.0
    assert out["cpu_s_per_1k"] == 0.1


def test_cpu_per_thousand_is_none_when_nothing_was_timed(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"count": 5000, "timed_count": 0, "expected": 5000, "elapsed_s": 0.0,
           "cpu_s": 0.0, "peak_rss_mb": 50.0, "done": True}
    monkeypatch.setattr(runner.subprocess, "Popen", fake_popen(doc))
    out = bench(tmp_path).probe("ceiling", "127.0.0.1:1", ["t"], 5000, cap=5.0)
    assert out["events_per_s"] is None and out["cpu_s_per_1k"] is None


#: A probe that counted 5,000 of 20,000 events, then crashed or stalled.
PART_WAY = {"count": 5000, "timed_count": 4000, "expected": 20_000, "elapsed_s": 1.0,
            "cpu_s": 0.1, "peak_rss_mb": 50.0, "done": False}


@pytest.mark.timeout(30)  # the old loop never returned
def test_a_probe_that_crashes_after_its_first_records_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.subprocess, "Popen", fake_popen(PART_WAY, "raise SystemExit(1)"))
    with pytest.raises(runner.BenchError) as exc:
        bench(tmp_path).probe("ceiling", "127.0.0.1:1", ["t"], 20_000, cap=60.0)
    message = str(exc.value)
    assert "ceiling probe exited with status 1 after 5,000 of 20,000 events" in message
    assert "ceiling.log" in message and "\n" not in message


@pytest.mark.timeout(30)  # the old loop never returned: elapsed_s stops growing in a stall
def test_a_stalled_probe_is_stopped_at_the_cap_on_the_bench_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(runner.subprocess, "Popen",
                        fake_popen(PART_WAY, "import time\ntime.sleep(60)"))
    started = time.monotonic()
    out = bench(tmp_path).probe("naive", "127.0.0.1:1", ["t"], 20_000, cap=2.0)
    assert time.monotonic() - started < 15
    assert out["capped"] and out["count"] == 5000
    assert out["events_per_s"] == 4000.0  # what it did, over the time it did it in


@pytest.mark.timeout(60)
def test_appeals_bench_reports_a_crashed_probe_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workers import cli

    monkeypatch.setattr(runner.subprocess, "Popen", fake_popen(PART_WAY, "raise SystemExit(3)"))

    def run(self: runner.Bench) -> dict[str, Any]:
        self.probe("ceiling", "127.0.0.1:1", ["t"], 20_000, cap=60.0)
        return {}

    monkeypatch.setattr(runner.Bench, "run", run)
    status = cli.main(["bench", "--events", "20000", "--log-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    lines = [x for x in err.splitlines() if not x.startswith("[bench")]
    assert len(lines) == 1 and lines[0].startswith("appeals bench: ceiling probe exited with "
                                                   "status 3 after 5,000 of 20,000 events"), err
    assert "Traceback" not in err
