"""Extensions and pauses of a day-counted period count from its statutory last day.

They counted from the deadline as shifted to a working day, so the shift was applied twice:
with day 30 on a day off, a pause could move nothing and an extension moved too little
(``previous``) or past day 60 (``next``). Review of session 15; the engine with the rules
the worker uses (``DeadlineService``), and its replay, which must agree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.policies import PolicyBook
from workers.routing.loader import load_rules
from workers.sla.deadline_service import DeadlineService, load_book
from workers.sla.engine import SlaRules, apply_lifecycle, new_state, replay_deadline

MSK = ZoneInfo("Europe/Moscow")


def _rules(book: PolicyBook | None = None) -> SlaRules:
    return DeadlineService(book or PolicyBook.load(),
                           BusinessCalendar(log_missing_decree=False)).rules()


def _at(text: str) -> str:
    return f"{text}+03:00"


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, MSK).date()


def _state(rules: SlaRules, registered: str, authority: str = "77-x",
           region: str = "77") -> dict[str, Any]:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": region, "authority_id": authority}
    start = dt.datetime.fromisoformat(_at(registered)).timestamp()
    return new_state(routed, 0, start, "Europe/Moscow", rules)[0]


def _apply(state: dict[str, Any], rules: SlaRules, *events: tuple[str, str, int]) -> list[str]:
    outcomes = []
    for kind, at, days in events:
        event = {"event_id": f"{kind}@{at}", "event": kind, "at": _at(at)}
        if days:
            event["extension_days"] = days
        outcomes.append(apply_lifecycle(state, event, rules).outcome)
    return outcomes


# Registered Mon 8 Dec 2025: day 30 is Wed 7 Jan 2026, a New Year holiday; fz59's `previous`
# shift gives Tue 30 Dec (31 Dec 2025 is a day off too).
@pytest.mark.parametrize(("events", "due"), [
    # 10 days waiting for the citizen: day 40 is Sat 17 Jan, walked back to Fri 16 Jan.
    # It was 30 Dec: the pause moved nothing.
    ((("paused", "2025-12-10T10:00", 0), ("resumed", "2025-12-20T10:00", 0)),
     dt.date(2026, 1, 16)),
    # +5 days: day 35, Mon 12 Jan. It was refused as moving nothing.
    ((("extended", "2025-12-15T10:00", 5),), dt.date(2026, 1, 12)),
    # +30 days: day 60, Fri 6 Feb. It was Thu 29 Jan (day 52).
    ((("extended", "2025-12-15T10:00", 30),), dt.date(2026, 2, 6)),
    # Both: the pause's 10 days, then the extension's 30: day 70, Mon 16 Feb.
    ((("paused", "2025-12-10T10:00", 0), ("resumed", "2025-12-20T10:00", 0),
      ("extended", "2025-12-22T10:00", 30)), dt.date(2026, 2, 16)),
])
def test_over_the_new_year(events: tuple[tuple[str, str, int], ...], due: dt.date) -> None:
    rules = _rules()
    state = _state(rules, "2025-12-08T10:00")
    assert _day(state["due"]) == dt.date(2025, 12, 30)
    assert set(_apply(state, rules, *events)) == {"applied"}
    assert _day(state["due"]) == due
    assert replay_deadline(state, rules) == (state["due"], state["warn"])


def test_a_pause_before_an_ordinary_weekend() -> None:
    """Registered Fri 24 Apr 2026: day 30 is Sun 24 May, the deadline Fri 22 May. A pause
    over one midnight makes day 31, Mon 25 May; it moved nothing."""
    rules = _rules()
    state = _state(rules, "2026-04-24T10:00")
    assert _day(state["due"]) == dt.date(2026, 5, 22)
    _apply(state, rules, ("paused", "2026-05-04T10:00", 0), ("resumed", "2026-05-05T10:00", 0))
    assert _day(state["due"]) == dt.date(2026, 5, 25)


def test_with_the_next_shift_an_extension_ends_on_day_60_not_after() -> None:
    """22-minzhkh counts to the next working day (Civil Code art. 193): day 30, 7 Jan, is
    Mon 12 Jan; +30 days was counted from 12 Jan to Wed 11 Feb, five days after day 60."""
    body = load_rules().authorities["22-minzhkh"]
    rules = _rules(load_book([body]))
    state = _state(rules, "2025-12-08T10:00", authority="22-minzhkh", region="22")
    assert _day(state["due"]) == dt.date(2026, 1, 12)
    _apply(state, rules, ("extended", "2025-12-15T10:00", 30))
    assert _day(state["due"]) == dt.date(2026, 2, 6)


def test_a_working_day_period_is_unchanged() -> None:
    """pos counts working days: its last day is a working day already, so nothing moves."""
    rules = _rules()
    routed = {"appeal_id": "p1", "regime": "pos", "region": "77", "authority_id": "77-x"}
    start = dt.datetime.fromisoformat(_at("2025-12-08T10:00")).timestamp()
    state = new_state(routed, 0, start, "Europe/Moscow", rules)[0]
    before = state["due"]
    _apply(state, rules, ("paused", "2025-12-10T10:00", 0), ("resumed", "2025-12-12T10:00", 0))
    # Two working days among the midnights of Wed 10 .. Fri 12 Dec.
    assert _day(state["due"]) == BusinessCalendar(log_missing_decree=False).add_working_days(
        _day(before), 2)


def _rules_with_period(days: int) -> SlaRules:
    body = SimpleNamespace(id="77-x", sla={"fz59": {"calendar_days": days}})
    return _rules(load_book([body]))


def test_a_period_started_before_the_recount_keeps_its_deadlines() -> None:
    """A period extended by the step-by-step arithmetic (before this version) is not recounted:
    its replay gives back the deadline the body was told, and a later pause moves that one.
    Recounted, its extension moved (with ``next``, five days earlier: a breach at once in a
    recompute), and a pause could bring the deadline earlier (review of this session's
    diff)."""
    rules = _rules()
    old_rules = dataclasses.replace(rules, recount=None)
    state = _state(old_rules, "2025-12-08T10:00")
    _apply(state, old_rules, ("extended", "2025-12-15T10:00", 30))
    told = state["due"]
    assert _day(told) == dt.date(2026, 1, 29)  # counted from the shifted 30 Dec
    assert replay_deadline(state, rules) == (told, state["warn"])
    _apply(state, rules, ("paused", "2026-01-12T10:00", 0), ("resumed", "2026-01-13T10:00", 0))
    assert state["due"] > told


def test_a_changed_policy_waits_for_a_recompute() -> None:
    """Registered under 30 days; the authority's period became 15 by a rules reload while the
    appeal was paused. The resume recounted the period with the new policy: the deadline fell
    to before the pause began. It moves the deadline the body had by the pause instead."""
    state = _state(_rules_with_period(30), "2026-03-02T10:00")
    assert _day(state["due"]) == dt.date(2026, 4, 1)
    shorter = _rules_with_period(15)
    _apply(state, shorter, ("paused", "2026-03-20T10:00", 0), ("resumed", "2026-03-21T10:00", 0))
    assert _day(state["due"]) == dt.date(2026, 4, 2)
