"""The SLA engine holds a paused clock, and warns, in the policy unit (session-9 DESIGN review).

Before, a resume added the paused wall-clock time to the deadline (``_resume``, the same in
``replay_deadline`` and ``_running_due``) and the warning of a working-hours appeal was a
wall-clock share of its period. Each case below is one the reviewer reproduced; every one
checks the live transition, its replay (recompute) and, while the pause lasts, the running
deadline, which must all agree.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sla_engine.engine_support import TZ, next_ev
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    SlaRules,
    State,
    _running_due,
    apply_lifecycle,
    apply_tick,
    new_state,
    recompute,
    replay_deadline,
)

pytestmark = pytest.mark.usefixtures("packaged_files")

BARNAUL = ZoneInfo(TZ)
RULES = DeadlineService().rules()
HOUR = 3600.0


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    """Barnaul wall time as Unix seconds."""
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=BARNAUL).timestamp()


def eod(y: int, m: int, d: int) -> float:
    return at(y, m, d, 23, 59, 59)


def _routed(regime: str, authority: str = "22-gzhi") -> dict[str, Any]:
    return {"appeal_id": "a1", "regime": regime, "region": "22", "authority_id": authority,
            "parent_authority_id": "22-government", "category": "housing_utilities",
            "urgent": False}


def _start(regime: str, registered: float, rules: SlaRules = RULES) -> State:
    state, _ = new_state(_routed(regime), 0, registered, TZ, rules)
    return state


def _pause_resume(state: State, paused: float, resumed: float) -> None:
    """Pause, check the running deadline at the resume moment, resume, check the replay."""
    apply_lifecycle(state, next_ev("paused", paused), RULES)
    running = _running_due(state, resumed, RULES)
    apply_lifecycle(state, next_ev("resumed", resumed), RULES)
    assert running == state["due"]  # a pause still running counts like its resume
    assert replay_deadline(state, RULES) == (state["due"], state["warn"])
    assert recompute(state, RULES, now=resumed).outcome == "unchanged"


@pytest.mark.parametrize(("regime", "registered", "due", "paused", "resumed", "moved"), [
    # incident, 8 working hours: 0.5 h used before the pause, 7.5 h from Mon 09:00.
    ("incident", at(2026, 3, 13, 17), at(2026, 3, 16, 16), at(2026, 3, 13, 17, 30),
     at(2026, 3, 16, 9), at(2026, 3, 16, 16, 30)),
    # incident: 6 working hours left at 12:00, resumed after closing: Tue 15:00, not 02:00.
    ("incident", at(2026, 3, 16, 10), at(2026, 3, 16, 18), at(2026, 3, 16, 12),
     at(2026, 3, 16, 20), at(2026, 3, 17, 15)),
    # fz59 (shift previous): 2 midnights move the last day to Sun 15 Mar -> Fri 13 Mar.
    ("fz59", at(2026, 2, 11, 10), eod(2026, 3, 13), at(2026, 2, 20, 12), at(2026, 2, 22, 12),
     eod(2026, 3, 13)),
    # fz59: 3 midnights -> Mon 16 Mar.
    ("fz59", at(2026, 2, 11, 10), eod(2026, 3, 13), at(2026, 2, 20, 12), at(2026, 2, 23, 9),
     eod(2026, 3, 16)),
    # pos, 10 working days: one working day held -> Mon 23 Mar, not Sat 21 Mar.
    ("pos", at(2026, 3, 5, 10), eod(2026, 3, 20), at(2026, 3, 17, 10), at(2026, 3, 18, 10),
     eod(2026, 3, 23)),
])
def test_a_pause_moves_the_deadline_in_the_policy_unit(
        regime: str, registered: float, due: float, paused: float, resumed: float,
        moved: float) -> None:
    state = _start(regime, registered)
    assert state["due"] == due
    _pause_resume(state, paused, resumed)
    assert state["due"] == moved
    assert state["warn"] <= state["due"]


def test_an_incident_warns_at_75_percent_of_its_working_time() -> None:
    # Fri 17:00 + 8 working hours = Mon 16:00; 6 of them are used at Mon 14:00 (was Sun 22:15).
    state = _start("incident", at(2026, 3, 13, 17))
    assert (state["due"], state["warn"]) == (at(2026, 3, 16, 16), at(2026, 3, 16, 14))
    state = _start("incident", at(2026, 3, 16, 17))  # Mon 17:00: Tue 14:00 (was Tue 10:15)
    assert (state["due"], state["warn"]) == (at(2026, 3, 17, 16), at(2026, 3, 17, 14))
    # Day counts keep the wall-clock share.
    fz = _start("fz59", at(2026, 3, 13, 17))
    assert fz["warn"] == pytest.approx(fz["start"] + 0.75 * (fz["due"] - fz["start"]))


def test_the_warning_after_a_pause_keeps_its_share_of_the_working_time() -> None:
    state = _start("incident", at(2026, 3, 16, 10))  # due 18:00, warning at 16:00 (6 h)
    assert state["warn"] == at(2026, 3, 16, 16)
    _pause_resume(state, at(2026, 3, 16, 12), at(2026, 3, 16, 20))
    # 4 working hours to the warning were left at 12:00: Tue 13:00 (due Tue 15:00).
    assert (state["warn"], state["due"]) == (at(2026, 3, 17, 13), at(2026, 3, 17, 15))
    fired = apply_tick(state, "warning", state["cycle"], RULES)
    assert [a.level for a in fired.alerts] == ["warning"]


def test_a_fired_warning_is_not_sent_again_after_a_pause() -> None:
    state = _start("incident", at(2026, 3, 16, 10))
    assert apply_tick(state, "warning", 0, RULES).alerts  # at 16:00
    apply_lifecycle(state, next_ev("paused", at(2026, 3, 16, 17)), RULES)
    resumed = apply_lifecycle(state, next_ev("resumed", at(2026, 3, 17, 9)), RULES)
    assert state["due"] == at(2026, 3, 17, 10)  # the 1 h left, from Tue 09:00
    assert state["warn"] == at(2026, 3, 16, 16)
    assert f"warning:{state['cycle']}" in state["alerts"]  # carried, not re-armed
    assert [t.kind for t in resumed.timers] == ["breach"]


def test_a_pause_on_the_last_day_is_not_gone_at_the_resume() -> None:
    # fz59 due Fri 13 Mar; paused that morning, resumed on the Saturday. "previous" would end
    # the rest on Friday, a deadline already past at the resume: Monday instead.
    state = _start("fz59", at(2026, 2, 11, 10))
    _pause_resume(state, at(2026, 3, 13, 10), at(2026, 3, 14, 10))
    assert state["due"] == eod(2026, 3, 16)
    assert state["breached"] is None


def test_an_extension_while_paused_is_judged_by_the_running_deadline() -> None:
    # fz59 paused on its last day (Fri 13 Mar); an extension declared on the Saturday while
    # the pause holds the clock is in time: the running deadline is Monday.
    state = _start("fz59", at(2026, 2, 11, 10))
    apply_lifecycle(state, next_ev("paused", at(2026, 3, 13, 10)), RULES)
    assert _running_due(state, at(2026, 3, 14, 10), RULES) == eod(2026, 3, 16)
    ext = apply_lifecycle(state, next_ev("extended", at(2026, 3, 14, 10), extension_days=30),
                          RULES)
    assert ext.outcome == "applied"
    apply_lifecycle(state, next_ev("resumed", at(2026, 3, 15, 10)), RULES)
    assert replay_deadline(state, RULES) == (state["due"], state["warn"])


def test_a_pause_after_the_deadline_cures_nothing() -> None:
    state = _start("incident", at(2026, 3, 16, 10))  # due 18:00
    assert apply_tick(state, "breach", 0, RULES).alerts
    apply_lifecycle(state, next_ev("paused", at(2026, 3, 16, 19)), RULES)
    assert _running_due(state, at(2026, 3, 17, 12), RULES) == at(2026, 3, 16, 18)
    resumed = apply_lifecycle(state, next_ev("resumed", at(2026, 3, 17, 12)), RULES)
    assert state["due"] == at(2026, 3, 16, 18) and resumed.alerts == []
    assert state["breached"] == at(2026, 3, 16, 18)


def test_a_state_stored_before_the_fix_loads_and_keeps_the_deadlines_it_was_given() -> None:
    """A state written by the running version (wall-clock pause, wall-clock warning) keeps
    working: a pause it stored still running is resumed in the policy unit (and marked so),
    while a pause it already applied keeps its wall-clock meaning on a recompute, so the
    deadline the body was given is not brought forward (here: into a breach) after the fact."""
    old = {"id": "a1", "p": 0, "regime": "incident", "region": "22", "tz": TZ,
           "auth": "22-gzhi", "parent": "22-government", "cat": "housing_utilities",
           "sub": None, "muni": None, "urgent": False, "complaint_about": None,
           "reg": at(2026, 3, 13, 17), "recv": at(2026, 3, 13, 17),
           "start": at(2026, 3, 13, 17), "due": at(2026, 3, 16, 16),
           "warn": at(2026, 3, 15, 22, 15), "status": "paused", "cycle": 0, "ext": 0,
           "paused": at(2026, 3, 13, 17, 30), "answered": None, "breached": None,
           "escalated": None, "alerts": [], "bdays": [], "edays": [], "resp": [],
           "prev": [], "events": ["e0"], "adj": []}
    state = copy.deepcopy(old)
    apply_lifecycle(state, next_ev("resumed", at(2026, 3, 16, 9)), RULES)
    assert state["due"] == at(2026, 3, 16, 16, 30)  # was Thu 19 Mar 07:30
    # The old wall-clock warning (Sun 22:15) held 0.5 working hours: Mon 09:30.
    assert state["warn"] == at(2026, 3, 16, 9, 30)
    assert state["adj"] == [["p", at(2026, 3, 13, 17, 30), at(2026, 3, 16, 9), "units"]]
    assert replay_deadline(state, RULES)[0] == state["due"]
    # The same state resumed by the old version, then recomputed after the upgrade.
    stored = copy.deepcopy(old)
    stored.update(status="running", paused=None, due=at(2026, 3, 19, 7, 30), cycle=1,
                  warn=at(2026, 3, 18, 13, 45),
                  adj=[["p", at(2026, 3, 13, 17, 30), at(2026, 3, 16, 9)]])
    assert recompute(stored, RULES, now=at(2026, 3, 16, 17)).outcome == "unchanged"
    assert stored["due"] == at(2026, 3, 19, 7, 30)
    # A later pause of that period counts in units, from the deadline it was given.
    apply_lifecycle(stored, next_ev("paused", at(2026, 3, 17, 10)), RULES)
    apply_lifecycle(stored, next_ev("resumed", at(2026, 3, 17, 12)), RULES)
    # 17 working hours were left at Tue 10:00 (up to Wed 18:00, the last before Thu 07:30),
    # counted again from Tue 12:00: Thu 11:00.
    assert stored["due"] == at(2026, 3, 19, 11)
    assert replay_deadline(stored, RULES) == (stored["due"], stored["warn"])
    # States without the "adj" list (older still) replay their start alone.
    del stored["adj"]
    assert replay_deadline(stored, RULES)[0] == at(2026, 3, 16, 16)


def test_rules_without_a_policy_book_keep_the_wall_clock() -> None:
    """Rules built from plain functions (tests, the demo's simple clock) have no unit: a
    pause adds its wall-clock length, as before."""
    day = 86400.0
    rules = SlaRules(due=lambda regime, start, *_: start + 30 * day,
                     extend=lambda regime, due, days, *_: due + days * day)
    state = _start("fz59", at(2026, 3, 2), rules)
    apply_lifecycle(state, next_ev("paused", at(2026, 3, 5, 12)), rules)
    assert _running_due(state, at(2026, 3, 6, 0), rules) == at(2026, 4, 1) + 12 * HOUR
    apply_lifecycle(state, next_ev("resumed", at(2026, 3, 7)), rules)
    assert state["due"] == at(2026, 4, 2) + 12 * HOUR
    assert replay_deadline(state, rules) == (state["due"], state["warn"])


# --- replay consistency over random histories ------------------------------------------------

KINDS = ["paused", "resumed", "paused", "resumed", "extended", "redirected", "answered",
         "reopened", "closed", "tick-warning", "tick-breach"]


@settings(max_examples=150, deadline=None)
@given(regime=st.sampled_from(["fz59", "pos", "incident", "hotline"]),
       registered=st.integers(0, 400 * 24),
       steps=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 6 * 24 * 60)),
                      max_size=14))
def test_live_and_replay_agree_for_any_history(regime: str, registered: int,
                                               steps: list[tuple[str, int]]) -> None:
    """After every event the stored deadline and warning are what a replay gives (so a
    recompute with unchanged files is a no-op); while paused, the running deadline is the
    one a resume at that moment would give; the warning is never after the deadline."""
    now = at(2026, 1, 1) + registered * HOUR
    state = _start(regime, now)
    for n, (kind, minutes) in enumerate(steps):
        now += minutes * 60.0
        if kind.startswith("tick-"):
            apply_tick(state, kind[5:], state["cycle"], RULES)
            continue
        extra: dict[str, Any] = {}
        if kind == "extended":
            extra = {"extension_days": 1 + n % 30}
        elif kind == "redirected":
            extra = {"to_authority_id": ("22-mintrans", "22-minzhkh")[n % 2]}
        if state["status"] == "paused" and state["paused"] is not None:
            trial = copy.deepcopy(state)
            running = _running_due(state, now, RULES)
            apply_lifecycle(trial, next_ev("resumed", now), RULES)
            assert running == trial["due"]
        before = state["due"]
        apply_lifecycle(state, next_ev(kind, now, **extra), RULES)
        if kind == "resumed":
            assert state["due"] >= before
        if state["status"] in ("running", "paused"):
            assert replay_deadline(state, RULES) == (state["due"], state["warn"])
            assert recompute(state, RULES, now=now).outcome == "unchanged"
            assert state["start"] <= state["warn"] <= state["due"]
