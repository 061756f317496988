"""Benchmarks that start their own broker or Redis leave no server logs behind.

They called ``start_broker()`` / ``start_redis()`` without a log directory, so every run left a
``tansu-*.log`` or ``redis-*.log`` in the system's temporary directory. Here the servers are
stand-ins that write their log where the real ones do, and the measurement is skipped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import broker_acks, broker_fetch, faust_overhead, sla_timers
from streams import devstack


def _fake_server(name: str, started: list[Path | None]) -> Callable[..., Any]:
    def start(port: int | None = None, log_dir: Path | None = None,
              timeout: float = 10.0) -> Any:
        started.append(log_dir)
        devstack._log_file(log_dir, name).write_text("started\n", encoding="utf-8")
        return SimpleNamespace(bootstrap="127.0.0.1:9", url="redis://127.0.0.1:9/0",
                               stop=lambda: None)

    return start


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary directory, for this test only."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


async def _no_samples(*_args: Any) -> list[Any]:
    return []


async def _no_result(*_args: Any) -> dict[str, Any]:
    return {}


def test_broker_benchmarks_leave_no_log(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path | None] = []
    broker = _fake_server("tansu", started)
    for module in (broker_acks, broker_fetch, devstack):  # faust_overhead imports it late
        monkeypatch.setattr(module, "start_broker", broker)
    monkeypatch.setattr(broker_acks, "_measure", _no_samples)
    monkeypatch.setattr(broker_fetch, "measure", _no_samples)
    monkeypatch.setattr(faust_overhead, "_produce", lambda *_: None)
    monkeypatch.setattr(faust_overhead, "_run_child", lambda *_: {"records_per_s": 1.0})
    assert broker_acks.main(["--seconds", "1"]) == 0
    assert broker_fetch.main(["--steps", "1"]) == 0
    assert faust_overhead.run(records=10)["records"] == 10
    assert len(started) == 3 and None not in started
    assert list(scratch.iterdir()) == []


def test_the_timers_benchmark_leaves_no_redis_log(scratch: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path | None] = []
    monkeypatch.setattr(devstack, "start_redis", _fake_server("redis", started))
    monkeypatch.setattr(sla_timers, "_run", _no_result)
    assert "python" in sla_timers.run(appeals=10, burst=1)
    assert len(started) == 1 and started[0] is not None
    assert list(scratch.iterdir()) == []


def test_the_logs_stay_when_the_benchmark_fails(scratch: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A server that did not start or stalled says why in its log."""
    async def broken(*_args: Any) -> list[Any]:
        raise RuntimeError("broker stalled")

    monkeypatch.setattr(broker_acks, "start_broker", _fake_server("tansu", []))
    monkeypatch.setattr(broker_acks, "_measure", broken)
    with pytest.raises(RuntimeError):
        broker_acks.main(["--seconds", "1"])
    (kept,) = scratch.iterdir()
    assert [p.name[:6] for p in kept.iterdir()] == ["tansu-"]
    assert f"server logs kept in {kept}" in capsys.readouterr().err
