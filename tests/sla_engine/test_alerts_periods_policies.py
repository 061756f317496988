"""Alerts stay once-only across pauses and late events; periods own their extension; each
appeal's clock runs by its own policy's numbers; a batch's timer changes net out in order."""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources
from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY, ev, routed
from workers.deadlines.policies import PolicyBook
from workers.sla import timers
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    EXTENSION_REFUSED,
    Effects,
    SlaRules,
    State,
    Timer,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)

T0 = 1_790_000_000.0


def _due(regime: str, start: float, *_: Any) -> float:
    return start + 30 * DAY


def _extend(regime: str, due: float, days: int, *_: Any) -> float:
    return due + days * DAY


RULES = SlaRules(due=_due, extend=_extend, warning_share=0.75, escalation_after=3 * DAY)


def _sweep(state: State, pending: list[Timer], now: float, rules: SlaRules = RULES) -> list[str]:
    """What the sweeper does: fire every pending timer whose moment has passed."""
    fired: list[str] = []
    for t in sorted(pending, key=lambda t: t.due_ts):
        if t.due_ts <= now:
            fired += [a.level for a in apply_tick(state, t.kind, t.cycle, rules).alerts]
    return fired


def _breaches(state: State) -> int:
    return sum(1 for *_x, counter in contributions(state) if counter == "breaches")


def test_resuming_after_a_pause_past_the_deadline_repeats_no_alert() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    assert [a.level for a in apply_tick(state, "warning", 0, RULES).alerts] == ["warning"]
    assert [a.level for a in apply_tick(state, "breach", 0, RULES).alerts] == ["breach"]
    apply_lifecycle(state, ev("paused", T0 + 31 * DAY, 1), RULES)
    resumed = apply_lifecycle(state, ev("resumed", T0 + 32 * DAY, 2), RULES)
    assert state["due"] == T0 + 30 * DAY  # a pause after the deadline cannot cure the breach
    assert _sweep(state, resumed.timers, now=T0 + 32 * DAY) == []
    # The escalation is still due once, 3 days after the breach.
    assert [(t.kind, t.due_ts) for t in resumed.timers] == [("escalation", T0 + 33 * DAY)]
    assert _sweep(state, resumed.timers, now=T0 + 33 * DAY) == ["escalation"]
    assert _breaches(state) == 1


def test_a_late_answer_while_paused_repeats_no_breach() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_tick(state, "breach", 0, RULES)
    apply_lifecycle(state, ev("paused", T0 + 31 * DAY, 1), RULES)
    answered = apply_lifecycle(state, ev("answered", T0 + 32 * DAY, 2), RULES)
    assert answered.alerts == []
    assert state["status"] == "answered" and state["on_time"] is False
    assert _breaches(state) == 1


def test_a_pause_before_the_deadline_still_moves_it_and_warns_once() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    assert [a.level for a in apply_tick(state, "warning", 0, RULES).alerts] == ["warning"]
    apply_lifecycle(state, ev("paused", T0 + 25 * DAY, 1), RULES)
    resumed = apply_lifecycle(state, ev("resumed", T0 + 27 * DAY, 2), RULES)
    assert state["due"] == T0 + 32 * DAY
    # The warning moment moved by the pause too (to day 24.5) and has passed: not sent again.
    assert _sweep(state, resumed.timers, now=T0 + 27 * DAY) == []
    assert _sweep(state, resumed.timers, now=T0 + 32 * DAY) == ["breach"]


def test_closing_unanswered_after_the_deadline_reports_the_breach_once() -> None:
    # Backlog: the "closed" arrives before the breach timer fired.
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    closed = apply_lifecycle(state, ev("closed", T0 + 35 * DAY, 1), RULES)
    assert [a.level for a in closed.alerts] == ["breach"]
    assert apply_tick(state, "breach", state["cycle"], RULES).alerts == []
    assert _breaches(state) == 1
    # The usual order: the timer fired first; closing then adds nothing.
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_tick(state, "breach", 0, RULES)
    assert apply_lifecycle(state, ev("closed", T0 + 35 * DAY, 1), RULES).alerts == []
    assert _breaches(state) == 1
    # Closed in time: no breach.
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    assert apply_lifecycle(state, ev("closed", T0 + 5 * DAY, 1), RULES).alerts == []
    assert _breaches(state) == 0


def test_the_receiving_body_of_a_redirect_has_its_own_extension() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, ev("extended", T0 + 25 * DAY, 1, extension_days=30), RULES)
    assert apply_lifecycle(state, ev("extended", T0 + 26 * DAY, 2, extension_days=5),
                           RULES).outcome == EXTENSION_REFUSED  # one per body (59-FZ art. 12 p.2)
    apply_lifecycle(state, ev("redirected", T0 + 40 * DAY, 3, to_authority_id="B"), RULES)
    assert state["due"] == T0 + 70 * DAY
    assert apply_lifecycle(state, ev("extended", T0 + 60 * DAY, 4, extension_days=30),
                           RULES).outcome == "applied"
    assert state["due"] == T0 + 100 * DAY


def test_an_extension_declared_after_the_deadline_is_refused() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    late = apply_lifecycle(state, ev("extended", T0 + 31 * DAY, 1, extension_days=30), RULES)
    assert late.outcome == EXTENSION_REFUSED and state["due"] == T0 + 30 * DAY
    assert apply_lifecycle(state, ev("extended", T0 + 30 * DAY, 2, extension_days=30),
                           RULES).outcome == "applied"  # on the last moment: still running


def test_an_extension_during_a_pause_that_began_in_time_is_accepted() -> None:
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(state, ev("paused", T0 + 20 * DAY, 1), RULES)  # 10 days left, held
    assert apply_lifecycle(state, ev("extended", T0 + 35 * DAY, 2, extension_days=30),
                           RULES).outcome == "applied"
    apply_lifecycle(state, ev("resumed", T0 + 40 * DAY, 3), RULES)
    assert state["due"] == T0 + (30 + 30 + 20) * DAY  # the extension and the 20-day pause
    # A pause that began after the deadline holds nothing: an extension then is too late.
    late, _ = new_state(routed(), 0, T0, "Asia/Barnaul", RULES)
    apply_lifecycle(late, ev("paused", T0 + 31 * DAY, 1), RULES)
    assert apply_lifecycle(late, ev("extended", T0 + 32 * DAY, 2, extension_days=30),
                           RULES).outcome == EXTENSION_REFUSED


def _book(overrides: list[dict[str, Any]]) -> PolicyBook:
    data = tomllib.loads(resources.files("workers.deadlines").joinpath("policies.toml")
                         .read_text("utf-8"))
    data["overrides"] = overrides
    return PolicyBook(data)


REG = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC).timestamp()  # a Tuesday, 17:00 in Barnaul


def test_each_appeal_escalates_after_its_own_policy_s_hours() -> None:
    rules = DeadlineService(_book([])).rules()
    for regime, hours in (("incident", 4), ("hotline", 8), ("fz59", 72)):
        state, _ = new_state(routed(regime), 0, REG, "Asia/Barnaul", rules)
        breach = apply_tick(state, "breach", 0, rules)
        [escalation] = [t for t in breach.timers if t.kind == "escalation"]
        assert escalation.due_ts - state["due"] == hours * 3600, regime
        rebuilt = timers.pending_timers(state, lambda st: rules.of(st).escalation_after)
        assert [t.due_ts for t in rebuilt if t.kind == "escalation"] == [escalation.due_ts]


def test_an_authority_s_warning_share_and_a_drill_override() -> None:
    book = _book([{"authority": "A", "warning_share": 0.5}])
    for rules, share in ((DeadlineService(book).rules(), 0.5),
                         (DeadlineService(book).rules(warning_share=0.9), 0.9)):
        state, _ = new_state(routed(), 0, REG, "Asia/Barnaul", rules)
        assert (state["warn"] - state["start"]) / (state["due"] - state["start"]) == (
            pytest.approx(share))
    other, _ = new_state(routed(authority="B"), 0, REG, "Asia/Barnaul",
                         DeadlineService(book).rules())
    assert (other["warn"] - other["start"]) / (other["due"] - other["start"]) == (
        pytest.approx(0.75))


def test_a_policy_time_zone_wins_over_the_region_s() -> None:
    from workers.deadlines.compute import answer_due

    service = DeadlineService(_book([{"region": "22", "timezone": "Europe/Moscow"}]))
    policy = service.book.resolve("fz59", region="22", authority="A", category="roads")
    reg = dt.datetime(2026, 3, 10, 20, 0, tzinfo=dt.UTC)  # 23:00 in Moscow, 03:00 next day +07
    due = service.due("fz59", reg.timestamp(), "Asia/Barnaul", False, "A", "roads", None, "22")
    assert due == answer_due("fz59", reg, "Europe/Moscow", policy).timestamp()
    assert dt.datetime.fromtimestamp(due, dt.UTC).date() == dt.date(2026, 4, 9)


def test_extensions_follow_the_policy() -> None:
    rules = DeadlineService(_book([])).rules()
    state, _ = new_state(routed("incident"), 0, REG, "Asia/Barnaul", rules)
    assert apply_lifecycle(state, ev("extended", REG + 3600, 1, extension_days=1),
                           rules).outcome == EXTENSION_REFUSED  # the incident policy allows none


def _t(kind: str, cycle: int = 0) -> Timer:
    return Timer("a1", kind, 1.0, cycle)


def test_a_batch_s_timer_changes_net_out_in_order() -> None:
    plan = timers.Plan()
    plan.record(Effects(timers=[_t("warning"), _t("breach")]))   # armed by one event...
    plan.record(Effects(cancel=[_t("warning")]))                 # ...cancelled by the next
    plan.record(Effects(cancel=[_t("escalation")]))
    plan.record(Effects(timers=[_t("escalation")]))              # cancelled, then armed again
    # One transition that arms and cancels the same timer (a resume, then an answer).
    plan.record(Effects(timers=[_t("breach", 1)], cancel=[_t("breach", 1)]))
    add, remove = plan.net()
    assert sorted(t.member for t in add) == ["a1|breach|0", "a1|escalation|0"]
    assert sorted(t.member for t in remove) == ["a1|breach|1", "a1|warning|0"]
