"""An answer, close or extension stamped before the redirect or reopen that began the running
answer period belongs to an earlier period, in whatever order the events are processed.

Re-keyed events reach the state in the order they are re-published, not the order they were
sent. Processed after the redirect or reopen, such an event was applied to the new period: a
close stamped before a reopen closed the reopened period before it began (its timers
cancelled, no breach ever reported), the handing-on body's answer credited the receiving body
with an answer in 0 s, and its extension gave the receiving body a month more and used up its
extension. Now answers and closes are ``not_open`` (as an answer before a reopen already was)
and extensions ``before_period`` (as pauses). The first period is not judged so: an event
stamped a little before registration (a sender's clock behind the intake's) still applies.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev, routed
from workers.sla import timers
from workers.sla.engine import (
    BEFORE_PERIOD,
    SlaRules,
    State,
    apply_lifecycle,
    contributions,
    copy_state,
    new_state,
)

#: What the in-order and the late-processed events must agree on. Not the cycle (an extension
#: applied in order bumps it before the redirect starts the next) nor the tracked stages (a
#: close in order also ends a stage the answer only settled; refused, it ends nothing).
KEYS = ("status", "auth", "start", "due", "warn", "ext", "answered", "on_time", "breached",
        "resp", "adj")


def _state(rules: SlaRules, regime: str = "fz59") -> State:
    return new_state(routed(regime), 0, T0, TZ, rules)[0]


def _view(state: State, rules: SlaRules) -> tuple[Any, ...]:
    armed = {(t.kind, t.due_ts)
             for t in timers.pending_timers(state, rules.escalation_after)}
    return ({k: state.get(k) for k in KEYS}, armed,
            sorted(c for c in contributions(state) if c[2] != "received"))


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("regime", ["fz59", "incident"])
def test_a_close_before_a_reopen_does_not_close_the_reopened_period(
        rules: SlaRules, regime: str) -> None:
    """Answered on day 10, closed on day 11, reopened on day 15: the close processed after
    the reopen ended the reopened period, as closed on day 11."""
    events = {"answered": ev("answered", T0 + 10 * DAY, 1),
              "closed": ev("closed", T0 + 11 * DAY, 2),
              "reopened": ev("reopened", T0 + 15 * DAY, 3)}
    in_order, late_close = _state(rules, regime), _state(rules, regime)
    for kind in ("answered", "closed", "reopened"):
        assert apply_lifecycle(in_order, events[kind], rules).outcome == "applied"
    for kind in ("answered", "reopened"):
        assert apply_lifecycle(late_close, events[kind], rules).outcome == "applied"
    armed = _view(late_close, rules)[1]
    effects = apply_lifecycle(late_close, events["closed"], rules)
    assert effects.outcome == "not_open" and not effects.cancel
    assert late_close["status"] == "running" and late_close.get("closed") is None
    assert _view(late_close, rules) == _view(in_order, rules)
    assert _view(late_close, rules)[1] == armed


def test_a_close_before_a_reopen_leaves_the_reopened_period_s_close_alone() -> None:
    """Processed after the reopened period was closed, a close of the earlier period moved
    ``closed`` back before the reopen (a second close keeps the earliest moment)."""
    state = _state(SIMPLE)
    for n, (kind, days) in enumerate([("closed", 11), ("reopened", 15), ("closed", 20)]):
        assert apply_lifecycle(state, ev(kind, T0 + days * DAY, n), SIMPLE).outcome == (
            "applied")
    assert apply_lifecycle(state, ev("closed", T0 + 12 * DAY, 9), SIMPLE).outcome == (
        "not_open")
    assert state["closed"] == T0 + 20 * DAY and state["status"] == "closed"


def test_the_close_of_a_reopened_answered_period_is_its_own() -> None:
    """Answered and closed, reopened, answered and closed again: the second period's close was
    taken as a second close of the first (the earliest moment kept), so the appeal read as
    ended on its answer, a day before it was closed."""
    state = _state(SIMPLE)
    for n, (kind, days) in enumerate([("answered", 10), ("closed", 11), ("reopened", 15),
                                      ("answered", 20), ("closed", 21)]):
        assert apply_lifecycle(state, ev(kind, T0 + days * DAY, n), SIMPLE).outcome == (
            "applied")
    assert state["closed"] == T0 + 21 * DAY


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
def test_an_extension_before_a_redirect_does_not_extend_the_receiving_body(
        rules: SlaRules) -> None:
    """A's extension on day 5, the redirect to B on day 6, B's answer on day 51: late in order
    (B's own 30 days), on time when the extension was processed after the redirect."""
    extension = ev("extended", T0 + 5 * DAY, 1, extension_days=30)
    redirect = ev("redirected", T0 + 6 * DAY, 2, to_authority_id="B")
    answer = ev("answered", T0 + 51 * DAY, 3)
    results = []
    for order, want in (((extension, redirect), ["applied", "applied"]),
                        ((redirect, extension), ["applied", BEFORE_PERIOD])):
        state = _state(rules)
        assert [apply_lifecycle(state, e, rules).outcome for e in order] == want
        assert state["ext"] == 0 and state["adj"] == []
        assert apply_lifecycle(state, answer, rules).outcome == "applied"
        assert state["on_time"] is False
        results.append(_view(state, rules))
    assert results[1] == results[0]


def test_an_extension_before_a_reopen_is_refused_and_one_after_it_applies() -> None:
    state = _state(SIMPLE)
    for n, (kind, days) in enumerate([("answered", 10), ("reopened", 15)]):
        apply_lifecycle(state, ev(kind, T0 + days * DAY, n), SIMPLE)
    due = state["due"]
    trial = copy_state(state)
    assert trial is not None
    assert apply_lifecycle(trial, ev("extended", T0 + 12 * DAY, 8), SIMPLE).outcome == (
        BEFORE_PERIOD)
    assert trial["due"] == due and trial["adj"] == []
    assert apply_lifecycle(state, ev("extended", T0 + 16 * DAY, 9), SIMPLE).outcome == (
        "applied")
    assert state["due"] == due + 30 * DAY


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("kind", ["answered", "closed"])
def test_an_answer_or_close_before_a_redirect_does_not_end_the_receiving_body_s_period(
        rules: SlaRules, kind: str) -> None:
    """Stamped on day 3, processed after the redirect of day 6: B was credited with an answer
    in 0 s, or its period closed before it began. In order, the redirect is refused
    (``not_open``) and A's period ends; processed late, the event is refused and B's period
    runs: which of the two happened cannot be told from the events, but B's period is never
    ended by an event from before it."""
    state = _state(rules)
    apply_lifecycle(state, ev("redirected", T0 + 6 * DAY, 1, to_authority_id="B"), rules)
    before = _view(state, rules)
    effects = apply_lifecycle(state, ev(kind, T0 + 3 * DAY, 2), rules)
    assert effects.outcome == "not_open" and not effects.cancel and not effects.alerts
    assert _view(state, rules) == before
    assert state["status"] == "running" and state["auth"] == "B" and state["resp"] == []


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
@pytest.mark.parametrize("kind", ["answered", "closed", "extended"])
def test_the_first_period_takes_an_event_stamped_just_before_registration(
        rules: SlaRules, kind: str) -> None:
    """A sender's clock a minute behind the intake's: the first period begins at registration,
    and such an answer, close or extension is still the first period's."""
    state = _state(rules)
    extra = {"extension_days": 30} if kind == "extended" else {}
    assert apply_lifecycle(state, ev(kind, T0 - 60, 1, **extra), rules).outcome == "applied"
