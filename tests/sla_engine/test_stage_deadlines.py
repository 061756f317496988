"""Tracked stage deadlines (DESIGN.md §2): the fz59 redirect within 7 days, the incident's and
the hotline's final answer; on the packaged policy book, the way the SLA agent runs them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import tomllib
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.records import SlaTick
from schemas.validation import InvalidEvent, validate
from tests.sla_engine.engine_support import DAY, TZ, ev, routed
from workers.deadlines.compute import (
    answer_due,
    final_answer_due,
    redirect_due,
    stage_due,
    warning_at,
)
from workers.deadlines.policies import PolicyBook, PolicyError
from workers.sla import timers
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    Effects,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    copy_state,
    new_state,
    recompute,
)

# Monday 2 March 2026, 10:00 in Barnaul: no holiday within the next three weeks.
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo(TZ)).timestamp()


def _book(patch: str = "") -> PolicyBook:
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    return PolicyBook(tomllib.loads(text + patch), "test")


def _rules(patch: str = "") -> SlaRules:
    return DeadlineService(_book(patch)).rules()


def _stage(state: State, name: str) -> list[Any]:
    return next(e for e in state["stg"] if e[0] == name)


def _stage_alerts(effects: Effects) -> list[tuple[str, str, int, str]]:
    return [(a.stage, a.level, a.cycle, a.authority_id) for a in effects.alerts if a.stage]


def _start(regime: str, rules: SlaRules) -> tuple[State, Effects]:
    return new_state(routed(regime), 0, T0, TZ, rules)


def test_fz59_redirect_stage_starts_with_the_answer_clock_at_the_statutory_day() -> None:
    rules = _rules()
    state, effects = _start("fz59", rules)
    expected = redirect_due(dt.datetime.fromtimestamp(T0, ZoneInfo(TZ)), TZ,
                            _book().resolve("fz59", region="22")).timestamp()
    _name, start, due, warn, k, ended, timer = _stage(state, "redirect")[:7]
    assert (start, due, k, ended, timer) == (T0, expected, 0, None, False)
    assert T0 < warn < due
    kinds = {(t.kind, t.cycle, t.due_ts) for t in effects.timers}
    assert ("redirect.warning", 0, warn) in kinds
    # The answer clock is untouched by the stage, and the 7th day passing is no breach by
    # itself (59-FZ art. 8 p.3 binds a redirect): no breach timer for the stage.
    assert {t.kind for t in effects.timers} == {"warning", "breach", "redirect.warning"}


def test_accepting_in_time_ends_the_redirect_stage_without_an_alert() -> None:
    rules = _rules()
    state, _ = _start("fz59", rules)
    effects = apply_lifecycle(state, ev("accepted", T0 + 2 * DAY, 1), rules)
    assert effects.alerts == []
    assert "redirect.warning" in {t.kind for t in effects.cancel}
    assert _stage(state, "redirect")[7] == T0 + 2 * DAY
    assert apply_tick(state, "redirect.breach", 0, rules).outcome == "stale"
    assert timers.pending_timers(state, 3 * DAY) == [
        t for t in timers.pending_timers(state, 3 * DAY) if "." not in t.kind]


def test_redirect_stage_warns_once_and_its_deadline_alone_is_no_breach() -> None:
    rules = _rules()
    state, _ = _start("fz59", rules)
    assert [t.kind for t in timers.pending_timers(state, 3 * DAY)
            if t.kind.startswith("redir")] == ["redirect.warning"]
    warn = apply_tick(state, "redirect.warning", 0, rules)
    assert _stage_alerts(warn) == [("redirect", "warning", 0, "A")]
    assert warn.alerts[0].due_ts == _stage(state, "redirect")[3]
    assert warn.alerts[0].notify_authority_id == "A"
    assert apply_tick(state, "redirect.warning", 0, rules).outcome == "duplicate"
    # A breach tick (say, from an index written under a policy with a breach timer) is stale.
    assert apply_tick(state, "redirect.breach", 0, rules).outcome == "stale"
    # The answer period knows nothing of it: no answer breach, status still running.
    assert state["breached"] is None and state["status"] == "running"
    # The rebuild arms nothing more for the stage.
    assert not [t for t in timers.pending_timers(state, 3 * DAY) if t.kind.startswith("redir")]


def test_a_competent_body_answering_after_the_seven_days_breaches_no_stage() -> None:
    rules = _rules()
    state, _ = _start("fz59", rules)
    due = _stage(state, "redirect")[2]
    effects = apply_lifecycle(state, ev("answered", due + 5 * DAY, 1), rules)
    assert _stage_alerts(effects) == [] and effects.alerts == []
    # Settled, not ended: a later redirect would still be checked against the 7 days.
    assert _stage(state, "redirect")[5:] == [None, False, due + 5 * DAY]
    assert "redirect.warning" in {t.kind for t in effects.cancel}


def test_a_stage_with_a_breach_timer_breaches_at_its_deadline_once() -> None:
    rules = _rules('\n[[overrides]]\nregime = "fz59"\nstages.redirect.breach_timer = true\n')
    state, effects = _start("fz59", rules)
    assert "redirect.breach" in {t.kind for t in effects.timers}
    breach = apply_tick(state, "redirect.breach", 0, rules)
    assert _stage_alerts(breach) == [("redirect", "breach", 0, "A")]
    assert breach.alerts[0].due_ts == _stage(state, "redirect")[2]
    assert apply_tick(state, "redirect.breach", 0, rules).outcome == "duplicate"
    assert apply_tick(state, "redirect.warning", 0, rules).outcome == "stale"


def test_a_late_redirect_reports_the_handing_on_bodys_stage_breach_and_restarts_the_stage() -> None:
    rules = _rules()
    state, _ = _start("fz59", rules)
    first_due = _stage(state, "redirect")[2]
    at = first_due + DAY  # the breach tick has not run (a backlog)
    effects = apply_lifecycle(state, ev("redirected", at, 1, to_authority_id="B"), rules)
    assert _stage_alerts(effects) == [("redirect", "breach", 0, "A")]
    _name, start, due, _warn, k, ended, _timer = _stage(state, "redirect")[:7]
    assert (start, k, ended) == (at, 1, None)
    assert due > at
    assert ("redirect.warning", 1) in {(t.kind, t.cycle) for t in effects.timers}
    # The old run's tick is stale now; the new run warns the receiving body.
    assert apply_tick(state, "redirect.warning", 0, rules).outcome == "stale"
    assert _stage_alerts(apply_tick(state, "redirect.warning", 1, rules)) == [
        ("redirect", "warning", 1, "B")]


def test_accepting_does_not_excuse_a_late_redirect() -> None:
    """A body that took the appeal as its own and redirects it on day 9 redirected it late."""
    rules = _rules()
    state, _ = _start("fz59", rules)
    apply_lifecycle(state, ev("accepted", T0 + DAY, 1), rules)
    due = _stage(state, "redirect")[2]
    assert apply_tick(state, "redirect.warning", 0, rules).outcome == "stale"  # settled
    effects = apply_lifecycle(state, ev("redirected", due + DAY, 2, to_authority_id="B"),
                              rules)
    assert _stage_alerts(effects) == [("redirect", "breach", 0, "A")]


def test_a_redirect_in_time_ends_the_stage_quietly_and_the_receiving_body_gets_its_own() -> None:
    rules = _rules()
    state, _ = _start("fz59", rules)
    effects = apply_lifecycle(state, ev("redirected", T0 + 3 * DAY, 1, to_authority_id="B"),
                              rules)
    assert _stage_alerts(effects) == []
    assert _stage(state, "redirect")[1:5:3] == [T0 + 3 * DAY, 1]


def test_incident_final_answer_runs_on_after_the_first_response_until_closed() -> None:
    rules = _rules()
    state, _ = _start("incident", rules)
    expected = final_answer_due(dt.datetime.fromtimestamp(T0, ZoneInfo(TZ)), TZ,
                                _book().resolve("incident", region="22")).timestamp()
    assert _stage(state, "final_answer")[2] == expected
    first = apply_lifecycle(state, ev("answered", T0 + 3600, 1), rules)
    assert state["status"] == "answered" and first.alerts == []
    assert _stage(state, "final_answer")[5] is None  # a first response is no final answer
    # The index rebuild still arms the final answer's timers for an answered incident.
    pending = {(t.kind, t.due_ts) for t in timers.pending_timers(state, 3 * DAY)}
    assert ("final_answer.breach", expected) in pending
    assert not {k for k, _ in pending} & {"warning", "breach", "escalation"}
    breach = apply_tick(state, "final_answer.breach", 0, rules)
    assert _stage_alerts(breach) == [("final_answer", "breach", 0, "A")]
    closed = apply_lifecycle(state, ev("closed", expected + DAY, 2), rules)
    assert closed.alerts == []  # reported already, not again
    assert _stage(state, "final_answer")[5] == expected + DAY
    assert timers.pending_timers(state, 3 * DAY) == []


def test_closing_an_incident_late_before_the_tick_reports_the_final_answer_breach_once() -> None:
    rules = _rules()
    state, _ = _start("incident", rules)
    apply_lifecycle(state, ev("answered", T0 + 3600, 1), rules)
    due = _stage(state, "final_answer")[2]
    closed = apply_lifecycle(state, ev("closed", due + 60, 2), rules)
    assert _stage_alerts(closed) == [("final_answer", "breach", 0, "A")]
    assert apply_tick(state, "final_answer.breach", 0, rules).outcome == "stale"


def test_closing_in_time_ends_every_stage_quietly() -> None:
    rules = _rules()
    state, _ = _start("incident", rules)
    effects = apply_lifecycle(state, ev("closed", T0 + DAY, 1), rules)
    assert _stage_alerts(effects) == []
    assert {t.kind for t in effects.cancel} >= {"final_answer.warning", "final_answer.breach"}
    assert apply_tick(state, "final_answer.warning", 0, rules).outcome == "stale"


def test_a_reopen_restarts_the_final_answer() -> None:
    rules = _rules()
    state, _ = _start("incident", rules)
    apply_lifecycle(state, ev("answered", T0 + 3600, 1), rules)
    apply_lifecycle(state, ev("closed", T0 + DAY, 2), rules)
    reopened = apply_lifecycle(state, ev("reopened", T0 + 2 * DAY, 3), rules)
    _name, start, due, _warn, k, ended, _timer = _stage(state, "final_answer")[:7]
    assert (start, k, ended) == (T0 + 2 * DAY, 1, None)
    assert ("final_answer.breach", 1, due) in {(t.kind, t.cycle, t.due_ts)
                                               for t in reopened.timers}


def test_pos_stages_are_not_tracked_and_a_policy_can_switch_tracking_off() -> None:
    state, effects = _start("pos", _rules())
    assert not state.get("stg")
    assert all("." not in t.kind for t in effects.timers)
    off = _rules('\n[[overrides]]\nregime = "fz59"\nstages.redirect.ended_by = []\n')
    state, effects = _start("fz59", off)
    assert not state.get("stg")
    assert all("." not in t.kind for t in effects.timers)


def test_recompute_moves_an_open_stage_and_carries_an_alert_already_sent() -> None:
    rules = _rules()
    state, _ = _start("incident", rules)
    apply_lifecycle(state, ev("answered", T0 + 3600, 1), rules)
    old_due = _stage(state, "final_answer")[2]
    apply_tick(state, "final_answer.warning", 0, rules)
    # Policy change: the final answer within 10 working days instead of 7.
    longer = _rules('\n[[overrides]]\nregime = "incident"\nstages.final_answer.amount = 10\n')
    # Saturday 14 March: past the new warning moment (Friday 13th), before the new deadline
    # (Monday 16th), after the old one (Wednesday 11th), whose breach never fired here.
    now = T0 + 12 * DAY
    effects = recompute(state, longer, now)
    assert effects.outcome == "recomputed"
    _name, _start_ts, due, warn, k, ended, _timer = _stage(state, "final_answer")[:7]
    assert due > old_due and k == 1 and ended is None
    assert warn <= now and "final_answer.warning:1" in state["alerts"]  # carried
    assert {(t.kind, t.cycle) for t in effects.timers} == {("final_answer.breach", 1)}
    assert recompute(state, longer, now).outcome == "not_open"  # answered: nothing moved


def test_policy_file_refuses_bad_stage_tracking() -> None:
    with pytest.raises(PolicyError, match="ended_by"):
        _book('\n[[overrides]]\nregime = "fz59"\nstages.redirect.ended_by = ["paused"]\n'
              ).resolve("fz59", region="22")
    with pytest.raises(PolicyError, match="restarted_by"):
        _book('\n[[overrides]]\nregime = "fz59"\nstages.redirect.restarted_by = "redirected"\n'
              ).resolve("fz59", region="22")
    with pytest.raises(PolicyError, match="both in ended_by and cancelled_by"):
        _book('\n[[overrides]]\nregime = "fz59"\nstages.redirect.cancelled_by = ["redirected"]\n'
              ).resolve("fz59", region="22")
    with pytest.raises(PolicyError, match="breach_timer"):
        _book('\n[[overrides]]\nregime = "fz59"\nstages.redirect.breach_timer = "no"\n'
              ).resolve("fz59", region="22")
    with pytest.raises(PolicyError, match="lower-case"):
        _book('\n[regimes.pos.stages.Bad-Name]\ncounting = "working_days"\namount = 1\n'
              ).resolve("pos", region="22")


def test_tick_schema_accepts_stage_kinds_only_with_a_known_level() -> None:
    def tick(kind: str) -> dict[str, Any]:
        return SlaTick(appeal_id="a1", kind=kind, due_ts=T0, cycle=0).to_dict()

    validate("sla-tick", tick("redirect.breach"))
    validate("sla-tick", tick("final_answer.warning"))
    for bad in ("redirect.escalation", "redirect", "Final.breach", "x.breach|1"):
        with pytest.raises(InvalidEvent):
            validate("sla-tick", tick(bad))


def test_remembered_stage_deadlines_equal_the_calendar_rules_at_any_moment() -> None:
    """``DeadlineService.stage_deadline`` remembers day-counted stages per local start day: the
    result must be what ``stage_due`` gives for the exact moment, around midnights, New Year
    and the May holidays, in two zones."""
    service = DeadlineService(_book())
    rng = random.Random(7)
    starts = [dt.datetime(2026, 12, 31, 23, 59, 30, tzinfo=ZoneInfo(TZ)).timestamp(),
              dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=ZoneInfo(TZ)).timestamp()]
    starts += [T0 + rng.uniform(0, 400 * DAY) for _ in range(300)]
    for tz in (TZ, "Europe/Kaliningrad"):
        for regime, name in (("fz59", "redirect"), ("incident", "final_answer"),
                             ("hotline", "final_answer")):
            state = {"regime": regime, "region": "22", "auth": "A", "cat": "roads",
                     "sub": None, "tz": tz}
            policy = _book().resolve(regime, region="22", authority="A", category="roads")
            for start in starts:
                due, warn = service.stage_deadline(state, name, start, 0.75)
                local = dt.datetime.fromtimestamp(start, ZoneInfo(tz))
                assert due == stage_due(name, local, tz, policy).timestamp(), (regime, local)
                counting = policy.stage(name).counting
                if counting == "calendar_days":
                    assert warn == start + (due - start) * 0.75
                else:  # the working-day share (incident and hotline final answer)
                    unit = dataclasses.replace(policy, counting=counting)
                    due_local = dt.datetime.fromtimestamp(due, ZoneInfo(tz))
                    assert warn == warning_at(local, due_local, 0.75, unit).timestamp(), (
                        regime, local)


def test_remembered_answer_deadlines_equal_the_calendar_rules_at_any_moment() -> None:
    """``DeadlineService.due`` remembers day-counted answer deadlines per local start day (the
    same cache as the stages'): equal to ``answer_due`` for the exact moment."""
    service = DeadlineService(_book())
    rng = random.Random(11)
    starts = [dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=ZoneInfo(TZ)).timestamp(),
              dt.datetime(2027, 5, 1, 0, 0, 0, tzinfo=ZoneInfo(TZ)).timestamp()]
    starts += [T0 + rng.uniform(0, 400 * DAY) for _ in range(300)]
    for tz in (TZ, "Asia/Kamchatka"):
        for regime in ("fz59", "pos", "incident"):
            policy = _book().resolve(regime, region="22", authority="A", category="roads")
            for urgent in (False, True):
                for start in starts:
                    local = dt.datetime.fromtimestamp(start, ZoneInfo(tz))
                    want = answer_due(regime, local, tz, policy, urgent=urgent).timestamp()
                    got = service.due(regime, start, tz, urgent, "A", "roads", None, "22")
                    assert got == want, (regime, urgent, local)


# -- Found by the review of the stage deadlines (session 11); each failed before its fix.

@pytest.mark.parametrize("trigger", ["redirected", "reopened"])
@pytest.mark.parametrize("order", ["tick_first", "event_first"])
def test_a_restart_after_the_final_answer_deadline_keeps_its_breach(trigger: str,
                                                                    order: str) -> None:
    """Whether the tick or the event is processed first must not decide whether the breach
    of the run the event replaces is known; it is charged to the body whose run it was."""
    rules = _rules()
    state, _ = _start("incident", rules)
    if trigger == "reopened":
        apply_lifecycle(state, ev("answered", T0 + 3600, 1), rules)
    due = _stage(state, "final_answer")[2]
    extra = {"to_authority_id": "B"} if trigger == "redirected" else {}
    event = ev(trigger, due + 3600, 2, **extra)
    steps = [lambda: apply_tick(state, "final_answer.breach", 0, rules),
             lambda: apply_lifecycle(state, event, rules)]
    alerts = [a for step in (steps if order == "tick_first" else steps[::-1])
              for a in _stage_alerts(step())]
    assert alerts == [("final_answer", "breach", 0, "A")]
    assert _stage(state, "final_answer")[4] == 1  # the new run


def test_only_alerts_raised_by_their_timer_say_so() -> None:
    """``appeals_sla_timer_lag_seconds`` measures timers: a late redirect's breach, raised by
    the event days after the deadline, must not count as a timer firing days late."""
    rules = _rules()
    state, _ = _start("fz59", rules)
    tick = apply_tick(state, "redirect.warning", 0, rules)
    assert [a.from_timer for a in tick.alerts] == [True]
    late = apply_lifecycle(state, ev("redirected", _stage(state, "redirect")[2] + 9 * DAY, 1,
                                     to_authority_id="B"), rules)
    assert [(a.stage, a.level, a.from_timer) for a in late.alerts] == [
        ("redirect", "breach", False)]
    assert [a.from_timer for a in apply_tick(state, "warning", state["cycle"], rules).alerts] \
        == [True]


def test_a_stage_the_receiving_bodys_policy_does_not_track_ends_at_the_redirect() -> None:
    untracked_b = _rules('\n[[overrides]]\nauthority = "B"\nregime = "incident"\n'
                         'stages.final_answer.ended_by = []\n')
    state, _ = _start("incident", untracked_b)
    effects = apply_lifecycle(state, ev("redirected", T0 + 3600, 1, to_authority_id="B"),
                              untracked_b)
    assert "final_answer.breach" in {t.kind for t in effects.cancel}
    assert _stage(state, "final_answer")[5] == T0 + 3600
    assert not [t for t in timers.pending_timers(state, 3 * DAY) if "." in t.kind]
    assert apply_tick(state, "final_answer.breach", 0, untracked_b).outcome == "stale"


def test_recompute_ends_a_stage_the_policy_no_longer_tracks() -> None:
    state, _ = _start("incident", _rules())
    off = _rules('\n[[overrides]]\nregime = "incident"\nstages.final_answer.ended_by = []\n')
    copy = copy_state(state)
    assert copy is not None
    assert apply_tick(copy, "final_answer.warning", 0, off).outcome == "stale"
    effects = recompute(state, off, T0 + DAY)
    assert effects.outcome == "recomputed"
    assert {t.kind for t in effects.cancel} == {"final_answer.warning", "final_answer.breach"}
    assert _stage(state, "final_answer")[5] == T0 + DAY
    assert not [t for t in timers.pending_timers(state, 3 * DAY) if "." in t.kind]


@pytest.mark.parametrize("name", ["этап", "_final", "answer", "Final"])
def test_stage_names_follow_the_schemas_pattern_and_answer_is_reserved(name: str) -> None:
    with pytest.raises(PolicyError, match="stage name"):
        _book(f'\n[regimes.pos.stages."{name}"]\ncounting = "working_days"\namount = 1\n'
              f'ended_by = ["accepted"]\n').resolve("pos", region="22")


def test_a_working_hours_stage_warns_in_working_time_in_a_day_counted_regime() -> None:
    """A pos stage of 8 working hours from Friday 17:00 is due Tuesday 16:00; 75 % of its
    working time is used on Tuesday 14:00, not on the Monday a wall-clock share gives."""
    patch = ('\n[regimes.pos.stages.review]\ncounting = "working_hours"\namount = 8\n'
             'ended_by = ["accepted"]\n')
    friday = dt.datetime(2026, 3, 6, 17, 0, tzinfo=ZoneInfo(TZ)).timestamp()
    state, _ = new_state(routed("pos"), 0, friday, TZ, _rules(patch))
    _name, _start_ts, due, warn = _stage(state, "review")[:4]
    local = ZoneInfo(TZ)
    assert dt.datetime.fromtimestamp(due, local) == dt.datetime(2026, 3, 10, 16, 0,
                                                                tzinfo=local)
    assert dt.datetime.fromtimestamp(warn, local) == dt.datetime(2026, 3, 10, 14, 0,
                                                                 tzinfo=local)
