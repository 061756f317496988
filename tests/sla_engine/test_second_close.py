"""Two closes of one unanswered period (a resend under a new id, another system) give the
state of the two in order, whichever is processed first.

The later close, past the deadline, processed first reported the breach; the earlier one, in
time, then only moved ``closed`` back: the appeal counted as closed overdue, with a breach, on
the day it was closed in time. And when the later close ended a pause, the deadline stayed
the one its resume gave. Now the earlier close takes the breach back (its alert stays sent)
and ends the pause at its own moment (or, stamped before the pause, drops it).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev, routed
from workers.sla.engine import (
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)

#: Not the cycle: a pause applied in order bumps it where the swapped order may not.
KEYS = ("status", "due", "warn", "closed", "answered", "breached", "escalated", "adj", "resp")


def _state(rules: SlaRules, regime: str) -> State:
    return new_state(routed(regime), 0, T0, TZ, rules)[0]


def _view(state: State) -> tuple[Any, ...]:
    stages = [(e[0], e[5]) for e in state.get("stg", ())]
    bdays = [e[:2] for e in state["bdays"]]
    return ({k: state.get(k) for k in KEYS}, stages, bdays,
            sorted(c for c in contributions(state) if c[2] != "received"))


def _both_orders(rules: SlaRules, regime: str, first: list[dict[str, Any]],
                 early: dict[str, Any], late: dict[str, Any], tick: bool = False,
                 ) -> tuple[State, State]:
    """(``first`` then the closes in order, ``first`` then the late close, the early one);
    with ``tick``, the answer period's breach tick processed after ``first``."""
    states = []
    for closes in ((early, late), (late, early)):
        state = _state(rules, regime)
        for event in first:
            apply_lifecycle(state, event, rules)
        if tick:
            apply_tick(state, "breach", state["cycle"], rules)
        for event in closes:
            assert apply_lifecycle(state, event, rules).outcome == "applied"
        states.append(state)
    return states[0], states[1]


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "incident", "pos"])
@pytest.mark.parametrize("tick", [False, True], ids=["no_tick", "breach_tick_first"])
def test_a_close_in_time_processed_after_a_late_one_takes_its_breach_back(
        rules: SlaRules, regime: str, tick: bool) -> None:
    due = _state(rules, regime)["due"]
    early, late = ev("closed", T0 + 3600, 1), ev("closed", due + DAY, 2)
    in_order, _ = _both_orders(rules, regime, [], early, late)
    assert in_order["breached"] is None and in_order["closed"] == T0 + 3600
    # With the breach tick processed before both closes, each order gives the same too.
    for state in _both_orders(rules, regime, [], early, late, tick=tick):
        assert _view(state) == _view(in_order)
    swapped = _both_orders(rules, regime, [], early, late, tick=tick)[1]
    assert "breach:0" in swapped["alerts"]  # sent (by the tick or the late close): it stays


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "pos"])
def test_two_late_closes_keep_the_breach(rules: SlaRules, regime: str) -> None:
    """And the stages the later close ended end at the earlier one (an answer processed after
    both, under the close, finds them as in order)."""
    due = _state(rules, regime)["due"]
    in_order, swapped = _both_orders(rules, regime, [], ev("closed", due + 3600, 1),
                                     ev("closed", due + DAY, 2))
    assert in_order["breached"] is not None
    assert _view(swapped) == _view(in_order)


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "pos"])
def test_the_earlier_close_ends_the_pause_the_later_one_ended(
        rules: SlaRules, regime: str) -> None:
    """Paused on day 2, closed on days 5 and 40: the deadline counts the pause to day 5."""
    paused = ev("paused", T0 + 2 * DAY, 1)
    in_order, swapped = _both_orders(rules, regime, [paused], ev("closed", T0 + 5 * DAY, 2),
                                     ev("closed", T0 + 40 * DAY, 3))
    assert in_order["adj"][-1][2] == T0 + 5 * DAY
    assert _view(swapped) == _view(in_order)


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "pos"])
def test_a_pause_after_the_earlier_close_is_not_counted(rules: SlaRules, regime: str) -> None:
    """Closed in time; a pause and a second close stamped after the deadline. In order the
    pause finds the appeal closed (``not_open``). Processed first, the pause reported the
    breach and the late close ended it; the close in time, processed last, leaves neither."""
    due = _state(rules, regime)["due"]
    early = ev("closed", T0 + 3600, 1)
    pause, late = ev("paused", due + 3600, 2), ev("closed", due + DAY, 3)
    in_order = _state(rules, regime)
    outcomes = [apply_lifecycle(in_order, e, rules).outcome for e in (early, pause, late)]
    assert outcomes == ["applied", "not_open", "applied"]
    swapped = _state(rules, regime)
    outcomes = [apply_lifecycle(swapped, e, rules).outcome for e in (pause, late, early)]
    assert outcomes == ["applied"] * 3
    assert swapped["adj"] == [] and swapped["breached"] is None
    assert _view(swapped) == _view(in_order)


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "incident", "pos"])
def test_an_answer_and_two_closes_give_one_state_in_every_order(
        rules: SlaRules, regime: str) -> None:
    due = _state(rules, regime)["due"]
    events = [ev("answered", T0 + 1800, 1), ev("closed", T0 + 3600, 2),
              ev("closed", due + DAY, 3)]
    views = []
    for order in itertools.permutations(events):
        state = _state(rules, regime)
        assert [apply_lifecycle(state, e, rules).outcome for e in order] == ["applied"] * 3
        views.append(_view(state))
    assert all(view == views[0] for view in views[1:])
