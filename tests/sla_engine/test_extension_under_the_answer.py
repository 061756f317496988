"""An extension stamped before the answer but processed after it is applied under the answer,
as had the two come in order.

Re-keyed events reach the state in the order they are re-published. An extension of 30 days
on day 20 and an answer on day 40: in order the answer is on time; the answer processed first
counted late with a breach, the extension was refused (``extension_refused``), and its resend
was refused again. Now the period is opened again, the extension applied, the answer applied
again, and the breach taken back (its alert stays sent).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev
from workers.sla import timers
from workers.sla.engine import (
    EXTENSION_REFUSED,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
    responses,
)

KEYS = ("status", "due", "warn", "ext", "answered", "on_time", "breached", "escalated", "adj",
        "bdays", "edays", "resp")


def _state(rules: SlaRules) -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, rules)[0]


def _view(state: State, rules: SlaRules) -> tuple[Any, ...]:
    return ({k: state.get(k) for k in KEYS},
            sorted(contributions(state)), responses(state),
            timers.pending_timers(state, rules.escalation_after))


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("tick", [False, True], ids=["no_tick", "breach_tick_first"])
def test_the_answer_processed_first_ends_as_in_order(rules: SlaRules, tick: bool) -> None:
    extension = ev("extended", T0 + 20 * DAY, 1, extension_days=30)
    answer = ev("answered", T0 + 40 * DAY, 2)
    in_order = _state(rules)
    for event in (extension, answer):
        assert apply_lifecycle(in_order, event, rules).outcome == "applied"
    late = _state(rules)
    if tick:
        apply_tick(late, "breach", late["cycle"], rules)
    first = apply_lifecycle(late, answer, rules)
    assert late["on_time"] is False and late["bdays"]
    effects = apply_lifecycle(late, extension, rules)
    assert effects.outcome == "applied", effects.detail
    assert not effects.alerts and effects.answered is None
    assert _view(late, rules) == _view(in_order, rules)
    assert late["on_time"] is True and late["bdays"] == []
    sent = [a.level for a in first.alerts]
    assert ("breach" in sent) != tick  # sent once, by the tick or by the late answer
    armed = {t.member for t in effects.timers} - {t.member for t in effects.cancel}
    assert not armed  # the answered period arms nothing


def test_an_extension_after_the_answer_is_still_refused() -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 10 * DAY, 1), SIMPLE)
    effects = apply_lifecycle(state, ev("extended", T0 + 12 * DAY, 2), SIMPLE)
    assert effects.outcome == EXTENSION_REFUSED and "answered" in effects.detail


def test_an_extension_after_the_deadline_is_still_refused() -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 40 * DAY, 1), SIMPLE)
    effects = apply_lifecycle(state, ev("extended", T0 + 35 * DAY, 2), SIMPLE)
    assert effects.outcome == EXTENSION_REFUSED and "deadline then running" in effects.detail
    assert state["on_time"] is False


def test_a_second_extension_under_the_answer_is_refused_and_changes_nothing() -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("extended", T0 + 5 * DAY, 1, extension_days=5), SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 40 * DAY, 2), SIMPLE)
    before = _view(state, SIMPLE)
    effects = apply_lifecycle(state, ev("extended", T0 + 20 * DAY, 3), SIMPLE)
    assert effects.outcome == EXTENSION_REFUSED and "unused" in effects.detail
    assert _view(state, SIMPLE) == before
