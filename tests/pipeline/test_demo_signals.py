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

from tests.process_support import alive as _alive
from tests.process_support import descendants as _descendants

pytestmark = pytest.mark.integration


def _figure(out: str, label: str) -> int:
    match = re.search(rf"^\s+{re.escape(label)}\s+(\d+)$", out, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{out}"
    return int(match.group(1))


def _assert_drained(out: str) -> None:
    """The final summary is there, and every appeal sent was registered before the stop."""
    assert _figure(out, "registered") == _figure(out, "appeals sent"), out


def _assert_gone(children: set[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)], "left running after the demo ended"


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
    _assert_drained(out)
    _assert_gone(children)


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_closing_the_terminal_drains_and_writes_the_summary_to_a_file(tmp_path: Path) -> None:
    """SIGHUP from a closed terminal: the next print failed with EIO (exit 1, no drain, no
    summary). Now the rest of the output goes to demo-after-hangup.log."""
    import pty
    import select

    log_dir = tmp_path / "demo"
    pid, master = pty.fork()
    if pid == 0:  # the child: the demo on the pseudo-terminal
        try:
            os.execv(sys.executable, [sys.executable, "-m", "workers.cli", "demo", "--quiet",
                                      "--metrics-port", "0", "--log-dir", str(log_dir)])
        finally:
            os._exit(127)
    seen = b""
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not re.search(rb"\] sent \d+.*registered", seen):
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert re.search(rb"\] sent \d+.*registered", seen), seen.decode(errors="replace")
        children = _descendants(pid)
        os.close(master)  # the terminal is gone: SIGHUP, and writes to it fail
        master = -1
        _, status = os.waitpid(pid, 0)
        out = (log_dir / "demo-after-hangup.log").read_text()
        assert os.waitstatus_to_exitcode(status) == 0, out
        assert "SIGHUP: stopping; draining first" in out and "=== final summary ===" in out, out
        _assert_drained(out)
        _assert_gone(children)
    finally:
        if master >= 0:
            os.close(master)
        for child in [pid, *children]:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def _read_until(demo: subprocess.Popen[str], lines: list[str], marker: str) -> None:
    """Read the demo's output up to the first line starting with ``marker``."""
    assert demo.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(marker):
            return
    raise AssertionError(f"no {marker!r} line:\n" + "".join(lines))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("marker", ["workers: ", "waiting for the workers"],
                         ids=["clients-starting", "workers-starting"])
def test_ctrl_c_before_streaming_stops_at_once(tmp_path: Path, marker: str) -> None:
    """A Ctrl-C while the workers started was acted on only once they were up (13-15 s): the
    demo then streamed, drained and printed a summary, exit 0; one while its Kafka clients
    started left the producer unclosed (``ERROR asyncio: Unclosed AIOKafkaProducer``). Now
    the run stops there, with nothing streamed, and exits 130."""
    demo = _start_demo(tmp_path)
    lines: list[str] = []
    try:
        _read_until(demo, lines, marker)
        children = _descendants(demo.pid)
        os.killpg(demo.pid, signal.SIGINT)
        out, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    out = "".join(lines) + out
    assert demo.returncode == 130, out
    assert not re.search(r"^streaming ", out, re.MULTILINE), out
    assert "final summary" not in out, out
    assert "Traceback" not in out and "Unclosed" not in out, out
    _assert_gone(children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_second_ctrl_c_aborts_the_drain_with_status_130(tmp_path: Path) -> None:
    """The second Ctrl-C stops without draining: an aborted run, exit 130 (was 0)."""
    demo = _start_demo(tmp_path)
    lines: list[str] = []
    try:
        _wait_streaming(demo, lines)
        children = _descendants(demo.pid)
        os.killpg(demo.pid, signal.SIGINT)
        _read_until(demo, lines, "SIGINT: stopping; draining first")
        os.killpg(demo.pid, signal.SIGINT)
        out, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    out = "".join(lines) + out
    assert demo.returncode == 130, out
    assert "interrupted: stopping without draining" in out and "final summary" not in out, out
    assert "Traceback" not in out, out
    _assert_gone(children)
