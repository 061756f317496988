"""The warning after a pause and an extension depends on the facts, not on their order.

A pause enters the period's adjustments at its resume, so an extension declared during the
pause was counted first and then moved by the pause, while one declared after the resume
reset the warning to the share of the whole span, the paused days counted as used: fz59
registered 2 March 2026, paused 10-20 March, extended by 30 days warned on 22 April or on
24 April by the order alone (the same deadline, 8 May). Review of the deadlines area.
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.policies import PolicyBook
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import SlaRules, apply_lifecycle, new_state, replay_deadline

MSK = ZoneInfo("Europe/Moscow")
CAL = BusinessCalendar(log_missing_decree=False)


def _rules(*overrides: dict[str, Any]) -> SlaRules:
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    data = copy.deepcopy(tomllib.loads(text))
    data["overrides"] = list(overrides)
    return DeadlineService(PolicyBook(data), CAL).rules()


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=MSK).timestamp()


def _run(rules: SlaRules, regime: str, registered: str,
         events: tuple[tuple[str, str, int], ...]) -> dict[str, Any]:
    routed = {"appeal_id": "a1", "regime": regime, "region": "77", "authority_id": "77-x"}
    state = new_state(routed, 0, _ts(registered), "Europe/Moscow", rules)[0]
    for kind, at, days in events:
        event: dict[str, Any] = {"event_id": f"{kind}@{at}", "event": kind, "at": f"{at}+03:00"}
        if days:
            event["extension_days"] = days
        assert apply_lifecycle(state, event, rules).outcome == "applied", (kind, at)
    assert replay_deadline(state, rules) == (state["due"], state["warn"])
    return state


PAUSE = ("paused", "2026-03-10T14:00", 0)
RESUME = ("resumed", "2026-03-20T10:00", 0)


def test_fz59_warning_after_a_pause_and_an_extension_in_either_order() -> None:
    rules = _rules()
    after = _run(rules, "fz59", "2026-03-02T10:00",
                 (PAUSE, RESUME, ("extended", "2026-03-25T10:00", 30)))
    during = _run(rules, "fz59", "2026-03-02T10:00",
                  (PAUSE, ("extended", "2026-03-15T10:00", 30), RESUME))
    assert after["due"] == during["due"] == _ts("2026-05-08T23:59:59")
    # 75 % of the extended period (to 30 April), then the 8 days the pause moved it by; the
    # paused days are not time used. After the resume it was 22 April 02:29:59.
    assert after["warn"] == during["warn"]
    assert dt.datetime.fromtimestamp(after["warn"], MSK).replace(microsecond=0) == \
        dt.datetime(2026, 4, 24, 2, 29, 59, tzinfo=MSK)


def test_fz59_extension_before_the_pause_warns_the_same() -> None:
    rules = _rules()
    first = _run(rules, "fz59", "2026-03-02T10:00",
                 (("extended", "2026-03-05T10:00", 30), PAUSE, RESUME))
    last = _run(rules, "fz59", "2026-03-02T10:00",
                (PAUSE, RESUME, ("extended", "2026-03-25T10:00", 30)))
    assert (first["due"], first["warn"]) == (last["due"], last["warn"])


def test_working_day_warning_after_a_pause_and_an_extension_in_either_order() -> None:
    rules = _rules({"regime": "pos", "extensions_allowed": 1, "extension_max_days": 10})
    after = _run(rules, "pos", "2026-03-02T10:00",
                 (PAUSE, RESUME, ("extended", "2026-03-23T10:00", 10)))
    during = _run(rules, "pos", "2026-03-02T10:00",
                  (PAUSE, ("extended", "2026-03-15T10:00", 10), RESUME))
    assert after["due"] == during["due"]
    assert after["warn"] == during["warn"]
    assert CAL.is_working_day(dt.datetime.fromtimestamp(after["warn"], MSK).date())


def test_clock_hour_warning_after_a_pause_and_an_extension_in_either_order() -> None:
    """Hour periods are adjusted step by step (no recount); the same holds there."""
    rules = _rules({"regime": "hotline", "counting": "hours", "answer": 48,
                    "urgent_answer": 24, "extensions_allowed": 1, "extension_max_days": 2})
    pause = ("paused", "2026-03-11T12:00", 0)
    resume = ("resumed", "2026-03-12T12:00", 0)
    after = _run(rules, "hotline", "2026-03-11T10:00",
                 (pause, resume, ("extended", "2026-03-12T13:00", 1)))
    during = _run(rules, "hotline", "2026-03-11T10:00",
                  (pause, ("extended", "2026-03-11T18:00", 1), resume))
    assert after["due"] == during["due"]
    assert after["warn"] == during["warn"]
    assert after["warn"] < after["due"]
