"""The watcher takes a changed rules file only once it has settled (the same size, mtime and
inode on two polls in a row), warns when a reload drops municipalities or authorities, and
reads a file it could not read again once it can.

A file cut at a line boundary is valid YAML: the watcher used to load whatever a poll caught
while an editor or ``cp`` was writing in place, and Biysk's appeals went to the regional
ministry until the next poll (for good, had the writer died).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, RulesWatcher, load_rules

BIYSK = RouteInput("a-1", "22", "roads", text="Яма на дороге в Бийске")


def _setup(tmp_path: Path, demo_yaml: str) -> tuple[Path, Router]:
    path = tmp_path / "22-altai-krai.yaml"
    path.write_text(demo_yaml, encoding="utf-8")
    router = Router(load_rules(tmp_path))
    assert router.route(BIYSK).authority_id == "22-biysk-ugh"
    return path, router


def _bump(demo_yaml: str, version: str) -> str:
    head, sep, tail = demo_yaml.partition('version: "')
    assert sep
    return head + sep + version + tail[tail.index('"'):]


def test_a_file_caught_mid_write_is_not_loaded(tmp_path: Path, demo_yaml: str) -> None:
    path, router = _setup(tmp_path, demo_yaml)
    initial = router.rules
    full = _bump(demo_yaml, "2099-01-01.1").encode("utf-8")
    cut = full.index(b"  - id: biysk\n")

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        assert await watcher.check() is False
        path.write_bytes(full[:cut])  # what a poll sees while the writer is at work
        assert await watcher.check() is False
        assert router.rules is initial
        path.write_bytes(full)  # the writer finishes
        assert await watcher.check() is False  # changed since the last poll: not yet
        assert router.rules is initial
        assert await watcher.check() is True  # settled
        assert await watcher.check() is False

    asyncio.run(scenario())
    d = router.route(BIYSK)
    assert (d.authority_id, d.rule_version[:len("2099")]) == ("22-biysk-ugh", "2099")


def test_a_replacement_with_the_same_size_and_mtime_is_seen_by_its_inode(
    tmp_path: Path, demo_yaml: str
) -> None:
    path, router = _setup(tmp_path, demo_yaml)
    edited = _bump(demo_yaml, "22-altai-krai/2025-06-02.1")
    assert len(edited) == len(demo_yaml) and edited != demo_yaml

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=router.rules)
        for _ in range(3):
            assert await watcher.check() is False
        st = path.stat()
        tmp = tmp_path / ".22-altai-krai.yaml.tmp"  # a dot file: not a rule file
        tmp.write_text(edited, encoding="utf-8")
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)  # atomic: the way README asks rule files to be replaced
        assert await watcher.check() is False
        assert await watcher.check() is True

    asyncio.run(scenario())
    assert router.route(BIYSK).rule_version.startswith("22-altai-krai/2025-06-02.1+")


def test_a_reload_that_drops_municipalities_or_authorities_warns(
    tmp_path: Path, demo_yaml: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, router = _setup(tmp_path, demo_yaml)
    cut = demo_yaml.index("  - id: biysk\n")

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=router.rules)
        path.write_text(demo_yaml[:cut], encoding="utf-8")  # the writer died here
        with caplog.at_level(logging.INFO, logger="workers.routing.watcher"):
            assert await watcher.check() is False
            assert await watcher.check() is True

    asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "12 municipalities" in message and "22/biysk" in message
    assert "authorities" in message and "22-biysk-ugh" in message
    assert "@" not in message  # supervisors' addresses stay out of the log


def test_a_reload_that_drops_nothing_does_not_warn(
    tmp_path: Path, demo_yaml: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, router = _setup(tmp_path, demo_yaml)

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=router.rules)
        path.write_text(_bump(demo_yaml, "2099-01-01.1"), encoding="utf-8")
        with caplog.at_level(logging.INFO, logger="workers.routing.watcher"):
            assert await watcher.check() is False
            assert await watcher.check() is True

    asyncio.run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_write_racing_the_read_is_dropped_and_taken_once_settled(
    tmp_path: Path, demo_yaml: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workers.routing.watcher as watcher_module

    path, router = _setup(tmp_path, demo_yaml)
    initial = router.rules
    final = _bump(demo_yaml, "2099-01-01.1")
    real = watcher_module.load_rules

    def read_then_written(*args, **kwargs):  # type: ignore[no-untyped-def]
        rules = real(*args, **kwargs)
        path.write_text(final, encoding="utf-8")  # the writer starts again meanwhile
        monkeypatch.setattr(watcher_module, "load_rules", real)
        return rules

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        path.write_text(_bump(demo_yaml, "2098-01-01.1"), encoding="utf-8")
        assert await watcher.check() is False
        monkeypatch.setattr(watcher_module, "load_rules", read_then_written)
        assert await watcher.check() is False  # read, but the files changed meanwhile
        assert router.rules is initial
        assert await watcher.check() is True

    asyncio.run(scenario())
    assert router.rules.version.startswith("2099")


def _unreadable_when(
    monkeypatch: pytest.MonkeyPatch, path: Path, failing: Callable[[], OSError | None]
) -> None:
    """Reading ``path`` raises what ``failing()`` returns (None: the read succeeds).

    The tests run as root, who reads a mode-000 file: the read error is simulated.
    """
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == path:
            exc = failing()
            if exc is not None:
                raise exc
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_a_file_made_readable_by_chmod_is_loaded(
    tmp_path: Path, demo_yaml: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chmod changes neither size, mtime nor inode: the watcher took the unreadable file's
    # fingerprint and never read the file again.
    path, router = _setup(tmp_path, demo_yaml)
    initial = router.rules
    _unreadable_when(
        monkeypatch,
        path,
        lambda: None
        if path.stat().st_mode & 0o444
        else PermissionError(errno.EACCES, "Permission denied"),
    )

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        tmp = tmp_path / ".22-altai-krai.yaml.new"
        tmp.write_text(_bump(demo_yaml, "2099-01-01.1"), encoding="utf-8")
        tmp.chmod(0)
        os.replace(tmp, path)  # a tool that leaves the edit unreadable to the worker
        for _ in range(3):
            assert await watcher.check() is False
        assert watcher.last_error is not None
        assert "cannot read: Permission denied" in str(watcher.last_error)
        path.chmod(0o644)  # the operator fixes the permissions
        assert await watcher.check() is False  # changed since the last poll: not yet
        assert await watcher.check() is True
        assert watcher.last_error is None

    asyncio.run(scenario())
    assert router.rules.version.startswith("2099")


def test_a_read_error_is_retried_and_reported_once(
    tmp_path: Path,
    demo_yaml: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A read that fails without anything in the file's stat changing (an I/O error, the
    # directory's permissions, an ACL): the next poll reads the file again.
    path, router = _setup(tmp_path, demo_yaml)
    initial = router.rules
    broken = [True]
    _unreadable_when(
        monkeypatch, path, lambda: OSError(errno.EIO, "Input/output error") if broken[0] else None
    )

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        path.write_text(_bump(demo_yaml, "2099-01-01.1"), encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="workers.routing.watcher"):
            for _ in range(4):
                assert await watcher.check() is False
        assert router.rules is initial
        assert "cannot read: Input/output error" in str(watcher.last_error)
        assert len(caplog.records) == 1  # retried on every poll, reported once
        broken[0] = False
        assert await watcher.check() is True

    asyncio.run(scenario())
    assert router.rules.version.startswith("2099")
