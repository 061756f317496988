"""The SLA engine's warning of a working-day period is a share of its working days.

DESIGN.md §2: the warning fires at a share of the time used (0.75), and ``pos`` (and the
incident and hotline final-answer stages) count working days. ``DeadlineService.warning`` took
the wall-clock share for every day count: a ``pos`` appeal registered on 25 December 2026
warned on 13 January, after 5 of its 10 working days, and one registered on 27 April 2026 on
Saturday 9 May, a day off. The live transitions, the replay a recompute uses, the timer index
and ``appeals sla due`` must all give the same working-day moment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sla_engine.engine_support import TZ, next_ev
from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import warning_at
from workers.deadlines.policies import PolicyBook
from workers.sla import timers
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    State,
    apply_lifecycle,
    apply_tick,
    new_state,
    recompute,
    replay_deadline,
)

pytestmark = pytest.mark.usefixtures("packaged_files")

BARNAUL = ZoneInfo(TZ)
RULES = DeadlineService().rules()
CAL = BusinessCalendar()
BOOK = PolicyBook.load()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    """Barnaul wall time as Unix seconds."""
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=BARNAUL).timestamp()


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, BARNAUL)


def _start(regime: str, registered: float) -> tuple[State, Any]:
    routed = {"appeal_id": "a1", "regime": regime, "region": "22",
              "authority_id": "22-gzhi", "parent_authority_id": "22-government",
              "category": "housing_utilities", "urgent": False}
    return new_state(routed, 0, registered, TZ, RULES)


@pytest.mark.parametrize(("registered", "due", "warning"), [
    # 28-31 Dec, 12-15 Jan, 18-19 Jan: noon of the 8th working day (was 13 Jan, the 6th).
    (at(2026, 12, 25, 10), at(2027, 1, 19, 23, 59, 59), at(2027, 1, 15, 12)),
    # 28-30 Apr, 4-8 May, 12-13 May: noon of Fri 8 May (was Saturday 9 May, a day off).
    (at(2026, 4, 27, 10), at(2026, 5, 13, 23, 59, 59), at(2026, 5, 8, 12)),
])
def test_a_pos_appeal_warns_at_three_quarters_of_its_working_days(
        registered: float, due: float, warning: float) -> None:
    state, effects = _start("pos", registered)
    assert (state["due"], state["warn"]) == (due, warning)
    assert ("warning", warning) in {(t.kind, t.due_ts) for t in effects.timers}
    # the timer index rebuilt from the table arms the same moment
    assert ("warning", warning) in {(t.kind, t.due_ts) for t in timers.pending_timers(
        state, lambda st: RULES.of(st).escalation_after)}
    # the replay a recompute runs gives it back, and a recompute moves nothing
    assert replay_deadline(state, RULES) == (due, warning)
    assert recompute(state, RULES, now=registered).outcome == "unchanged"
    assert [a.level for a in apply_tick(state, "warning", 0, RULES).alerts] == ["warning"]


@settings(max_examples=200, deadline=None)
@given(moment=st.floats(min_value=at(2025, 1, 1), max_value=at(2027, 12, 20)))
def test_the_engine_warning_is_the_deadline_rule_and_on_a_working_day(moment: float) -> None:
    state, _ = _start("pos", moment)
    policy = BOOK.resolve("pos", region="22", authority="22-gzhi",
                          category="housing_utilities")
    want = warning_at(local(moment), local(state["due"]), 0.75, policy, CAL).timestamp()
    assert state["warn"] == want
    assert CAL.is_working_day(local(state["warn"]).date())
    assert moment < state["warn"] <= state["due"]


def test_a_pause_keeps_the_pos_warning_on_a_working_day_and_the_replay_agrees() -> None:
    # Registered Mon 27 Apr 2026: due Wed 13 May, warning Fri 8 May 12:00. Paused Mon 4 May,
    # resumed Wed 6 May: two working days held (5 and 6 May), due Fri 15 May; the warning
    # two working days later, Wed 13 May 12:00 (9-11 May off): 28-30 Apr, 4, 7, 8 and 12 May
    # used, half of the 8th. The wall-clock distance would have put it on Sunday 10 May.
    state, _ = _start("pos", at(2026, 4, 27, 10))
    apply_lifecycle(state, next_ev("paused", at(2026, 5, 4, 10)), RULES)
    resumed = apply_lifecycle(state, next_ev("resumed", at(2026, 5, 6, 10)), RULES)
    assert (state["due"], state["warn"]) == (at(2026, 5, 15, 23, 59, 59), at(2026, 5, 13, 12))
    assert ("warning", state["warn"]) in {(t.kind, t.due_ts) for t in resumed.timers}
    assert replay_deadline(state, RULES) == (state["due"], state["warn"])
    assert recompute(state, RULES, now=at(2026, 5, 6, 11)).outcome == "unchanged"


def test_an_extended_pos_period_warns_at_its_share_of_working_days() -> None:
    # An authority whose pos appeals may be extended (policy override): the warning of the
    # extended period is 75 % of its working days, in the replay too.
    book = PolicyBook({**PolicyBook.read_data(None)[0], "overrides": [
        {"authority": "22-gzhi", "regime": "pos", "extensions_allowed": 1,
         "extension_max_days": 10}]}, "test")
    rules = DeadlineService(book).rules()
    routed = {"appeal_id": "a1", "regime": "pos", "region": "22", "authority_id": "22-gzhi",
              "parent_authority_id": "22-government", "category": "housing_utilities",
              "urgent": False}
    state, _ = new_state(routed, 0, at(2026, 4, 27, 10), TZ, rules)
    effects = apply_lifecycle(state, next_ev("extended", at(2026, 5, 5, 10), extension_days=10),
                              rules)
    assert effects.outcome == "applied"
    # 10 more working days after 13 May: 14, 15, 18-22, 25-27 May; 15 of 20 used at the end
    # of the 15th working day (Wed 20 May), its last second.
    assert state["due"] == at(2026, 5, 27, 23, 59, 59)
    assert state["warn"] == at(2026, 5, 20, 23, 59, 59)
    assert replay_deadline(state, rules) == (state["due"], state["warn"])


def test_a_working_day_stage_warns_at_its_share_of_working_days() -> None:
    # incident final answer, 7 working days from Mon 27 Apr 2026: 28-30 Apr, 4-7 May, due
    # Thu 7 May. 5.25 of 7 is 06:00 of the 6th, Wed 6 May (the wall-clock share: Tue 5 May).
    state, effects = _start("incident", at(2026, 4, 27, 10))
    entry = next(e for e in state["stg"] if e[0] == "final_answer")
    assert entry[2:4] == [at(2026, 5, 7, 23, 59, 59), at(2026, 5, 6, 6)]
    assert ("final_answer.warning", entry[3]) in {(t.kind, t.due_ts) for t in effects.timers}
    policy = BOOK.resolve("incident", region="22", authority="22-gzhi",
                          category="housing_utilities")
    days = dataclasses.replace(policy, counting="working_days")
    assert entry[3] == warning_at(local(entry[1]), local(entry[2]), 0.75, days, CAL).timestamp()
