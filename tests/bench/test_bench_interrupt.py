"""Ctrl-C on ``appeals bench`` is an interruption: one line, status 130, the probe stopped.

Review of a first run: the terminal's SIGINT reached the probe child too (same process group);
the naive probe (Faust) stops cleanly on it, exit status 0, and the bench could find it gone
before handling its own Ctrl-C: ``RuntimeError: naive probe exited early``, a traceback and
status 1. Now the probes and workers run in a session of their own, so the Ctrl-C reaches only
the bench, which stops them with SIGTERM; a probe that SIGINT ended anyway is reported as an
interruption. The probe here is a stand-in (no broker needed), started the way ``probe``
starts the real one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.process_support import alive as _alive
from workers.bench import runner

REPO = Path(__file__).resolve().parents[2]

#: The stand-in probe: a status file with nothing counted yet, its pid once running, and the
#: name of the signal that stopped it.
STAND_IN = """
import json, os, signal, sys, time
status, marks, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "sigint-self":  # ended by SIGINT, as the ceiling probe is by a Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
def stopped(signum, frame):
    with open(marks + ".signal", "w") as f:
        f.write(signal.Signals(signum).name)
    sys.exit(0)  # as the naive probe (Faust) ends on SIGINT or SIGTERM
signal.signal(signal.SIGINT, stopped)
signal.signal(signal.SIGTERM, stopped)
with open(status, "w") as f:
    f.write(json.dumps({"count": 0}))
with open(marks + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(marks + ".tmp", marks + ".pid")
while True:
    time.sleep(0.1)
"""

#: ``appeals bench`` whose run is one naive probe, the stand-in.
DRIVER = """
import subprocess, sys
from workers import cli
from workers.bench import runner
STAND_IN, marks = sys.argv[1], sys.argv[2]
real = subprocess.Popen
def stand_in(cmd, **kwargs):
    status = cmd[cmd.index("--status") + 1]
    return real([sys.executable, "-c", STAND_IN, status, marks, "wait"], **kwargs)
runner.subprocess.Popen = stand_in
def run(self):
    self.probe("naive", "127.0.0.1:1", ["t"], 10, cap=600)
    return {}
runner.Bench.run = run
sys.exit(cli.main(["bench", "--events", "1000", "--log-dir", marks + "-logs"]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sessions and /proc")
def test_ctrl_c_reaches_the_bench_which_stops_its_probe(tmp_path: Path) -> None:
    marks = tmp_path / "probe"
    bench = subprocess.Popen(
        [sys.executable, "-c", DRIVER, STAND_IN, str(marks)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    pid_file = marks.with_suffix(".pid")
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and bench.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_file.exists(), "the stand-in probe did not start"
        probe_pid = int(pid_file.read_text())
        os.killpg(bench.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        out, _ = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
    assert bench.returncode == 130, out
    assert "Traceback" not in out and "appeals: interrupted" in out, out
    # The Ctrl-C was the bench's alone; it stopped the probe on its way out.
    assert marks.with_suffix(".signal").read_text() == "SIGTERM"
    assert not _alive(probe_pid)


def test_a_probe_ended_by_sigint_is_an_interruption(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = subprocess.Popen

    def stand_in(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        status = cmd[cmd.index("--status") + 1]
        return real([sys.executable, "-c", STAND_IN, status, str(tmp_path / "probe"),
                     "sigint-self"], **kwargs)

    monkeypatch.setattr(runner.subprocess, "Popen", stand_in)
    bench = runner.Bench(runner.BenchOptions(log_dir=tmp_path / "logs"))
    # Was RuntimeError("naive probe exited early"): a traceback and status 1.
    with pytest.raises(KeyboardInterrupt):
        bench.probe("naive", "127.0.0.1:1", ["t"], 10, cap=600)
