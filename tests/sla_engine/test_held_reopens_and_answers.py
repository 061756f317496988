"""A reopen that overtook the close (or answer) it reopens, and an answer that overtook its
reopen, are kept until that event arrives, then applied as had they come in order.

Re-keyed events reach the state in the order they are re-published. A reopen processed before
its close was refused (``not_closed``) with its id kept: the appeal stayed closed and the
resend was a duplicate. A reopened period's answer processed before the reopen was refused
(``not_open``): the reopened period then ran unanswered and breached.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev
from workers.sla import timers
from workers.sla.engine import (
    EARLY_EVENT_OVERFLOW,
    MAX_EARLY_EVENTS,
    NOT_OPEN,
    SlaRules,
    State,
    apply_lifecycle,
    contributions,
    new_state,
    responses,
)

KEYS = ("status", "start", "due", "answered", "on_time", "breached", "outcomes", "resp",
        "bdays", "reopened", "hist")


def _state(rules: SlaRules) -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, rules)[0]


def _view(state: State, rules: SlaRules) -> tuple[Any, ...]:
    return ({k: state.get(k) for k in KEYS}, sorted(contributions(state)), responses(state),
            sorted((t.kind, t.due_ts) for t in timers.pending_timers(
                state, rules.escalation_after)), state.get("erop"), state.get("eans"))


def _run(rules: SlaRules, events: list[dict[str, Any]]) -> tuple[State, list[str]]:
    state = _state(rules)
    return state, [apply_lifecycle(state, e, rules).outcome for e in events]


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("history", [
    [("closed", 2), ("reopened", 3)],
    [("answered", 1), ("reopened", 3), ("answered", 5)],
    [("answered", 1), ("closed", 2), ("reopened", 3), ("answered", 5)],
    [("answered", 1), ("reopened", 3), ("answered", 5), ("reopened", 7), ("answered", 9)],
    [("closed", 2), ("reopened", 3), ("answered", 5)],
], ids=["close_reopen", "answer_reopen_answer", "with_close", "two_reopens", "close_answer"])
def test_every_order_ends_as_in_order(rules: SlaRules, history: list[tuple[str, int]]) -> None:
    events = [ev(kind, T0 + day * DAY, n) for n, (kind, day) in enumerate(history)]
    in_order, outcomes = _run(rules, events)
    assert set(outcomes) == {"applied"}
    for i in range(len(events) - 1):  # each event processed before the one it follows
        order = [*events[:i], events[i + 1], events[i], *events[i + 2:]]
        state, outcomes = _run(rules, order)
        assert "not_closed" not in outcomes
        if events[i]["event"] != "closed":  # a close after its reopen: the earlier period's
            assert NOT_OPEN not in outcomes
        assert _view(state, rules) == _view(in_order, rules), i
        # Every event applied is remembered: a resend is a duplicate.
        assert {apply_lifecycle(state, e, rules).outcome
                for e, o in zip(order, outcomes, strict=True) if o != NOT_OPEN} == {"duplicate"}


def test_a_reopened_period_answered_before_its_reopen_arrived_does_not_breach() -> None:
    state, outcomes = _run(SIMPLE, [ev("answered", T0 + 1 * DAY, 1),
                                    ev("answered", T0 + 5 * DAY, 2),
                                    ev("reopened", T0 + 3 * DAY, 3)])
    assert outcomes == ["applied", "early", "applied"]
    assert state["status"] == "answered" and state["answered"] == T0 + 5 * DAY
    assert not [t for t in timers.pending_timers(state, SIMPLE.escalation_after)]


def test_the_same_answer_under_a_new_id_is_a_silent_repeat() -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 1), SIMPLE)
    before = _view(state, SIMPLE)
    effects = apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 2), SIMPLE)
    assert effects.outcome == "repeated" and not effects.alerts and effects.detail == ""
    assert _view(state, SIMPLE) == before


def test_an_answer_stamped_before_the_answer_held_is_refused_with_its_reason() -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("answered", T0 + 2 * DAY, 1), SIMPLE)
    effects = apply_lifecycle(state, ev("answered", T0 + 1 * DAY, 2), SIMPLE)
    assert effects.outcome == NOT_OPEN
    assert "it is answered at 2026-03-04T10:00:00+07:00" in effects.detail
    assert "e2" not in state["events"]


@pytest.mark.parametrize("kind", ["paused", "resumed", "redirected"])
def test_other_events_of_an_ended_appeal_are_refused_and_not_remembered(kind: str) -> None:
    state = _state(SIMPLE)
    apply_lifecycle(state, ev("closed", T0 + 2 * DAY, 1), SIMPLE)
    effects = apply_lifecycle(state, ev(kind, T0 + 3 * DAY, 2, to_authority_id="B"), SIMPLE)
    assert effects.outcome == NOT_OPEN
    assert effects.detail.startswith(f"{kind} stamped ")
    assert "it is closed at 2026-03-04T10:00:00+07:00" in effects.detail
    assert "e2" not in state["events"]


def test_a_reopen_beyond_the_kept_ones_is_refused_and_not_remembered() -> None:
    state = _state(SIMPLE)
    for n in range(MAX_EARLY_EVENTS):
        assert apply_lifecycle(state, ev("reopened", T0 + (n + 1) * 3600, n), SIMPLE).outcome \
            == "early"
    effects = apply_lifecycle(state, ev("reopened", T0 + DAY, 99), SIMPLE)
    assert effects.outcome == EARLY_EVENT_OVERFLOW and "e99" not in state["events"]
    assert f"{MAX_EARLY_EVENTS} reopened events" in effects.detail
