"""The SLA state machine: transitions, idempotency under replays, and exact aggregates.

Pure logic, no broker: the deadline function here is simple arithmetic (deadline rules have
their own tests in tests/deadlines), so every expected moment below is worked out by hand.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sla_engine.engine_support import DAY
from tests.sla_engine.engine_support import ev as _ev
from workers.sla.engine import (
    EXTENSION_REFUSED,
    SlaRules,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
    replay_deadline,
)

T0 = 1_790_000_000.0  # 2026-09-21
# ``_ev``, not ``ev``: CI draws the property test's examples from its source text (hypothesis'
# derandomize), so its source is kept as it was.


def _due(regime: str, start: float, tz: str, urgent: bool, *_: Any) -> float:
    return start + (1 if urgent else 30) * DAY


def _extend(regime: str, due: float, days: int, *_: Any) -> float:
    if days > 30:
        raise ValueError("too long")
    return due + days * DAY


RULES = SlaRules(due=_due, extend=_extend, warning_share=0.75, escalation_after=3 * DAY)


def _routed(appeal_id: str = "a1", urgent: bool = False) -> dict[str, Any]:
    return {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
            "authority_id": "22-minzhkh", "parent_authority_id": "22-government",
            "category": "housing_utilities", "urgent": urgent}


def test_new_state_sets_deadline_and_timers() -> None:
    state, eff = new_state(_routed(), 3, T0, "Asia/Barnaul", RULES)
    assert state["due"] == T0 + 30 * DAY
    assert state["warn"] == T0 + 22.5 * DAY
    assert [(t.kind, t.due_ts, t.cycle) for t in eff.timers] == [
        ("warning", T0 + 22.5 * DAY, 0), ("breach", T0 + 30 * DAY, 0)]
    assert state["p"] == 3 and state["status"] == "running"


def test_answer_on_time_is_met_without_alerts() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    eff = apply_lifecycle(state, _ev("answered", T0 + 10 * DAY, 1), RULES)
    assert state["status"] == "answered" and state["on_time"] is True
    assert eff.alerts == [] and eff.answered == (10 * DAY, True)
    assert {t.kind for t in eff.cancel} >= {"warning", "breach"}


def test_late_answer_reports_one_breach_even_if_timer_never_fired() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    eff = apply_lifecycle(state, _ev("answered", T0 + 31 * DAY, 1), RULES)
    assert [a.level for a in eff.alerts] == ["breach"]
    assert state["on_time"] is False
    # the breach timer that arrives later is stale: no second alert
    assert apply_tick(state, "breach", 0, RULES).alerts == []


def test_timer_breach_then_late_answer_is_still_one_breach() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    assert [a.level for a in apply_tick(state, "warning", 0, RULES).alerts] == ["warning"]
    eff = apply_tick(state, "breach", 0, RULES)
    assert [a.level for a in eff.alerts] == ["breach"]
    assert [t.kind for t in eff.timers] == ["escalation"]
    assert apply_tick(state, "breach", 0, RULES).alerts == []  # replayed tick
    late = apply_lifecycle(state, _ev("answered", T0 + 31 * DAY, 1), RULES)
    assert late.alerts == []
    assert state["status"] == "answered"


def test_escalation_goes_to_parent() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_tick(state, "breach", 0, RULES)
    eff = apply_tick(state, "escalation", 0, RULES)
    assert [(a.level, a.notify_authority_id) for a in eff.alerts] == [
        ("escalation", "22-government")]


def test_duplicate_lifecycle_event_changes_nothing() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, _ev("answered", T0 + DAY, 1), RULES)
    snapshot = dict(state)
    eff = apply_lifecycle(state, _ev("answered", T0 + DAY, 1), RULES)
    assert eff.outcome == "duplicate" and state == snapshot


def test_extension_once_moves_deadline_and_obsoletes_old_timers() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    eff = apply_lifecycle(state, _ev("extended", T0 + 20 * DAY, 1, extension_days=30), RULES)
    assert state["due"] == T0 + 60 * DAY and state["cycle"] == 1
    assert {(t.kind, t.cycle) for t in eff.timers} == {("warning", 1), ("breach", 1)}
    assert apply_tick(state, "breach", 0, RULES).outcome == "stale"
    again = apply_lifecycle(state, _ev("extended", T0 + 21 * DAY, 2, extension_days=10), RULES)
    assert again.outcome == EXTENSION_REFUSED and state["due"] == T0 + 60 * DAY


def test_pause_moves_deadline_by_paused_time_and_never_shortens() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, _ev("paused", T0 + 5 * DAY, 1), RULES)
    assert apply_tick(state, "warning", 0, RULES).alerts == []  # no alerts while paused
    apply_lifecycle(state, _ev("resumed", T0 + 9 * DAY, 2), RULES)
    assert state["due"] == T0 + 34 * DAY and state["status"] == "running"


def test_redirect_restarts_clock_at_new_authority() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, _ev("redirected", T0 + 2 * DAY, 1, to_authority_id="22-mintrans"),
                    RULES, lambda a: "22-government")
    assert state["auth"] == "22-mintrans" and state["due"] == T0 + 32 * DAY
    assert state["recv"] == T0 + 2 * DAY


def test_reopen_starts_new_answer_period() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, _ev("answered", T0 + DAY, 1), RULES)
    apply_lifecycle(state, _ev("reopened", T0 + 2 * DAY, 2), RULES)
    assert state["status"] == "running" and state["due"] == T0 + 32 * DAY


def test_contributions_count_received_answered_breaches() -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    assert Counter(c for _, _, c in contributions(state)) == {"received": 1, "open": 1}
    apply_tick(state, "breach", 0, RULES)
    assert Counter(c for _, _, c in contributions(state)) == {
        "received": 1, "open": 1, "open_overdue": 1, "breaches": 1}
    apply_lifecycle(state, _ev("answered", T0 + 40 * DAY, 1), RULES)
    assert Counter(c for _, _, c in contributions(state)) == {
        "received": 1, "answered": 1, "breaches": 1}


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["answered", "extended", "paused", "resumed", "closed", "reopened",
                         "redirected", "tick-warning", "tick-breach", "tick-escalation"]),
        st.floats(min_value=0, max_value=80),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.randoms())
def test_replaying_any_history_changes_nothing(events: list[Any], rnd: random.Random) -> None:
    """Apply a history, then replay all of it again: state and alert count stay the same,
    and the aggregates maintained by deltas equal the sum of contributions."""
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    history = []
    for i, (kind, day, cycle) in enumerate(events):
        if kind.startswith("tick-"):
            history.append(("tick", kind[5:], cycle))
        else:
            # Back and forth, and to the body that holds it (refused), by the drawn number.
            target = ("22-mintrans", "22-minzhkh")[cycle % 2]
            extra = {"to_authority_id": target} if kind == "redirected" else {}
            if kind == "extended":
                extra = {"extension_days": 10}
            history.append(("ev", _ev(kind, T0 + day * DAY, i, **extra), None))
    agg: Counter[Any] = Counter(contributions(state))
    alerts = 0
    kept = []
    for item in history:
        before = contributions(state)
        if item[0] == "tick":
            eff = apply_tick(state, item[1], item[2], RULES)
            kept.append(item)
        else:
            eff = apply_lifecycle(state, item[1], RULES, lambda a: "22-government")
            # A refused event is not remembered (the agent dead-letters it): its resend is
            # judged again, against the state as it is then, and may apply. The replay below
            # is of what was remembered.
            if item[1]["event_id"] in state["events"]:
                kept.append(item)
        alerts += len(eff.alerts)
        agg.update(contributions(state))
        agg.subtract(before)
    assert +agg == Counter(contributions(state))
    # No answer ever drops out of the figures (a reopen used to erase the earlier one), and
    # the one extension is never exceeded (a reopen used to give a fresh one).
    assert sum(1 for _a, _d, c in contributions(state) if c == "answered") == len(state["resp"])
    assert state["ext"] <= RULES.max_extensions
    if state["status"] in ("running", "paused"):  # a recompute with the same rules: a no-op
        assert replay_deadline(state, RULES) == (state["due"], state["warn"])
    snapshot = repr(sorted(state.items()))
    for item in kept:  # a replay after a crash: only ticks of old cycles or repeats
        if item[0] == "ev":
            assert apply_lifecycle(state, item[1], RULES).alerts == []
        else:
            eff = apply_tick(state, item[1], item[2], RULES)
            assert eff.alerts == [] or item[2] == state["cycle"]
    if all(item[0] == "ev" for item in history):
        assert repr(sorted(state.items())) == snapshot
    assert state["due"] >= state["start"]


@pytest.mark.parametrize("level", ["warning", "breach"])
def test_alert_fires_once_per_cycle(level: str) -> None:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    assert len(apply_tick(state, level, 0, RULES).alerts) == 1
    assert apply_tick(state, level, 0, RULES).alerts == []
