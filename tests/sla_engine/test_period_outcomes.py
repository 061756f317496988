"""Every answer period's outcome stays in the figures: redirects and reopens can add to a
body's record, never wipe it (DESIGN.md §4: not answering must never improve the figure).

Each test here failed on the engine before the session-9 DESIGN review fixes:
- a redirect to the body that already held the appeal restarted its clock and cleared its
  breach (A);
- a body that let its deadline pass and then redirected dropped out of its own on-time share,
  while answering late would have counted 0/1 (B);
- a reopen erased the late answer or the overdue close of the period before it (C);
- every reopen gave the body a fresh extension (D).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY, ev, thirty_day_rules
from workers.aggregates.partials import PartitionAggregates
from workers.aggregates.readmodel import AuthorityFigures, figures_from_maps
from workers.sla.engine import (
    EXTENSION_REFUSED,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    keyed_contributions,
    new_state,
)

T0 = dt.datetime(2026, 1, 12, 3, tzinfo=dt.UTC).timestamp()  # 10:00 in Barnaul
RULES = thirty_day_rules()
_IDS = itertools.count(1)


def _new(authority: str = "22-A") -> State:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": authority,
              "municipality": "barnaul", "category": "roads"}
    return new_state(routed, 0, T0, "Asia/Barnaul", RULES)[0]


def _apply(state: State, history: list[tuple[str, float, dict[str, Any]]]) -> list[Any]:
    effects = []
    for kind, at, extra in history:
        if kind == "tick":
            effects.append(apply_tick(state, extra["level"], state["cycle"], RULES))
        else:
            effects.append(apply_lifecycle(state, ev(kind, at, next(_IDS), **extra), RULES))
    return effects


def _figures(*states: State) -> dict[str, AuthorityFigures]:
    agg = PartitionAggregates()
    for state in states:
        agg.apply_delta([], keyed_contributions(state))
    counters, _ = agg.to_redis()
    encoded = {k.encode(): str(v).encode() for k, v in counters.items()}
    return figures_from_maps([encoded], [{}], dt.date(2026, 4, 30), "all", kind="any")


def _of(state: State, who: str) -> Counter[str]:
    return Counter(counter for auth, _day, counter in contributions(state) if auth == who)


# ------------------------------------------------------------------ A: redirect to itself


def test_a_redirect_to_the_body_that_holds_the_appeal_is_refused() -> None:
    state = _new()
    apply_tick(state, "breach", 0, RULES)
    before = (state["due"], state["cycle"], state["breached"], state["recv"],
              contributions(state))
    effects = apply_lifecycle(state, ev("redirected", T0 + 40 * DAY, 1,
                                        to_authority_id="22-A"), RULES)
    assert effects.outcome == "rejected"
    assert effects.timers == [] and effects.cancel == [] and effects.alerts == []
    assert (state["due"], state["cycle"], state["breached"], state["recv"],
            contributions(state)) == before
    assert state.get("prev") == []  # not recorded as a body that handed it on
    # The open-overdue item stays, and the late answer is late.
    apply_lifecycle(state, ev("answered", T0 + 45 * DAY, 2), RULES)
    assert state["on_time"] is False
    assert _figures(state)["22-A"].on_time_share == 0.0


# ------------------------------------------------------------------ B: redirect past due


def test_a_body_that_redirects_past_its_deadline_keeps_an_overdue_item() -> None:
    redirected = _new()
    _apply(redirected, [("tick", 0, {"level": "breach"}),
                        ("redirected", T0 + 40 * DAY, {"to_authority_id": "22-B"})])
    answered_late = _new()
    _apply(answered_late, [("tick", 0, {"level": "breach"}),
                           ("answered", T0 + 40 * DAY, {})])
    mine = _of(redirected, "22-A")
    assert mine == {"received": 1, "breaches": 1, "redirected_overdue": 1}
    fig = _figures(redirected)["22-A"]
    assert fig.redirected_overdue == 1 and fig.unanswered_overdue == 1
    # Passing it on pays no better than answering late: 0 of 1 either way.
    assert fig.on_time_share == _figures(answered_late)["22-A"].on_time_share == 0.0
    # On the redirect's local day; the receiving body starts clean.
    day = [d for a, d, c in contributions(redirected) if c == "redirected_overdue"]
    assert day == ["2026-02-21"]
    assert _of(redirected, "22-B") == {"received": 1, "open": 1}
    # The place and the category see the item that was left overdue, as they see its breach.
    keyed = _figures(redirected)
    assert keyed["muni:barnaul"].redirected_overdue == 1
    assert keyed["cat:roads"].redirected_overdue == 1


def test_a_redirect_in_time_adds_no_overdue_item() -> None:
    state = _new()
    _apply(state, [("redirected", T0 + 5 * DAY, {"to_authority_id": "22-B"})])
    assert _of(state, "22-A") == {"received": 1}


def test_a_redirect_past_the_deadline_reports_the_missed_breach_once() -> None:
    """The breach timer had not fired yet (a backlog, or the redirect overtook the tick):
    the redirect reports the breach of the body handing the appeal on, and the figures are
    the same whichever came first."""
    tick_first = _new()
    _apply(tick_first, [("tick", 0, {"level": "breach"}),
                        ("redirected", T0 + 40 * DAY, {"to_authority_id": "22-B"})])
    redirect_first = _new()
    effects = apply_lifecycle(redirect_first, ev("redirected", T0 + 40 * DAY, 1,
                                                 to_authority_id="22-B"), RULES)
    assert effects.outcome == "applied"
    assert [(a.level, a.cycle, a.due_ts, a.authority_id, a.notify_authority_id)
            for a in effects.alerts] == [("breach", 0, T0 + 30 * DAY, "22-A", "22-A")]
    # The breach of the old cycle must not arm an escalation: the new body's clock runs.
    armed = {t.member for t in effects.timers} - {t.member for t in effects.cancel}
    assert armed == {"a1|warning|1", "a1|breach|1"}
    # The tick that arrives afterwards is stale.
    assert apply_tick(redirect_first, "breach", 0, RULES).alerts == []
    assert Counter(contributions(redirect_first)) == Counter(contributions(tick_first))


def test_a_redirect_during_a_pause_that_holds_the_clock_is_not_overdue() -> None:
    state = _new()
    _apply(state, [("paused", T0 + 20 * DAY, {}),
                   ("redirected", T0 + 40 * DAY, {"to_authority_id": "22-B"})])
    assert state["bdays"] == [] and _of(state, "22-A") == {"received": 1}


# ------------------------------------------------------------------ C: reopen


def test_a_late_answer_stays_counted_after_a_reopen() -> None:
    state = _new()
    _apply(state, [("tick", 0, {"level": "breach"}), ("answered", T0 + 36 * DAY, {})])
    assert _figures(state)["22-A"].on_time_share == 0.0
    before_reopen = Counter(contributions(state))
    _apply(state, [("reopened", T0 + 37 * DAY, {})])
    # The reopen moves nothing but the new open item.
    assert Counter(contributions(state)) - before_reopen == {("22-A", "", "open"): 1}
    assert before_reopen - Counter(contributions(state)) == Counter()
    _apply(state, [("answered", T0 + 38 * DAY, {})])
    fig = _figures(state)["22-A"]
    assert (fig.received, fig.answered, fig.answered_on_time, fig.breaches) == (1, 2, 1, 1)
    assert fig.on_time_share == 0.5  # was 1/1: the quick second answer erased the late one


def test_an_overdue_close_stays_counted_after_a_reopen() -> None:
    state = _new()
    _apply(state, [("tick", 0, {"level": "breach"}), ("closed", T0 + 46 * DAY, {}),
                   ("reopened", T0 + 47 * DAY, {}), ("answered", T0 + 47.1 * DAY, {})])
    fig = _figures(state)["22-A"]
    assert (fig.closed_overdue, fig.answered, fig.answered_on_time) == (1, 1, 1)
    assert fig.on_time_share == 0.5  # was 1/1
    assert [d for _a, d, c in contributions(state) if c == "closed_overdue"] == ["2026-02-27"]


def test_each_reopened_period_counts_on_its_own_day() -> None:
    state = _new()
    _apply(state, [("answered", T0 + 1 * DAY, {}), ("reopened", T0 + 2 * DAY, {}),
                   ("answered", T0 + 3 * DAY, {}), ("reopened", T0 + 4 * DAY, {}),
                   ("tick", 0, {"level": "breach"}), ("closed", T0 + 40 * DAY, {})])
    rows = sorted((d, c) for _a, d, c in contributions(state)
                  if c in ("answered", "answered_on_time", "closed_overdue"))
    assert rows == [("2026-01-13", "answered"), ("2026-01-13", "answered_on_time"),
                    ("2026-01-15", "answered"), ("2026-01-15", "answered_on_time"),
                    ("2026-02-21", "closed_overdue")]


def test_states_stored_before_outcomes_were_kept_count_as_before() -> None:
    """The figures are rebuilt from stored states after a restart: a state written by the
    previous version (no ``outcomes``) must still load and count what it counted then."""
    answered = _new()
    _apply(answered, [("tick", 0, {"level": "breach"}), ("answered", T0 + 36 * DAY, {})])
    closed = _new()
    _apply(closed, [("tick", 0, {"level": "breach"}), ("closed", T0 + 36 * DAY, {})])
    reopened = _new()
    _apply(reopened, [("answered", T0 + DAY, {}), ("reopened", T0 + 2 * DAY, {})])
    expected = {
        "answered": Counter({"received": 1, "answered": 1, "breaches": 1}),
        "closed": Counter({"received": 1, "closed_overdue": 1, "breaches": 1}),
        "reopened": Counter({"received": 1, "open": 1}),  # its first answer was lost then
    }
    for name, state in (("answered", answered), ("closed", closed), ("reopened", reopened)):
        old = {k: v for k, v in state.items() if k != "outcomes"}
        assert Counter(c for _a, _d, c in contributions(old)) == expected[name], name
    # ...and they go on from there: the old reopened state answered again counts once more.
    old = {k: v for k, v in reopened.items() if k != "outcomes"}
    _apply(old, [("answered", T0 + 3 * DAY, {}), ("reopened", T0 + 4 * DAY, {})])
    assert _of(old, "22-A")["answered"] == 1 and old["outcomes"] != []


# ------------------------------------------------------------------ D: one extension


def test_a_reopen_does_not_give_the_body_a_second_extension() -> None:
    state = _new()
    effects = _apply(state, [("extended", T0 + 10 * DAY, {"extension_days": 30}),
                             ("answered", T0 + 50 * DAY, {}), ("closed", T0 + 50 * DAY, {}),
                             ("reopened", T0 + 52 * DAY, {}),
                             ("extended", T0 + 60 * DAY, {"extension_days": 30})])
    assert [e.outcome for e in effects] == ["applied"] * 4 + [EXTENSION_REFUSED]
    assert state["due"] == T0 + 82 * DAY and state["ext"] == 1


@pytest.mark.parametrize("reopen_first", [False, True])
def test_a_receiving_body_still_has_its_own_extension(reopen_first: bool) -> None:
    state = _new()
    history: list[tuple[str, float, dict[str, Any]]] = [
        ("extended", T0 + 10 * DAY, {"extension_days": 30})]
    if reopen_first:
        history += [("answered", T0 + 11 * DAY, {}), ("reopened", T0 + 12 * DAY, {})]
    history += [("redirected", T0 + 13 * DAY, {"to_authority_id": "22-B"}),
                ("extended", T0 + 20 * DAY, {"extension_days": 10})]
    effects = _apply(state, history)
    assert effects[-1].outcome == "applied"
    assert state["due"] == T0 + 53 * DAY
