"""Ctrl-C on a command is one line, ``appeals: interrupted``, and status 130: no traceback.

Review of a first run: ``main`` had no ``except KeyboardInterrupt``, so Ctrl-C printed a
KeyboardInterrupt traceback on almost every command (``classify text`` or ``produce -``
waiting on stdin, ``classify eval/train/bench``, ``worker`` and ``sla recompute`` waiting for
the broker, ``bench``, the demo in its first moments). Each command runs here as a real
``appeals`` process in a process group of its own, and the SIGINT goes to the group, as a
terminal sends it; a stand-in stdin says when the command has begun to read it (the marker the
test waits for), so no delay is guessed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: ``appeals ARGS...`` with a stdin that prints "reading stdin" to stderr when it is read.
DRIVER = """
import sys
from workers import cli

class Marked:
    def __init__(self, real):
        self._real = real
    @property
    def buffer(self):
        return Marked(self._real.buffer)
    def read(self, *args):
        print("reading stdin", file=sys.stderr, flush=True)
        return self._real.read(*args)
    def __getattr__(self, name):
        return getattr(self._real, name)

sys.stdin = Marked(sys.stdin)
sys.argv = ["appeals", *sys.argv[1:]]
sys.exit(cli.main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT")
@pytest.mark.parametrize("argv", [["classify", "text"], ["produce", "-"]],
                         ids=["classify-text", "produce-stdin"])
def test_ctrl_c_while_reading_stdin(argv: list[str]) -> None:
    env = {**os.environ, "APPEALS_KAFKA": "kafka://127.0.0.1:1"}
    env.pop("APPEALS_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *argv], cwd=REPO, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("reading stdin"):
                break
        assert seen and seen[-1].startswith("reading stdin"), "".join(seen)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        proc.wait(timeout=60)  # stdin stays open: the command was still waiting on it
        assert proc.stdout is not None
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["appeals: interrupted"], err
    assert out == ""
