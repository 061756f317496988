"""The worker loads and reloads the rules with ``APPEALS_DEFAULT_REGION`` as the API does
(review 12, defect 4): the region whose triage desk takes appeals from regions without rules.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from workers import pipeline
from workers.routing import RouteInput
from workers.routing.loader import PACKAGED_DATA

OTHER_REGION = """\
schema: 1
version: "04-demo/1"
region: "04"
triage: 04-cur
{flag}
authorities:
  - id: 04-government
    name: Правительство Республики Алтай
    kind: government
  - id: 04-cur
    name: ЦУР Республики Алтай
    kind: triage
    parent: 04-government
"""


def _rules(tmp_path: Path, *, flag_22: bool, flag_04: bool) -> Path:
    src = (PACKAGED_DATA / "22-altai-krai.yaml").read_text(encoding="utf-8")
    assert "default_for_unknown_regions: true" in src
    (tmp_path / "22-altai-krai.yaml").write_text(
        src.replace("default_for_unknown_regions: true",
                    f"default_for_unknown_regions: {str(flag_22).lower()}"), encoding="utf-8")
    (tmp_path / "04-altai-republic.yaml").write_text(OTHER_REGION.format(
        flag="default_for_unknown_regions: true" if flag_04 else ""), encoding="utf-8")
    return tmp_path


def test_the_setting_names_the_default_region_when_no_file_flags_one(tmp_path: Path) -> None:
    path = _rules(tmp_path, flag_22=False, flag_04=False)
    router, _ = pipeline.load_router(Settings(routing_rules=str(path), default_region="22"))
    assert router.rules.default_region == "22"


def test_the_setting_wins_over_a_files_flag(tmp_path: Path) -> None:
    path = _rules(tmp_path, flag_22=False, flag_04=True)
    router, _ = pipeline.load_router(Settings(routing_rules=str(path), default_region="22"))
    d = router.route(RouteInput("u1", "54", "roads", text="Яма на дороге"))
    assert (d.authority_id, d.level) == ("22-cur", "unroutable")


def test_the_rules_watcher_reloads_with_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.routing import watcher

    seen: dict[str, Any] = {}

    class Watcher:
        def __init__(self, path: str, on_change: Any, **kw: Any) -> None:
            seen.update(kw, path=path)

        def start(self) -> None:
            seen["started"] = True

    class App:
        def task(self, fn: Any) -> Any:
            seen["task"] = fn
            return fn

    monkeypatch.setattr(watcher, "RulesWatcher", Watcher)
    path = _rules(tmp_path, flag_22=False, flag_04=True)
    settings = Settings(routing_rules=str(path), default_region="22")
    router, rules_path = pipeline.load_router(settings)
    pipeline._install_rules_watcher(App(), router, rules_path,  # type: ignore[arg-type]
                                    settings.default_region)
    asyncio.run(seen["task"]())
    assert seen["started"] and seen["default_region"] == "22"
    assert seen["initial"] is router.rules
