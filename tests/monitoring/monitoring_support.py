"""Helpers for the monitoring checks: paths, locating promtool/amtool, running them.

(A module of its own rather than conftest.py: several test folders have a conftest, and
``from conftest import`` would pick whichever was imported first.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"

# tool -> Debian package that provides it
SYSTEM_TOOLS = {
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def require_tool(name: str) -> str:
    """Path of a system tool; a missing tool fails the test with the way to install it."""
    path = shutil.which(name)
    if path:
        return path
    package = SYSTEM_TOOLS.get(name, name)
    if os.environ.get("APPEALS_SKIP_SYSTEM_TOOLS") == "1":
        pytest.skip(f"{name} missing and APPEALS_SKIP_SYSTEM_TOOLS=1")
    pytest.fail(
        f"`{name}` is not installed. Install the Debian package `{package}` "
        f"(as root: `bash tests/system-deps.sh`, or `apt-get install -y {package}`), "
        "or set APPEALS_SKIP_SYSTEM_TOOLS=1 to skip the checks that need it.",
        pytrace=False,
    )


def run_tool(*args: str, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root; on an unexpected exit code fail with its output."""
    proc = subprocess.run(
        list(args), cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    if expect_ok and proc.returncode != 0:
        pytest.fail(
            f"$ {' '.join(args)}\nexit {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    return proc
