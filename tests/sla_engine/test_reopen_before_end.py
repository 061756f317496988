"""A reopen stamped before the answer that ended the period reopens it at that answer.

It reopened the appeal at its stamp, so the new period began before the answer it would
reopen (and ce68205's first mend held it 7 days for an end that had already come). Found by
the replay property test (``test_replaying_any_history_changes_nothing``) on a random draw: a
reopen kept early, given up when a redirect began a later period, was replayed after the
answer and opened a period before the redirect, with a false breach.
"""

from __future__ import annotations

from typing import Any

from tests.sla_engine.test_sla_engine import DAY, RULES, T0, _ev, _routed
from workers.sla.engine import BEFORE_PERIOD, apply_lifecycle, new_state


def _parent(_authority: str) -> str:
    return "22-government"


def _state() -> dict[str, Any]:
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", RULES)
    return state


def test_a_reopen_stamped_before_the_answer_reopens_at_the_answer() -> None:
    state = _state()
    assert apply_lifecycle(state, _ev("answered", T0 + 5 * DAY, 1), RULES).outcome == "applied"
    eff = apply_lifecycle(state, _ev("reopened", T0 + 5 * DAY - 1, 2), RULES)  # a second early
    assert eff.outcome == "applied" and state["status"] == "running"
    assert state["start"] == T0 + 5 * DAY  # not before the answer it reopens
    assert "erop" not in state  # not kept for an end that already came (review of ce68205)


def test_a_reopen_stamped_before_a_close_without_answer_reopens_at_the_close() -> None:
    state = _state()
    assert apply_lifecycle(state, _ev("closed", T0 + 5 * DAY, 1), RULES).outcome == "applied"
    eff = apply_lifecycle(state, _ev("reopened", T0 + 3 * DAY, 2), RULES)
    assert eff.outcome == "applied" and state["start"] == T0 + 5 * DAY
    assert "erop" not in state


def test_a_given_up_reopen_replayed_after_a_redirect_and_answer_changes_nothing() -> None:
    state = _state()
    history = [_ev("reopened", T0, 0),
               _ev("redirected", T0 + DAY, 1, to_authority_id="22-mintrans"),
               _ev("answered", T0 + DAY, 2)]
    outcomes = [apply_lifecycle(state, ev, RULES, _parent).outcome for ev in history]
    assert outcomes == ["early", "applied", "applied"]
    snapshot = repr(sorted(state.items()))
    eff = apply_lifecycle(state, history[0], RULES, _parent)  # a replay after a crash
    assert eff.outcome == BEFORE_PERIOD and eff.alerts == []
    assert repr(sorted(state.items())) == snapshot


def test_a_late_answer_then_a_replayed_reopen_raises_no_breach() -> None:
    state = _state()
    history = [_ev("reopened", T0, 0), _ev("answered", T0 + 31 * DAY, 1),
               _ev("redirected", T0 + DAY, 2, to_authority_id="22-mintrans"),
               _ev("answered", T0 + DAY, 3)]
    kept = []
    for ev in history:
        apply_lifecycle(state, ev, RULES, _parent)
        if ev["event_id"] in state["events"]:
            kept.append(ev)
    for ev in kept:
        assert apply_lifecycle(state, ev, RULES).alerts == []
