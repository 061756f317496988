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
    assert router.route(appeal).rule_version.startswith("v1+")

    async def scenario() -> None:
        watcher = RulesWatcher(path, router.swap, interval=0.01, initial=router.rules)
        assert await watcher.check() is False  # nothing changed yet

        async with watcher:
            write(path, "v2", roads="54-cur")
            for _ in range(500):
                if router.rules.version.startswith("v2+"):
                    break
                await asyncio.sleep(0.01)
        d = router.route(appeal)
        assert (d.rule_version[:3], d.authority_id) == ("v2+", "54-cur")

        # Invalid edit: unknown authority. Old rules stay, error logged without appeal data.
        write(path, "v3", roads="54-nobody")
        with caplog.at_level(logging.ERROR, logger="workers.routing.watcher"):
            assert await watcher.check() is False  # not settled yet: taken on the next poll
            assert caplog.text == ""
            assert await watcher.check() is False
        assert router.route(appeal).rule_version.startswith("v2+")
        assert watcher.last_error is not None
        assert "routes.roads: unknown authority id '54-nobody'" in caplog.text
        assert f"keeping version {router.rules.version}" in caplog.text
        assert "a-1" not in caplog.text

        # Same bad content again: not re-validated every tick.
        caplog.clear()
        assert await watcher.check() is False
        assert caplog.text == ""

        # Fixed: picked up once settled.
        write(path, "v4")
        assert await watcher.check() is False  # not settled yet: taken on the next poll
        assert await watcher.check() is True
        assert router.route(appeal).rule_version.startswith("v4+")

        # Touch without change: no reload, also once settled.
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert await watcher.check() is False
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
        assert await watcher.check() is False  # not settled yet: taken on the next poll
        assert await watcher.check() is True

    asyncio.run(scenario())
    assert [v.split("+")[0] for v in seen] == ["v1", "v2"]


def test_edit_between_load_and_watcher_start_is_loaded(tmp_path: Path) -> None:
    # pipeline.build_worker loads the rules and starts the watcher later (an app task): the
    # watcher must compare the disk with what the rules were loaded from, not with the disk
    # at its own start.
    path = tmp_path / "54.yaml"
    write(path, "v1")
    router = Router(load_rules(path))
    write(path, "v2", roads="54-cur")

    async def scenario() -> None:
        watcher = RulesWatcher(path, router.swap, interval=0.01, initial=router.rules)
        assert await watcher.check() is False  # first sight of the files: settling
        assert await watcher.check() is True
        assert await watcher.check() is False

    asyncio.run(scenario())
    d = router.route(RouteInput("a-1", "54", "roads", text="яма"))
    assert (d.rule_version[:3], d.authority_id) == ("v2+", "54-cur")


def test_edit_without_version_bump_records_a_new_version(tmp_path: Path) -> None:
    path = tmp_path / "54.yaml"
    write(path, "v1")
    router = Router(load_rules(path))
    appeal = RouteInput("a-1", "54", "roads", text="яма")
    before = router.route(appeal)
    write(path, "v1", roads="54-cur")

    async def scenario() -> None:
        watcher = RulesWatcher(path, router.swap, interval=0.01, initial=router.rules)
        assert await watcher.check() is False  # first sight of the files: settling
        assert await watcher.check() is True

    asyncio.run(scenario())
    after = router.route(appeal)
    assert after.authority_id != before.authority_id
    assert after.rule_version.startswith("v1+")
    assert after.rule_version != before.rule_version


def test_undecodable_file_is_rejected_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import workers.routing.watcher as watcher_module

    path = tmp_path / "54.yaml"
    write(path, "v1")
    initial = load_rules(path)
    calls: list[int] = []
    real = watcher_module.load_rules

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(watcher_module, "load_rules", counting)
    path.write_bytes(RULES.format(version="v2", roads="54-cur").encode("cp1251"))

    async def scenario() -> RulesWatcher:
        watcher = RulesWatcher(path, lambda r: None, interval=0.01, initial=initial)
        with caplog.at_level(logging.ERROR, logger="workers.routing.watcher"):
            for _ in range(3):
                assert await watcher.check() is False
        return watcher

    watcher = asyncio.run(scenario())
    assert calls == [1]
    assert watcher.rules is initial
    assert watcher.last_error is not None
    assert "54.yaml: <root>: not valid UTF-8" in str(watcher.last_error)
    assert "Traceback" not in caplog.text
    assert len(caplog.records) == 1


def test_rules_refused_by_on_change_keep_the_old_version(tmp_path: Path, demo_yaml: str) -> None:
    # Two regions and no default region: valid for the loader, refused by Router.swap.
    write(tmp_path / "54.yaml", "v1")
    (tmp_path / "22.yaml").write_text(demo_yaml, encoding="utf-8")
    router = Router(load_rules(tmp_path))
    initial = router.rules

    async def scenario() -> RulesWatcher:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        no_default = demo_yaml.replace(
            "default_for_unknown_regions: true", "default_for_unknown_regions: false"
        )
        (tmp_path / "22.yaml").write_text(no_default, encoding="utf-8")
        assert await watcher.check() is False  # not settled yet
        assert await watcher.check() is False  # refused
        assert watcher.last_error is not None
        assert await watcher.check() is False  # the same content is not offered again
        return watcher

    watcher = asyncio.run(scenario())
    assert router.rules is initial
    assert watcher.rules is initial
    assert watcher.last_error is not None
    assert "no default region" in str(watcher.last_error)
