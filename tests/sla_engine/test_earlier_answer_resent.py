"""The answer of a period a reopen ended, resent under a new id, is a harmless ``repeated``.

The engine already took the same answer under a new id at the same moment as ``repeated`` while
the period was still answered; after a reopen, the same resend (another system, a sender
replaying its log) was dead-lettered ``not_open``, though the sender had done nothing wrong.
A genuinely new answer of an earlier period is still refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY, SIMPLE, T0, TZ, ev
from workers.sla.engine import (
    NOT_OPEN,
    REPEATED,
    State,
    apply_lifecycle,
    contributions,
    new_state,
    responses,
)


def _state() -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, SIMPLE)[0]


def _view(state: State) -> tuple[Any, ...]:
    return ({k: state.get(k) for k in ("status", "start", "due", "answered", "cycle")},
            sorted(contributions(state)), responses(state))


@pytest.mark.parametrize("then", [[], [("answered", 5)], [("closed", 5)]],
                         ids=["reopened", "answered_again", "closed_again"])
def test_the_first_answer_resent_after_a_reopen_is_repeated(
        then: list[tuple[str, int]]) -> None:
    state = _state()
    history = [("answered", 1), ("reopened", 3), *then]
    for n, (kind, day) in enumerate(history):
        assert apply_lifecycle(state, ev(kind, T0 + day * DAY, n), SIMPLE).outcome == "applied"
    before = _view(state)
    effects = apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 99), SIMPLE)
    assert (effects.outcome, effects.detail, effects.alerts) == (REPEATED, "", [])
    assert _view(state) == before
    assert "e99" in state["events"]  # remembered like an applied event's id


def test_a_new_answer_of_an_earlier_period_stays_refused() -> None:
    state = _state()
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
    apply_lifecycle(state, ev("reopened", T0 + 3 * DAY, 2), SIMPLE)
    effects = apply_lifecycle(state, ev("answered", T0 + 2 * DAY, 3), SIMPLE)
    assert effects.outcome == NOT_OPEN and "e3" not in state["events"]
