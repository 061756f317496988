"""The SLA status the read model shows (``read_model.sla_status``) is the running period's.

A reopened period was shown as "extended" when the period before it had been extended: the
status read ``ext``, which counts the body's extensions across reopens on purpose (a reopen
gives it no second one), while the reopened period ran on the plain deadline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from workers.sla.engine import SlaRules, apply_lifecycle, new_state
from workers.sla.read_model import sla_status

DAY = 86400.0
T0 = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC).timestamp()
RULES = SlaRules(due=lambda r, s, *_: s + 30 * DAY, extend=lambda r, d, n, *_: d + n * DAY)


def _ev(event: str, days: float, n: int, **extra: Any) -> dict[str, Any]:
    at = dt.datetime.fromtimestamp(T0 + days * DAY, dt.UTC).isoformat()
    return {"event_id": f"e{n}", "appeal_id": "a1", "event": event, "at": at, **extra}


def test_a_reopened_period_is_running_not_extended_and_an_extended_one_is_extended() -> None:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "A",
              "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, T0, "Asia/Barnaul", RULES)
    assert sla_status(state) == "running"
    apply_lifecycle(state, _ev("extended", 10, 1, extension_days=30), RULES)
    assert sla_status(state) == "extended"
    apply_lifecycle(state, _ev("answered", 40, 2), RULES)
    apply_lifecycle(state, _ev("reopened", 45, 3), RULES)
    assert state["ext"] == 1 and state["due"] == T0 + 75 * DAY
    assert sla_status(state) == "running"
    # Still "extended" after a pause of the extended period.
    state, _ = new_state(routed, 0, T0, "Asia/Barnaul", RULES)
    for n, event in enumerate([_ev("extended", 1, 1), _ev("paused", 2, 2),
                               _ev("resumed", 3, 3)]):
        assert apply_lifecycle(state, event, RULES).outcome == "applied", n
    assert sla_status(state) == "extended"


def test_a_state_without_adjustments_goes_by_its_extension_count() -> None:
    state = {"status": "running", "breached": None, "alerts": [], "cycle": 1, "ext": 1}
    assert sla_status(state) == "extended"
