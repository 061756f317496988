"""A close that overtakes its answer (the inversion review 12 listed as not handled).

An authority system sends the answer, then the close. Events not on the appeal's partition are
re-published keyed, each from the partition it was read on, so an unkeyed pair can reach the
SLA state in either order. The answer processed second was refused ("not_open"): the appeal
counted as closed unanswered (overdue if the close came late) and the body lost an on-time
answer from its rating. Now the answer is applied under the close, giving the state, the
figures and the timers the in-order events give.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev, routed
from workers.sla import timers
from workers.sla.engine import (
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)

KEYS = ("status", "due", "warn", "cycle", "answered", "on_time", "closed", "breached",
        "escalated", "bdays", "edays", "resp", "stg", "adj")


def _state(rules: SlaRules, regime: str) -> State:
    return new_state(routed(regime), 0, T0, TZ, rules)[0]


def _view(state: State) -> dict[str, Any]:
    return {k: state.get(k) for k in KEYS}


def _armed(state: State, rules: SlaRules) -> set[str]:
    return {t.member for t in timers.pending_timers(state, rules.escalation_after)}


def _both_orders(rules: SlaRules, regime: str, answer_at: float, close_at: float,
                 tick_first: bool = False) -> tuple[State, State, list[str]]:
    """(in order, swapped, outcomes of the swapped pair)."""
    answered, closed = ev("answered", answer_at, 1), ev("closed", close_at, 2)
    in_order = _state(rules, regime)
    swapped = _state(rules, regime)
    if tick_first:  # the breach tick was processed before either event
        for state in (in_order, swapped):
            apply_tick(state, "breach", 0, rules)
    assert apply_lifecycle(in_order, answered, rules).outcome == "applied"
    apply_lifecycle(in_order, closed, rules)
    outcomes = [apply_lifecycle(swapped, e, rules).outcome for e in (closed, answered)]
    return in_order, swapped, outcomes


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "incident"])
@pytest.mark.parametrize("case", ["both_in_time", "answer_in_time_close_late",
                                  "both_late", "both_late_tick_first"])
def test_an_answer_processed_after_its_close_gives_the_in_order_state(
        rules: SlaRules, regime: str, case: str) -> None:
    due = _state(rules, regime)["due"]
    answer_at, close_at = {
        "both_in_time": (T0 + 3600, T0 + 7200),
        "answer_in_time_close_late": (due - 3600, due + DAY),
        "both_late": (due + 3600, due + DAY),
        "both_late_tick_first": (due + 3600, due + DAY),
    }[case]
    in_order, swapped, outcomes = _both_orders(rules, regime, answer_at, close_at,
                                               tick_first=case.endswith("tick_first"))
    assert outcomes[1] == "applied"
    assert _view(swapped) == _view(in_order)
    assert in_order["answered"] == answer_at and in_order["closed"] == close_at
    assert sorted(contributions(swapped)) == sorted(contributions(in_order))
    assert _armed(swapped, rules) == _armed(in_order, rules)
    if case == "answer_in_time_close_late":
        assert swapped["on_time"] is True and swapped["bdays"] == []


def test_an_answer_stamped_after_the_close_waits_for_its_reopen() -> None:
    """It is no answer of the closed period: kept for a reopen still on its way
    (``tests/sla_engine/test_held_reopens_and_answers.py``), and not applied to the closed one."""
    state = _state(SIMPLE, "fz59")
    apply_lifecycle(state, ev("closed", T0 + 3600, 1), SIMPLE)
    assert apply_lifecycle(state, ev("answered", T0 + 7200, 2), SIMPLE).outcome == "early"
    assert state["answered"] is None and state["status"] == "closed"


def test_an_answer_of_an_earlier_period_does_not_answer_the_reopened_one() -> None:
    state = _state(SIMPLE, "fz59")
    for n, (kind, hours) in enumerate([("answered", 1), ("closed", 2), ("reopened", 3),
                                       ("closed", 5)]):
        apply_lifecycle(state, ev(kind, T0 + hours * 3600, n), SIMPLE)
    # Stamped in the first period, before the reopen: it is not this period's answer.
    assert apply_lifecycle(state, ev("answered", T0 + 2.5 * 3600, 9), SIMPLE).outcome == (
        "not_open")
    assert state["answered"] is None


def test_an_answer_stamped_before_the_reopen_does_not_answer_the_open_reopened_period() -> None:
    state = _state(SIMPLE, "fz59")
    for n, (kind, hours) in enumerate([("closed", 2), ("reopened", 3)]):
        apply_lifecycle(state, ev(kind, T0 + hours * 3600, n), SIMPLE)
    assert apply_lifecycle(state, ev("answered", T0 + 3600, 9), SIMPLE).outcome == "not_open"
    assert state["answered"] is None and state["status"] == "running"


def test_an_answer_between_two_closes_counts_the_same_in_every_order() -> None:
    """A second close moved ``closed`` to its own moment, so an answer stamped between the
    two was refused when processed between them and applied when processed after both
    (review of session 14). The earliest close's moment is kept: in every order the answer is
    no answer of the closed period (kept for a reopen that may follow it)."""
    c1, answered, c2 = (ev("closed", T0 + 3600, 1), ev("answered", T0 + 2 * 3600, 2),
                        ev("closed", T0 + 3 * 3600, 3))
    results = []
    for order in ((c1, answered, c2), (c1, c2, answered), (c2, c1, answered)):
        state = _state(SIMPLE, "fz59")
        outcomes = {e["event_id"]: apply_lifecycle(state, e, SIMPLE).outcome for e in order}
        results.append((outcomes["e2"], _view(state), sorted(contributions(state))))
    assert results[0][0] == "early"
    assert results[1] == results[0]
    assert results[2] == results[0]


def test_a_close_that_ended_a_pause_keeps_a_later_processed_answer_out() -> None:
    """The close resumed the pause at its own moment; the answer would have ended it earlier,
    so its deadline would differ. Not reordered: the answer stays ``not_open``."""
    state = _state(SIMPLE, "fz59")
    apply_lifecycle(state, ev("paused", T0 + 3600, 1), SIMPLE)
    apply_lifecycle(state, ev("closed", T0 + 3 * DAY, 2), SIMPLE)
    assert apply_lifecycle(state, ev("answered", T0 + 2 * DAY, 3), SIMPLE).outcome == (
        "not_open")
