"""The escalation moment is fixed when the breach is recorded, and kept in the state.

It used to live only in the Redis index (``breached + escalation_after`` of the rules at breach
time) while the tick and the index rebuild counted it again from the rules in force at their
time: after a change of ``escalation_after_hours`` the escalation fired at the old moment with
an alert ``due_at`` two days later, a rebuild wanted the new moment (and its merge kept the
old), and ``appeals sla recompute`` never armed it again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.sla_engine.engine_support import DAY
from workers.sla import timers
from workers.sla.engine import (
    ESCALATION_AT,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    copy_state,
    new_state,
    recompute,
)

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()


def _rules(escalation_days: float) -> SlaRules:
    return SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY,
                    escalation_after=escalation_days * DAY)


OLD, NEW = _rules(1), _rules(3)  # escalation_after_hours 24 -> 72


def _event(state: State, n: int, kind: str, at: float, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{state['id']}:{n}", "appeal_id": state["id"], "event": kind,
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), **extra}


def _breached(rules: SlaRules = OLD) -> tuple[State, float]:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, T0, "Asia/Barnaul", rules)
    effects = apply_tick(state, "breach", state["cycle"], rules)
    assert [a.level for a in effects.alerts] == ["breach"]
    return state, state["due"]


def _armed(effects: Any) -> dict[str, float]:
    return {t.member: t.due_ts for t in effects.timers if t.kind == "escalation"}


def test_the_breach_stores_the_moment_it_arms() -> None:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, T0, "Asia/Barnaul", OLD)
    effects = apply_tick(state, "breach", 0, OLD)
    assert _armed(effects) == {"a1|escalation|0": state["due"] + DAY}
    assert state[ESCALATION_AT] == state["due"] + DAY


def test_the_tick_reports_the_moment_armed_after_the_rules_changed() -> None:
    state, due = _breached()
    effects = apply_tick(copy_state(state) or {}, "escalation", state["cycle"], NEW)
    assert [(a.level, a.due_ts) for a in effects.alerts] == [("escalation", due + DAY)]


def test_the_rebuild_wants_the_moment_armed_after_the_rules_changed() -> None:
    state, due = _breached()
    wanted = {t.member: t.due_ts for t in timers.pending_timers(state, NEW.escalation_after)}
    assert wanted == {"a1|escalation|0": due + DAY}


def test_a_state_stored_without_the_moment_counts_it_from_the_rules_in_force() -> None:
    state, due = _breached()
    del state[ESCALATION_AT]
    wanted = {t.member: t.due_ts for t in timers.pending_timers(state, NEW.escalation_after)}
    assert wanted == {"a1|escalation|0": due + 3 * DAY}
    effects = apply_tick(state, "escalation", state["cycle"], NEW)
    assert [a.due_ts for a in effects.alerts] == [due + 3 * DAY]


def test_recompute_arms_a_changed_delay_in_a_new_cycle_and_cancels_the_old() -> None:
    state, due = _breached()
    effects = recompute(state, NEW, now=due + 0.5 * DAY)
    assert effects.outcome == "recomputed"
    assert _armed(effects) == {"a1|escalation|1": due + 3 * DAY}
    assert "a1|escalation|0" in {t.member for t in effects.cancel}
    assert state["due"] == due and state["breached"] == due
    assert state[ESCALATION_AT] == due + 3 * DAY
    # The breach goes on: not reported again, its history follows it into the new cycle.
    assert "breach:1" in state["alerts"] and [e[2] for e in state["bdays"]] == [1]
    # A tick of the old moment already on its way is stale; the new one fires at its moment.
    assert apply_tick(copy_state(state) or {}, "escalation", 0, NEW).outcome == "stale"
    fired = apply_tick(state, "escalation", 1, NEW)
    assert [(a.level, a.due_ts) for a in fired.alerts] == [("escalation", due + 3 * DAY)]
    # Applied once: a repeated request changes nothing.
    assert recompute(state, NEW, now=due + 4 * DAY).outcome == "unchanged"


def test_recompute_with_the_same_delay_changes_nothing() -> None:
    state, due = _breached()
    before = dict(state)
    effects = recompute(state, OLD, now=due + 0.5 * DAY)
    assert effects.outcome == "unchanged" and not effects.timers and not effects.cancel
    assert state == before


def test_recompute_leaves_a_sent_escalation_alone() -> None:
    state, due = _breached()
    apply_tick(state, "escalation", 0, OLD)
    effects = recompute(state, NEW, now=due + 2 * DAY)
    assert effects.outcome == "unchanged" and not effects.timers


def test_recompute_of_a_moved_deadline_counts_the_escalation_by_the_new_policy() -> None:
    state, due = _breached()
    shorter = SlaRules(due=lambda regime, start, *_: start + 9 * DAY,
                       extend=lambda regime, d, days, *_: d + days * DAY,
                       escalation_after=3 * DAY)
    effects = recompute(state, shorter, now=due + 0.5 * DAY)
    assert _armed(effects) == {"a1|escalation|1": due - DAY + 3 * DAY}
    assert state[ESCALATION_AT] == due + 2 * DAY


def test_a_resume_keeps_the_delay_fixed_at_the_breach() -> None:
    state, due = _breached()
    apply_lifecycle(state, _event(state, 1, "paused", due + 0.2 * DAY), NEW, None)
    effects = apply_lifecycle(state, _event(state, 2, "resumed", due + 0.4 * DAY), NEW, None)
    assert _armed(effects) == {"a1|escalation|1": due + DAY}
    assert state[ESCALATION_AT] == due + DAY


def test_recompute_while_paused_moves_the_moment_the_resume_arms() -> None:
    state, due = _breached()
    apply_lifecycle(state, _event(state, 1, "paused", due + 0.2 * DAY), NEW, None)
    assert recompute(state, NEW, now=due + 0.3 * DAY).outcome == "recomputed"
    effects = apply_lifecycle(state, _event(state, 2, "resumed", due + 0.4 * DAY), NEW, None)
    assert _armed(effects) == {"a1|escalation|1": due + 3 * DAY}


def test_the_moment_goes_with_the_breach() -> None:
    state, due = _breached()
    apply_lifecycle(state, _event(state, 1, "answered", due + 0.5 * DAY), OLD, None)
    assert ESCALATION_AT not in state
    state, due = _breached()
    apply_lifecycle(state, _event(state, 1, "closed", due + 0.5 * DAY), OLD, None)
    assert ESCALATION_AT not in state
    state, due = _breached()
    apply_lifecycle(state, _event(state, 1, "extended", due - 0.5 * DAY, extension_days=10),
                    OLD, None)
    assert state["breached"] is None and ESCALATION_AT not in state
