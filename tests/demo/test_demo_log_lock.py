"""A second demo in the same --log-dir refuses to start instead of deleting the first's logs.

Each run starts with fresh logs (``_fresh_logs``), so a second ``appeals demo`` in the same
directory deleted the worker, broker and Redis logs of the one still running.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_second_demo_in_the_same_log_dir_refuses(tmp_path: Path) -> None:
    log_dir = tmp_path / "demo"
    log_dir.mkdir()
    first_log = log_dir / "worker-1.log"
    first_log.write_text("the running demo's worker\n")
    with open(log_dir / ".demo.lock", "w") as lock:  # as the running demo holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "demo", "--duration", "1", "--quiet",
             "--metrics-port", "0", "--log-dir", str(log_dir)],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pid {os.getpid()}" in lines[0] and "--log-dir" in lines[0], lines[0]
    assert first_log.read_text() == "the running demo's worker\n"
    assert "starting" not in result.stdout


def test_the_lock_goes_with_the_demo(tmp_path: Path) -> None:
    from workers.demo.runner import _lock_log_dir

    lock = _lock_log_dir(tmp_path)
    assert lock is not None
    assert (tmp_path / ".demo.lock").read_text().strip() == str(os.getpid())
    assert _lock_log_dir(tmp_path) is None  # a second holder, even in the same process
    lock.close()
    again = _lock_log_dir(tmp_path)
    assert again is not None
    again.close()
