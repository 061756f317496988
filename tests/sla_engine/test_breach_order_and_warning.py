"""A period's warning never follows its breach; the breach figures do not depend on whether a
breach tick or an event stamped in time was processed first; the deadline's last second is
judged at the deadline itself, the moment its breach timer fires (review 12, defects 1, 5)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev, routed
from workers.sla import timers
from workers.sla.engine import (
    SlaRules,
    State,
    Timer,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)


def _sweep(state: State, pending: list[Timer], now: float, rules: SlaRules) -> list[str]:
    fired: list[str] = []
    for t in sorted(pending, key=lambda t: t.due_ts):
        if t.due_ts <= now:
            fired += [f"{a.stage}.{a.level}" if a.stage else a.level
                      for a in apply_tick(state, t.kind, t.cycle, rules).alerts]
    return fired


def _figures(state: State) -> Counter[str]:
    return Counter(c for _a, _d, c in contributions(state))


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
def test_no_warning_after_the_breach_of_a_pause_past_the_deadline(rules: SlaRules) -> None:
    """Paused after the deadline before the breach tick (the pause reports the breach), then
    resumed: the resume must not arm the unsent warning at its past moment, the warning tick
    is stale, and the index rebuild does not add it either."""
    state, _ = new_state(routed(), 0, T0, TZ, rules)
    due = state["due"]
    sent = [a.level for a in apply_lifecycle(state, ev("paused", due + DAY, 1), rules).alerts]
    resumed = apply_lifecycle(state, ev("resumed", due + 2 * DAY, 2), rules)
    assert sent == ["breach"] and not resumed.alerts
    assert "warning" not in {t.kind for t in resumed.timers}
    rebuilt = timers.pending_timers(state, 3 * DAY)
    assert "warning" not in {t.kind for t in rebuilt}
    # (the fz59 redirect stage's own warning is no alert of the answer period)
    assert "warning" not in _sweep(state, [*resumed.timers, *rebuilt], due + 2 * DAY, rules)
    # A warning tick of the cycle (one already in the index) is stale.
    assert apply_tick(state, "warning", state["cycle"], rules).outcome == "stale"
    assert _sweep(state, rebuilt, due + 6 * DAY, rules) == ["escalation"]


def test_a_warning_tick_after_the_breach_of_its_cycle_is_stale() -> None:
    state, _ = new_state(routed(), 0, T0, TZ, SIMPLE)
    assert [a.level for a in apply_tick(state, "breach", 0, SIMPLE).alerts] == ["breach"]
    assert apply_tick(state, "warning", 0, SIMPLE).alerts == []
    assert [t.kind for t in timers.pending_timers(state, 3 * DAY)] == ["escalation"]


def _ordered(tick_first: bool, event: str, **extra: Any) -> tuple[State, Counter[str]]:
    state, _ = new_state(routed(), 0, T0, TZ, BOOK)
    at = state["due"] - 1800  # 23:29:59 local on the last day
    apply_tick(state, "warning", 0, BOOK)
    if tick_first:
        assert apply_tick(state, "breach", 0, BOOK).alerts
    apply_lifecycle(state, ev(event, at, 1, **extra), BOOK)
    if event not in ("answered", "closed"):
        if event == "paused":
            apply_lifecycle(state, ev("resumed", at + DAY, 2), BOOK)
        apply_lifecycle(state, ev("answered", at + DAY + 600, 3), BOOK)  # in time
    return state, _figures(state)


@pytest.mark.parametrize("event,extra", [
    ("answered", {}), ("extended", {"extension_days": 30}), ("paused", {}), ("closed", {}),
    ("redirected", {"to_authority_id": "B"})])
def test_breach_figures_do_not_depend_on_the_order_of_tick_and_event(
        event: str, extra: dict[str, Any]) -> None:
    _s, event_first = _ordered(False, event, **extra)
    state, tick_first = _ordered(True, event, **extra)
    assert tick_first == event_first
    assert tick_first["breaches"] == 0 and tick_first["closed_overdue"] == 0
    assert tick_first["redirected_overdue"] == 0
    # The alert the tick sent stays sent: the breach is not reported again.
    assert "breach:0" in state["alerts"]


def test_taking_a_breach_back_is_idempotent_and_keeps_real_breaches() -> None:
    state, _ = new_state(routed(), 0, T0, TZ, BOOK)
    due = state["due"]
    apply_tick(state, "breach", 0, BOOK)
    answered = ev("answered", due - 60, 1)
    apply_lifecycle(state, answered, BOOK)
    assert state["on_time"] and _figures(state)["breaches"] == 0
    assert apply_lifecycle(state, answered, BOOK).outcome == "duplicate"
    assert apply_tick(state, "breach", 0, BOOK).alerts == []  # never sent twice
    assert _figures(state)["breaches"] == 0 and _figures(state)["answered_on_time"] == 1
    # An answer after the deadline keeps the breach its tick recorded.
    late, _ = new_state(routed(), 0, T0, TZ, BOOK)
    apply_tick(late, "breach", 0, BOOK)
    apply_lifecycle(late, ev("answered", late["due"] + 60, 1), BOOK)
    assert _figures(late)["breaches"] == 1 and not late["on_time"]


def test_a_breach_taken_back_by_a_pause_counts_when_the_resumed_deadline_passes() -> None:
    state, _ = new_state(routed(), 0, T0, TZ, SIMPLE)
    due = state["due"]
    apply_tick(state, "warning", 0, SIMPLE)
    apply_tick(state, "breach", 0, SIMPLE)
    apply_lifecycle(state, ev("paused", due - 3600, 1), SIMPLE)
    assert _figures(state)["breaches"] == 0 and state["breached"] is None
    resumed = apply_lifecycle(state, ev("resumed", due + DAY, 2), SIMPLE)
    assert state["due"] == due + DAY + 3600
    assert [t.kind for t in resumed.timers if t.kind == "breach"] == ["breach"]
    assert _sweep(state, resumed.timers, state["due"], SIMPLE) == ["breach"]
    assert _figures(state)["breaches"] == 1


def test_an_answer_at_the_deadline_is_on_time_whichever_came_first() -> None:
    """The deadline (23:59:59 local) is the moment its breach timer fires: an answer stamped
    then is on time, processed before the tick or after it; a moment later is late."""
    state, _ = new_state(routed(), 0, T0, TZ, BOOK)
    due = state["due"]
    assert dt.datetime.fromtimestamp(due, dt.timezone(dt.timedelta(hours=7))).time() \
        == dt.time(23, 59, 59)
    eff = apply_lifecycle(state, ev("answered", due, 1), BOOK)
    assert state["on_time"] and eff.alerts == []
    other, _ = new_state(routed(), 0, T0, TZ, BOOK)
    apply_tick(other, "breach", 0, BOOK)
    apply_lifecycle(other, ev("answered", due, 1), BOOK)
    assert other["on_time"] and _figures(other)["breaches"] == 0
    late, _ = new_state(routed(), 0, T0, TZ, BOOK)
    apply_lifecycle(late, ev("answered", due + 0.5, 1), BOOK)
    assert not late["on_time"]
