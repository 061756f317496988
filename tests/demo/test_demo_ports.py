"""A metrics port taken between the demo's check and the worker's bind.

The demo checked the default port (9464) free and let it go; the worker binds it seconds later,
and a program (or a second demo) that took it meanwhile made the worker exit 2 and the demo
say only "the workers did not come up; see the worker logs". The race is made certain here:
the port is held all along and the demo's check is told it is free.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import socket, sys
from workers import cli
from workers.demo import runner

held = socket.socket()
held.bind(("127.0.0.1", 0))
held.listen()
port = held.getsockname()[1]
runner.DEFAULT_METRICS_PORT = port
runner._port_free = lambda p: True  # the check passed; the port went before the bind
print(f"HELD {port}", flush=True)
args = ["demo", "--duration", "2", "--quiet", "--log-dir", sys.argv[1]]
if sys.argv[2] == "explicit":
    args += ["--metrics-port", str(port)]
sys.exit(cli.main(args))
"""


def _demo(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], int]:
    result = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "demo"), mode],
                            cwd=REPO, capture_output=True, text=True, timeout=400)
    held = next(int(line.split()[1]) for line in result.stdout.splitlines()
                if line.startswith("HELD "))
    return result, held


def test_a_default_port_taken_before_the_worker_binds_it_is_replaced(tmp_path: Path) -> None:
    result, held = _demo(tmp_path, "default")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"port {held} was taken before worker 1 bound it" in out, out
    assert "=== final summary ===" in out


def test_an_asked_for_port_taken_names_the_log_and_what_it_says(tmp_path: Path) -> None:
    result, held = _demo(tmp_path, "explicit")
    assert result.returncode == 1, result.stdout + result.stderr
    log = tmp_path / "demo" / "worker-1.log"
    line = next(x for x in result.stderr.splitlines() if "did not come up" in x)
    assert str(log) in line, line
    assert f"127.0.0.1:{held}" in line and "address already in use" in line, line


def test_the_last_meaningful_line_skips_blanks_and_carets() -> None:
    from workers.demo.runner import _last_line

    assert _last_line("start\nOSError: [Errno 98] address in use\n   ^^^^^\n\n") == (
        "OSError: [Errno 98] address in use")
    assert _last_line("\n \n") == ""
