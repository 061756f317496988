"""`appeals demo` stopped by a terminal's Ctrl-C, or killed outright, leaves nothing running.

Review of session 14: the workers shared the demo's process group, so a Ctrl-C stopped them
before the demo could drain (the summary showed appeals sent but never registered); a closed
terminal (SIGHUP) or a SIGKILL left the broker and Redis running for good, as they run in
sessions of their own. Now the workers have their own session too, the demo drains before it
stops them, and the kernel sends every child SIGTERM when the demo dies
(``streams.devstack.die_with_parent``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc), recursively."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _start_demo(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "demo", "--quiet", "--metrics-port", "0",
         "--log-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )


def _wait_streaming(demo: subprocess.Popen[str], lines: list[str]) -> None:
    assert demo.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("[") and "registered" in line:  # the first live line
            return
    raise AssertionError("the demo did not start streaming:\n" + "".join(lines))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_drains_then_stops_everything(tmp_path: Path) -> None:
    demo = _start_demo(tmp_path)
    lines: list[str] = []
    try:
        _wait_streaming(demo, lines)
        children = _descendants(demo.pid)
        assert len(children) >= 3, "a broker, a Redis and a worker"
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        out, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    out = "".join(lines) + out
    assert demo.returncode == 0, out
    assert "SIGINT: stopping; draining first" in out
    sent = int(re.search(r"^\s+appeals sent\s+(\d+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    registered = int(re.search(r"^\s+registered\s+(\d+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert registered == sent, out
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)], "left running after the demo ended"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_demo_takes_its_servers_and_workers_with_it(tmp_path: Path) -> None:
    demo = _start_demo(tmp_path)
    lines: list[str] = []
    children: set[int] = set()
    try:
        _wait_streaming(demo, lines)
        children = _descendants(demo.pid)
        assert len(children) >= 3
        demo.kill()  # no clean-up at all: only the kernel can stop the rest
        demo.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children if _alive(p)], "left running after the demo died"
    finally:
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
