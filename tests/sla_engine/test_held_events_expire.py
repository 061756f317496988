"""Reopens and answers kept for an event that has not arrived are given up, with a dead letter's
worth of what they were, when they can no longer apply: ``SlaRules.early_hold`` after their
stamp (the index's ``held`` timer), or once the running period began after them.

Before, they stayed kept for good and nobody learnt of them: a second ``answered`` of an
answered appeal (an interim answer, then the final one) was kept for a reopen that never came,
up to eight per appeal, and the engine kept only their moments, so it could not have
dead-lettered them later either (review of the held events).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY, SIMPLE, T0, TZ, ev
from workers.sla import timers
from workers.sla.engine import (
    EARLY_HOLD,
    HELD_EXPIRED,
    HELD_TIMER,
    TICK_CHANGED,
    Expired,
    SlaRules,
    State,
    Timer,
    apply_lifecycle,
    apply_tick,
    copy_state,
    held_timer,
    new_state,
)


def _state(rules: SlaRules = SIMPLE) -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, rules)[0]


def _held_timers(state: State) -> list[Timer]:
    return [t for t in timers.pending_timers(state, SIMPLE.escalation_after)
            if t.kind == HELD_TIMER]


def test_a_second_answer_of_an_answered_appeal_is_dead_lettered_after_the_hold() -> None:
    state = _state()
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
    effects = apply_lifecycle(state, ev("answered", T0 + 2 * DAY, 2), SIMPLE)  # the final one
    assert effects.outcome == "early" and effects.expired == []
    expires = T0 + 2 * DAY + EARLY_HOLD
    timer = Timer("a1", HELD_TIMER, expires, int(expires))
    assert effects.timers == [timer] and _held_timers(state) == [timer]  # live and rebuilt
    assert state["eans"] == [[T0 + 2 * DAY, "e2", expires]]  # its id, no other field

    early = apply_tick(copy_state(state) or {}, HELD_TIMER, int(expires) - 1, SIMPLE)
    assert early.outcome == "stale" and early.expired == []  # not due yet

    tick = apply_tick(state, HELD_TIMER, timer.cycle, SIMPLE)
    assert tick.outcome == HELD_EXPIRED and tick.outcome in TICK_CHANGED  # stored
    [gone] = tick.expired
    assert (gone.kind, gone.event_id, gone.at) == ("answered", "e2", T0 + 2 * DAY)
    assert "the reopen it answers" in gone.detail and "7 days" in gone.detail
    assert "eans" not in state and "e2" not in state["events"]  # a resend is judged again
    assert tick.cancel == [timer] and _held_timers(state) == []
    assert state["status"] == "answered" and state["answered"] == T0 + 1 * DAY
    # Resent, it is kept again (with a hold of its own), not swallowed as a duplicate.
    assert apply_lifecycle(state, ev("answered", T0 + 2 * DAY, 2), SIMPLE).outcome == "early"


def test_a_reopen_whose_close_never_comes_is_dead_lettered_after_the_hold() -> None:
    rules = SlaRules(due=SIMPLE.due, extend=SIMPLE.extend, early_hold=2 * DAY)
    state = _state(rules)
    assert apply_lifecycle(state, ev("reopened", T0 + 1 * DAY, 1), rules).outcome == "early"
    [timer] = _held_timers(state)
    assert timer.due_ts == T0 + 3 * DAY
    tick = apply_tick(state, HELD_TIMER, timer.cycle, rules)
    assert tick.expired == [Expired(
        "reopened", "e1", T0 + 1 * DAY,
        "reopened stamped 2026-03-03T03:00:00+00:00 was kept for the answer or close it "
        "reopens: that did not come within 2 days of its stamp (APPEALS_SLA_EARLY_MAX_AGE); "
        "resend it once that event is sent")]
    assert "erop" not in state and state["status"] == "running"
    # The close that comes later closes the appeal; nothing is reopened any more.
    assert apply_lifecycle(state, ev("closed", T0 + 1 * DAY, 2), rules).outcome == "applied"
    assert state["status"] == "closed"


def test_an_answer_the_running_period_began_after_is_given_up_at_once() -> None:
    """Kept for a reopen at or before its stamp, it can never apply once a later reopen began
    the period: an earlier period's answer is refused as such."""
    state = _state()
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
    assert apply_lifecycle(state, ev("answered", T0 + 5 * DAY, 2), SIMPLE).outcome == "early"
    effects = apply_lifecycle(state, ev("reopened", T0 + 6 * DAY, 3), SIMPLE)
    assert effects.outcome == "applied" and state["status"] == "running"
    [gone] = effects.expired
    assert (gone.kind, gone.event_id) == ("answered", "e2")
    assert "began after it" in gone.detail
    assert "eans" not in state and "e2" not in state["events"]
    assert [t.kind for t in effects.cancel if t.kind == HELD_TIMER] == [HELD_TIMER]


def test_held_ones_still_apply_and_leave_no_timer() -> None:
    state = _state()
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 5 * DAY, 2), SIMPLE)
    effects = apply_lifecycle(state, ev("reopened", T0 + 3 * DAY, 3), SIMPLE)
    assert effects.expired == [] and state["answered"] == T0 + 5 * DAY
    assert "eans" not in state and _held_timers(state) == []
    assert [t.kind for t in effects.cancel if t.kind == HELD_TIMER] == [HELD_TIMER]


@pytest.mark.parametrize("key", ["eans", "erop"])
def test_a_state_stored_with_bare_moments_loads_applies_and_expires(key: str) -> None:
    state = _state()
    if key == "eans":  # answered on day 1, the answer of day 5 kept by the older version
        apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
        state["eans"] = [T0 + 5 * DAY]
        follow = ev("reopened", T0 + 3 * DAY, 3)
    else:  # the reopen of day 3 kept by the older version, its close comes now
        state["erop"] = [T0 + 3 * DAY]
        follow = ev("closed", T0 + 2 * DAY, 3)
    applied = copy_state(state) or {}
    assert apply_lifecycle(applied, follow, SIMPLE).outcome == "applied"
    assert key not in applied and applied["status"] == (
        "answered" if key == "eans" else "running")
    moment = T0 + (5 if key == "eans" else 3) * DAY
    # The rebuild arms it at the moment plus the hold, as the engine will store it...
    assert _held_timers(state) == [Timer("a1", HELD_TIMER, moment + EARLY_HOLD,
                                         int(moment + EARLY_HOLD))]
    # ... and the engine re-adds it when it converts the moment: an index kept from the
    # version before held timers lacks it.
    assert held_timer(state) is None
    # Another event touches the state: the bare moment gets its expiry, and its timer.
    touched = apply_lifecycle(state, ev("accepted", T0 + 1 * DAY, 4), SIMPLE)
    assert state[key] == [[moment, None, moment + EARLY_HOLD]]
    [timer] = touched.timers
    assert timer.kind == HELD_TIMER and timer.due_ts == moment + EARLY_HOLD
    tick = apply_tick(state, HELD_TIMER, timer.cycle, SIMPLE)
    [gone] = tick.expired
    assert gone.event_id is None and gone.at == moment and key not in state


@pytest.mark.parametrize("key", ["eans", "erop"])
def test_bare_moments_get_their_held_timer_from_the_rebuild_and_expire(key: str) -> None:
    """A state stored before 470f26f keeps bare moments. The index rebuild (start-up, Redis
    loss) armed nothing for them, and an answered appeal rarely sees the event that would
    convert them, so its kept answer never expired. The rebuild arms them at the moment plus
    the configured hold, and that tick dead-letters them."""
    rules = dataclasses.replace(SIMPLE, early_hold=3 * DAY)  # not the default
    state = _state(rules)
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), rules)
    moment = T0 + 2 * DAY
    state[key] = [moment]
    [timer] = [t for t in timers.pending_timers(state, rules.escalation_after,
                                                early_hold=rules.early_hold)
               if t.kind == HELD_TIMER]
    assert (timer.due_ts, timer.cycle) == (moment + 3 * DAY, int(moment + 3 * DAY))
    tick = apply_tick(state, HELD_TIMER, timer.cycle, rules)
    assert tick.outcome == HELD_EXPIRED
    assert [(gone.event_id, gone.at) for gone in tick.expired] == [(None, moment)]
    assert key not in state and tick.timers == []
