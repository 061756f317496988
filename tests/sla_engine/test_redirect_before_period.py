"""A redirect stamped before the redirect that began the running period is an earlier body's,
processed late: refused (``before_period``), in whatever order the two come.

Re-keyed events reach the state in the order they are re-published. A->B of day 3 processed
after B->C of day 10 (both without ``authority_id``) was applied: the appeal went back to B,
with a period from day 3, and C's timers were cancelled.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import BOOK, DAY, SIMPLE, T0, TZ, ev
from workers.sla.engine import BEFORE_PERIOD, SlaRules, State, apply_lifecycle, new_state


def _state(rules: SlaRules) -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, rules)[0]


@pytest.mark.parametrize("rules", [SIMPLE, BOOK], ids=["simple", "policy_book"])
def test_an_earlier_redirect_processed_late_is_refused(rules: SlaRules) -> None:
    to_b = ev("redirected", T0 + 3 * DAY, 1, to_authority_id="B")
    to_c = ev("redirected", T0 + 10 * DAY, 2, to_authority_id="C")
    in_order = _state(rules)
    for event in (to_b, to_c):
        assert apply_lifecycle(in_order, event, rules).outcome == "applied"
    late = _state(rules)
    assert apply_lifecycle(late, to_c, rules).outcome == "applied"
    effects = apply_lifecycle(late, to_b, rules)
    assert effects.outcome == BEFORE_PERIOD
    assert not effects.cancel and not effects.timers and not effects.alerts
    assert late["auth"] == in_order["auth"] == "C"
    assert late["start"] == in_order["start"] == T0 + 10 * DAY
    assert late["due"] == in_order["due"]


def test_a_redirect_before_a_reopen_is_refused() -> None:
    state = _state(SIMPLE)
    for n, (kind, days) in enumerate([("answered", 5), ("reopened", 8)]):
        apply_lifecycle(state, ev(kind, T0 + days * DAY, n), SIMPLE)
    effects = apply_lifecycle(state, ev("redirected", T0 + 6 * DAY, 7, to_authority_id="B"),
                              SIMPLE)
    assert effects.outcome == BEFORE_PERIOD and state["auth"] == "A"


def test_the_first_period_still_takes_a_redirect_stamped_at_registration() -> None:
    state = _state(SIMPLE)
    effects = apply_lifecycle(state, ev("redirected", T0 - 60, 1, to_authority_id="B"), SIMPLE)
    assert effects.outcome == "applied" and state["auth"] == "B"
