"""Regressions found by the end-to-end SLA test, pinned at the engine level."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.sla.sla_support import DAY
from workers.sla.engine import SlaRules, apply_lifecycle, apply_tick, new_state

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()


def _rules() -> SlaRules:
    return SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY,
                    escalation_after=2 * DAY)


def _routed() -> dict[str, Any]:
    return {"appeal_id": "ef" * 12, "regime": "fz59", "region": "22",
            "authority_id": "22-minzhkh", "parent_authority_id": "22-government",
            "category": "roads", "urgent": False}


def test_late_answer_after_the_breach_timer_is_applied_not_a_duplicate() -> None:
    # The agent drops a transition whose outcome is "duplicate" (it is a repeated event). A
    # late answer used to inherit "duplicate" from the already-fired breach alert, so the
    # answer was never written to the changelog nor the read model.
    rules = _rules()
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    assert apply_tick(state, "breach", 0, rules).alerts
    at = dt.datetime.fromtimestamp(T0 + 11 * DAY, dt.UTC).isoformat()
    effects = apply_lifecycle(state, {"event_id": "x:1", "appeal_id": state["id"],
                                      "event": "answered", "at": at}, rules)
    assert effects.outcome == "applied"
    assert not effects.alerts  # the breach is not reported twice
    assert state["status"] == "answered" and state["on_time"] is False
    assert effects.answered == (11 * DAY, False)
    again = apply_lifecycle(state, {"event_id": "x:1", "appeal_id": state["id"],
                                    "event": "answered", "at": at}, rules)
    assert again.outcome == "duplicate"  # a real repeat still is one
