"""A pause stamped before the answer period it would pause is dead-lettered
(``before_period``) and leaves the deadline alone; so is an extension stamped before the
redirect that began the period it would extend.

A review of session 16 found a ``paused`` dated years before the appeal's registration (a
mistyped year) applied: its resume moved a ``pos`` deadline ten years out, and a pause over
ten years early made every later resume, answer and close fail, the appeal stuck paused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from tests.sla.sla_support import EXTERNAL, KEY, T0, dead_count, lifecycle, message, run_batches
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import BEFORE_PERIOD, State, apply_lifecycle, new_state


def test_a_pause_dated_before_registration_is_dead_lettered_and_the_appeal_still_ends(
        rt: Any, routed_state: State) -> None:
    due = routed_state["due"]
    before = dead_count(BEFORE_PERIOD)
    events = [lifecycle("paused", 0, T0.replace(year=2016)),
              lifecycle("answered", 1, T0 + dt.timedelta(days=2))]
    outbox, _ = run_batches(rt, [message(EXTERNAL, e, i) for i, e in enumerate(events)])
    assert [(reason, orjson.loads(v)["event_id"]) for reason, v, _ in outbox.dead] == [
        (BEFORE_PERIOD, events[0]["event_id"])]
    assert dead_count(BEFORE_PERIOD) == before + 1
    state = rt.table[KEY]
    assert state["due"] == due and state["status"] == "answered" and state["on_time"]
    assert events[0]["event_id"] not in state["events"]


def _state(regime: str) -> dict[str, object]:
    routed = {"schema_version": 1, "appeal_id": "b" * 24, "regime": regime, "region": "22",
              "registered_at": "2026-11-25T10:00:00+07:00", "category": "roads",
              "urgent": False, "confidence": 0.9, "authority_id": "22-mintrans",
              "routing_level": "region", "rule_version": "v1",
              "routed_at": "2026-11-25T10:00:00+07:00"}
    at = dt.datetime.fromisoformat(str(routed["registered_at"])).timestamp()
    state, _ = new_state(routed, 0, at, "Asia/Barnaul", DeadlineService().rules())
    return state


def _ev(n: int, kind: str, at: str) -> dict[str, object]:
    return {"schema_version": 1, "event_id": f"e{n}", "appeal_id": "b" * 24, "event": kind,
            "at": at}


def test_the_resume_of_an_early_pause_moves_no_deadline_in_any_regime() -> None:
    rules = DeadlineService().rules()
    for regime in ("pos", "fz59", "incident"):
        state = _state(regime)
        due = state["due"]
        out = apply_lifecycle(state, _ev(1, "paused", "2016-11-20T10:00:00+07:00"), rules)
        assert out.outcome == BEFORE_PERIOD, regime
        # The engine's caller throws the state away on a refusal; the resume then finds a
        # running appeal and is kept for a pause that may still come.
        state = _state(regime)
        out = apply_lifecycle(state, _ev(2, "resumed", "2026-11-26T10:00:00+07:00"), rules)
        assert out.outcome == "early" and state["due"] == due, regime


def test_a_pause_before_a_reopen_is_refused_and_one_after_it_applies() -> None:
    rules = DeadlineService().rules()
    state = _state("pos")
    assert apply_lifecycle(state, _ev(1, "answered", "2026-11-26T10:00:00+07:00"),
                           rules).outcome == "applied"
    assert apply_lifecycle(state, _ev(2, "reopened", "2026-11-27T10:00:00+07:00"),
                           rules).outcome == "applied"
    early = apply_lifecycle(dict(state, events=list(state["events"])),
                            _ev(3, "paused", "2026-11-26T12:00:00+07:00"), rules)
    assert early.outcome == BEFORE_PERIOD
    assert apply_lifecycle(state, _ev(4, "paused", "2026-11-27T12:00:00+07:00"),
                           rules).outcome == "applied"
    assert state["status"] == "paused"


def test_an_extension_stamped_before_the_redirect_is_dead_lettered(
        rt: Any, routed_state: State) -> None:
    """The handing-on body's extension, processed after the redirect (re-keyed events come in
    the order they are re-published), gave the receiving body's fresh period a month more and
    used up its one extension."""
    redirect = lifecycle("redirected", 0, T0 + dt.timedelta(days=6),
                         to_authority_id="22-minzhkh")
    run_batches(rt, [message(EXTERNAL, redirect)])
    due = rt.table[KEY]["due"]
    before = dead_count(BEFORE_PERIOD)
    extension = lifecycle("extended", 1, T0 + dt.timedelta(days=5), extension_days=30)
    outbox, _ = run_batches(rt, [message(EXTERNAL, extension, 1)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)["event_id"]) == (BEFORE_PERIOD, extension["event_id"])
    assert detail is not None and "would extend" in detail
    assert dead_count(BEFORE_PERIOD) == before + 1
    state = rt.table[KEY]
    assert state["due"] == due and state["ext"] == 0 and state["auth"] == "22-minzhkh"
    assert extension["event_id"] not in state["events"]
