"""A Ctrl-C while a dev-stack server starts stops that server (streams.devstack).

Review of a first run: a Ctrl-C in the demo's first second (``KeyboardInterrupt`` while the
start waited for the port) left the half-started broker running until the demo exited, then
a zombie the reviewer's check found "left running"; only a :class:`DevStackError` stopped it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams import devstack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("start", [devstack.start_redis, devstack.start_broker],
                         ids=["redis", "broker"])
def test_ctrl_c_while_a_server_starts_stops_it(start: Callable[..., Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    popen = devstack._popen

    def recorded(*args: Any) -> subprocess.Popen[bytes]:
        started.append(popen(*args))
        return started[-1]

    def ctrl_c(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(devstack, "_popen", recorded)
    monkeypatch.setattr(devstack, "_wait_port", ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            start(log_dir=tmp_path)
        assert len(started) == 1
        assert started[0].poll() is not None, "the server was left running"
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
