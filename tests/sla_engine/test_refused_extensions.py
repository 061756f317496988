"""Every extension the engine refuses comes back as ``EXTENSION_REFUSED`` with a one-line
``detail`` naming the rule, and changes nothing but the remembered event ids.

Before, the four refusals (a further extension than the policy allows, one declared after the
deadline, ``extension_days`` the policy or the calendar refuses, one that moves nothing) were
a bare ``rejected``: the agent had nothing to dead-letter them with, so it only counted them
and the body's system believed its deadline had moved. The detail carries numbers and
moments only (it goes to the dead-letter topic and to the authority): no appeal content.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, SIMPLE
from workers.sla.engine import (
    EXTENSION_REFUSED,
    SlaRules,
    State,
    apply_lifecycle,
    new_state,
)

BARNAUL = dt.timezone(dt.timedelta(hours=7))
#: A Wednesday; fz59's 30th day is Fri 10 Apr 2026, and +1 day (Sat) walks back to it.
REG = dt.datetime(2026, 3, 11, 10, 0, tzinfo=BARNAUL)


def _state(rules: SlaRules, regime: str = "fz59") -> State:
    routed = {"appeal_id": "a1", "regime": regime, "region": "22", "authority_id": "A",
              "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, REG.timestamp(), "Asia/Barnaul", rules)
    return state


def _ext(n: int, day: float, days: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "appeal_id": "a1", "event": "extended",
            "at": (REG + dt.timedelta(days=day)).isoformat(), "extension_days": days}


def _second(rules: SlaRules) -> tuple[State, dict[str, Any]]:
    state = _state(rules)
    assert apply_lifecycle(state, _ext(1, 2, 30), rules).outcome == "applied"
    return state, _ext(2, 3, 10)


@pytest.mark.parametrize(("case", "detail"), [
    ("second", "extension 2 of this body: the policy allows 1"),
    ("incident", "extension 1 of this body: the policy allows none"),
    ("late", "declared at 2026-04-10T10:00:01+07:00, after the deadline "
             "2026-04-10T10:00:00+07:00: only a running term can be extended"),
    ("days", "extension_days 45: extension must be 1..30 days, got 45"),
    ("nothing", "extension_days 1 moves nothing: the deadline stays 2026-04-10T23:59:59+07:00"),
])
def test_each_refusal_names_its_rule_and_changes_nothing(case: str, detail: str) -> None:
    if case == "second":
        state, event = _second(SIMPLE)
        rules = SIMPLE
    elif case == "incident":
        rules, state = BOOK, _state(BOOK, "incident")
        event = _ext(1, 0, 1)
    elif case == "late":
        rules, state = SIMPLE, _state(SIMPLE)  # due 30 days after registration, to the second
        event = {**_ext(1, 30, 10), "at": (REG + dt.timedelta(days=30, seconds=1)).isoformat()}
    else:
        rules, state = BOOK, _state(BOOK)
        event = _ext(1, 5, 45 if case == "days" else 1)
    before = copy.deepcopy(state)
    effects = apply_lifecycle(state, event, rules)
    assert (effects.outcome, effects.detail) == (EXTENSION_REFUSED, detail)
    assert effects.timers == [] and effects.cancel == [] and effects.alerts == []
    assert {k: v for k, v in state.items() if k != "events"} == {
        k: v for k, v in before.items() if k != "events"}


def test_an_applied_extension_has_no_detail() -> None:
    state = _state(BOOK)
    effects = apply_lifecycle(state, _ext(1, 5, 30), BOOK)
    assert (effects.outcome, effects.detail, state["ext"]) == ("applied", "", 1)
