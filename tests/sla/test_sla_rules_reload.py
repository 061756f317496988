"""An authority's SLA override edited in the routing rules counts for new appeals after the
rules watcher reloads them, without a restart (the book was built once at start)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from streams.settings import Settings
from workers.routing import Router, RulesWatcher, load_rules
from workers.sla import agent as sla_agent
from workers.sla.deadline_service import DeadlineService, load_book

SRC = (Path(__file__).resolve().parents[2] / "workers/routing/data/22-altai-krai.yaml"
       ).read_text(encoding="utf-8")
START = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC).timestamp()  # Mon 2 Mar, 17:00 Barnaul
ARGS = ("pos", START, "Asia/Barnaul", False, "22-urb", "safety", None, "22")


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone(dt.timedelta(hours=7))).date()


def test_edited_override_reaches_new_deadlines_after_a_reload(tmp_path: Path) -> None:
    assert "pos: {working_days: 5}" in SRC
    rules_file = tmp_path / "22.yaml"
    rules_file.write_text(SRC, encoding="utf-8")
    router = Router(load_rules(tmp_path))
    settings = Settings.load({})
    service = DeadlineService(load_book(router.rules.authorities.values()))
    rt: Any = SimpleNamespace(router=router, rules_of=router.rules, ctx=SimpleNamespace(
        settings=settings), rules=service.rules(settings.warning_share,
                                                settings.escalation_after))
    # 5 working days after Mon 2 Mar 2026: Mon 9 Mar is a holiday (8 Mar on a Sunday), so
    # Tue 3, Wed 4, Thu 5, Fri 6, Tue 10 Mar.
    assert _day(rt.rules.due(*ARGS)) == dt.date(2026, 3, 10)
    sla_agent.SlaRuntime.refresh_rules(rt)  # nothing reloaded: the same book
    assert _day(rt.rules.due(*ARGS)) == dt.date(2026, 3, 10)

    rules_file.write_text(SRC.replace("pos: {working_days: 5}", "pos: {working_days: 20}"),
                          encoding="utf-8")
    watcher = RulesWatcher(tmp_path, router.swap, interval=0.05, initial=router.rules)

    async def settle_then_load() -> bool:  # a changed file is taken once it has settled
        return not await watcher.check() and await watcher.check()

    assert asyncio.run(settle_then_load())
    sla_agent.SlaRuntime.refresh_rules(rt)
    # 20 working days from Tue 3 Mar (9 Mar off): 3-6 (4), 10-13 (8), 16-20 (13), 23-27
    # (18), 30 (19), 31 Mar (20): Tue 31 Mar 2026.
    assert _day(rt.rules.due(*ARGS)) == dt.date(2026, 3, 31)
    assert rt.rules_of is router.rules
