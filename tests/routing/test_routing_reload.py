"""Hot reload: the watcher swaps valid rules in and keeps old rules on an invalid edit."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, RulesWatcher, load_rules

RULES = """\
version: "{version}"
region: "54"
triage: 54-cur
routes:
  roads: {roads}
authorities:
  - id: 54-government
    name: Правительство Новосибирской области
    kind: government
  - id: 54-cur
    name: ЦУР Новосибирской области
    kind: triage
    parent: 54-government
  - id: 54-mintrans
    name: Министерство транспорта и дорожного хозяйства Новосибирской области
    kind: ministry
    parent: 54-government
"""


def write(path: Path, version: str, roads: str = "54-mintrans") -> None:
    path.write_text(RULES.format(version=version, roads=roads), encoding="utf-8")
    # Force a visible mtime change even on coarse-grained file systems.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_watcher_swaps_rules_and_keeps_old_on_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "54.yaml"
    write(path, "v1")
    router = Router(load_rules(path))
    appeal = RouteInput("a-1", "54", "roads", text="яма")
    assert router.route(appeal).rule_version == "v1"

    async def scenario() -> None:
        watcher = RulesWatcher(path, router.swap, interval=0.01, initial=router.rules)
        assert await watcher.check() is False  # nothing changed yet

        async with watcher:
            write(path, "v2", roads="54-cur")
            for _ in range(500):
                if router.rules.version == "v2":
                    break
                await asyncio.sleep(0.01)
        d = router.route(appeal)
        assert (d.rule_version, d.authority_id) == ("v2", "54-cur")

        # Invalid edit: unknown authority. Old rules stay, error logged without appeal data.
        write(path, "v3", roads="54-nobody")
        with caplog.at_level(logging.ERROR, logger="workers.routing.watcher"):
            assert await watcher.check() is False
        assert router.route(appeal).rule_version == "v2"
        assert watcher.last_error is not None
        assert "routes.roads: unknown authority id '54-nobody'" in caplog.text
        assert "keeping version v2" in caplog.text
        assert "a-1" not in caplog.text

        # Same bad content again: not re-validated every tick.
        caplog.clear()
        assert await watcher.check() is False
        assert caplog.text == ""

        # Fixed: picked up.
        write(path, "v4")
        assert await watcher.check() is True
        assert router.route(appeal).rule_version == "v4"

        # Touch without change: no reload.
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert await watcher.check() is False

    asyncio.run(scenario())


def test_watcher_on_directory_and_async_callback(tmp_path: Path) -> None:
    write(tmp_path / "54.yaml", "v1")
    seen: list[str] = []

    async def on_change(rules) -> None:  # type: ignore[no-untyped-def]
        seen.append(rules.version)

    async def scenario() -> None:
        watcher = RulesWatcher(tmp_path, on_change, interval=0.01)
        assert await watcher.check() is True  # no initial rules: first check loads
        (tmp_path / "notes.txt").write_text("ignored")
        assert await watcher.check() is False
        write(tmp_path / "54.yaml", "v2")
        assert await watcher.check() is True

    asyncio.run(scenario())
    assert seen == ["v1", "v2"]
