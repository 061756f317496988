"""A resume that overtakes its pause (review 12, "out-of-order events").

Events of one appeal that are not on its partition are re-published keyed, each from the
partition it was read on, so a pause and its resume sent together can reach the SLA state in
either order. A resume processed first used to be dropped ("not_open"), and the pause then held
the appeal without timers for good. Now the resume is kept until its pause arrives, and the
result is the state the in-order events give.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev, routed
from workers.sla import timers
from workers.sla.engine import (
    EARLY_RESUME_OVERFLOW,
    MAX_EARLY_RESUMES,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    new_state,
)

KEYS = ("status", "due", "warn", "cycle", "paused", "adj", "breached", "alerts", "bdays")


def _run(rules: SlaRules, events: list[dict[str, Any]], regime: str = "fz59"
         ) -> tuple[State, list[str]]:
    state, _ = new_state(routed(regime), 0, T0, TZ, rules)
    outcomes = [apply_lifecycle(state, e, rules).outcome for e in events]
    return state, outcomes


def _view(state: State) -> dict[str, Any]:
    return {k: state.get(k) for k in KEYS}


def _armed(state: State, rules: SlaRules) -> set[str]:
    return {t.member for t in timers.pending_timers(state, rules.escalation_after)}


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "incident"])
def test_a_resume_processed_before_its_pause_gives_the_in_order_state(
        rules: SlaRules, regime: str) -> None:
    paused, resumed = ev("paused", T0 + 3 * 3600, 1), ev("resumed", T0 + 2 * DAY, 2)
    in_order, outcomes = _run(rules, [paused, resumed], regime)
    assert outcomes == ["applied", "applied"] and in_order["status"] == "running"
    swapped, outcomes = _run(rules, [resumed, paused], regime)
    assert outcomes == ["early", "applied"]
    assert _view(swapped) == _view(in_order)
    assert "eres" not in swapped
    # The timer index a rebuild arms is the same: the deadline is tracked again.
    assert _armed(swapped, rules) == _armed(in_order, rules) != set()


def test_the_breach_tick_between_them_is_taken_back_when_the_pause_arrives() -> None:
    """The resume arrives, the (unpaused) deadline passes and its breach fires, then the pause
    stamped long before the deadline arrives: the breach is taken back and the deadline moved
    by the pause, as if the events had come in order."""
    state, _ = new_state(routed(), 0, T0, TZ, SIMPLE)
    due = state["due"]
    apply_lifecycle(state, ev("resumed", due - DAY, 2), SIMPLE)
    assert [a.level for a in apply_tick(state, "breach", 0, SIMPLE).alerts] == ["breach"]
    apply_lifecycle(state, ev("paused", due - 5 * DAY, 1), SIMPLE)
    assert state["status"] == "running" and state["breached"] is None
    assert state["due"] == due + 4 * DAY


def test_a_pause_after_every_kept_resume_is_an_ordinary_pause() -> None:
    state, outcomes = _run(SIMPLE, [ev("resumed", T0 + DAY, 1), ev("paused", T0 + 2 * DAY, 2)])
    assert outcomes == ["early", "applied"]
    assert state["status"] == "paused" and state["eres"] == [T0 + DAY]
    # Its own resume then ends it as usual.
    apply_lifecycle(state, ev("resumed", T0 + 3 * DAY, 3), SIMPLE)
    assert state["status"] == "running" and state["due"] == T0 + 31 * DAY


def test_two_inverted_pairs_each_find_their_resume() -> None:
    events = [ev("paused", T0 + DAY, 1), ev("resumed", T0 + 2 * DAY, 2),
              ev("paused", T0 + 5 * DAY, 3), ev("resumed", T0 + 8 * DAY, 4)]
    in_order, _ = _run(SIMPLE, events)
    swapped, outcomes = _run(SIMPLE, [events[1], events[3], events[0], events[2]])
    assert outcomes == ["early", "early", "applied", "applied"]
    assert _view(swapped) == _view(in_order)
    assert swapped["due"] == T0 + 34 * DAY


def test_kept_resumes_are_bounded_and_one_more_is_refused_not_dropped() -> None:
    """Beyond the bound the newcomer is refused (the agent dead-letters it), whatever its
    stamp; the oldest kept one used to be dropped for it without a trace."""
    events = [ev("resumed", T0 + i * 3600, i) for i in range(5, MAX_EARLY_RESUMES + 5)]
    events += [ev("resumed", T0 + i * 3600, i) for i in (1, 50)]
    state, outcomes = _run(SIMPLE, events)
    assert outcomes == ["early"] * MAX_EARLY_RESUMES + [EARLY_RESUME_OVERFLOW] * 2
    assert state["eres"] == [T0 + i * 3600 for i in range(5, MAX_EARLY_RESUMES + 5)]


def test_a_resume_of_an_answered_appeal_is_still_not_open() -> None:
    state, outcomes = _run(SIMPLE, [ev("answered", T0 + DAY, 1), ev("resumed", T0 + 2 * DAY, 2)])
    assert outcomes == ["applied", "not_open"] and "eres" not in state
