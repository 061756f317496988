"""A bad APPEALS_* value stops the demo before it starts a broker and Redis.

``APPEALS_BATCH_SIZE=0 appeals demo`` started both servers, then failed on the settings: the
one line came after the start-up logs, with server logs left to read past.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_bad_setting_is_reported_before_any_server_starts(tmp_path: Path) -> None:
    env = {**os.environ, "APPEALS_BATCH_SIZE": "0"}
    env.pop("APPEALS_CONFIG", None)
    log_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--duration", "1", "--metrics-port", "0",
         "--log-dir", str(log_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "APPEALS_BATCH_SIZE" in result.stderr
    assert "starting a local broker" not in result.stdout
    assert not list(log_dir.glob("tansu-*.log")) and not list(log_dir.glob("redis-*.log"))
