"""The dev stack's Redis leaves no scratch directory behind (streams.devstack).

Its ``--dir`` was a TemporaryDirectory removed only by its finaliser, so every parent that
did not exit through the interpreter (a SIGKILLed demo, ``os._exit``) left an empty
``appeals-redis-*`` directory in the temp dir: dozens per CI run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from streams import devstack


def _scratch_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("appeals-redis-*"))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    return root


def test_redis_runs_without_its_scratch_directory(private_tmp: Path, tmp_path: Path) -> None:
    server = devstack.start_redis(log_dir=tmp_path)
    try:
        assert _scratch_dirs(private_tmp) == []
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        server.restart_empty()
        assert _scratch_dirs(private_tmp) == []
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None
        client.set("k", "w")
        assert client.get("k") == b"w"
    finally:
        server.stop()
    assert _scratch_dirs(private_tmp) == []


def test_a_parent_killed_outright_leaves_no_scratch_directory(private_tmp: Path,
                                                               tmp_path: Path) -> None:
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from streams import devstack\n"
        f"server = devstack.start_redis(log_dir=Path({str(tmp_path)!r}))\n"
        "print(server.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(devstack.__file__)
                         .resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    redis_pid = int(out.stdout.split()[0])
    try:
        assert _scratch_dirs(private_tmp) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(redis_pid, signal.SIGKILL)
