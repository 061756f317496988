"""The handing-on body's ``accepted``, processed after its redirect, must not settle the
receiving body's stages: its run began after the acceptance.

A's ``accepted`` of day 1 (no ``authority_id``) re-keyed behind A's redirect to B of day 3
settled B's redirect stage: B's day-5 warning timer was cancelled, and B was never told its
7-day window was closing.
"""

from __future__ import annotations

from typing import Any

from tests.sla_engine.engine_support import BOOK, DAY, T0, TZ, ev
from workers.sla.engine import apply_lifecycle, new_state


def _routed() -> dict[str, Any]:
    return {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "A",
            "category": "roads", "urgent": False}


def test_a_late_acceptance_of_the_handing_on_body_leaves_the_receiving_body_s_stage() -> None:
    state = new_state(_routed(), 0, T0, TZ, BOOK)[0]
    apply_lifecycle(state, ev("redirected", T0 + 3 * DAY, 1, to_authority_id="B"), BOOK)
    stages = [list(e) for e in state["stg"]]
    effects = apply_lifecycle(state, ev("accepted", T0 + 1 * DAY, 2), BOOK)
    assert effects.outcome == "applied"
    assert not effects.cancel and not effects.alerts
    assert state["stg"] == stages
    assert state["accepted"] == T0 + 1 * DAY


def test_an_acceptance_in_the_running_period_still_settles_the_stage() -> None:
    state = new_state(_routed(), 0, T0, TZ, BOOK)[0]
    apply_lifecycle(state, ev("redirected", T0 + 3 * DAY, 1, to_authority_id="B"), BOOK)
    effects = apply_lifecycle(state, ev("accepted", T0 + 4 * DAY, 2), BOOK)
    assert [t.kind for t in effects.cancel] == ["redirect.warning"]
    assert [e[7] for e in state["stg"] if e[0] == "redirect"] == [T0 + 4 * DAY]
