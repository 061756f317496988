"""An event that ends or holds a breached period before its escalation moment takes the
escalation back from the figures, whichever of the event and the escalation tick is processed
first.

Figures are event-time sums: a replay in another order must give the same ones. An answer
stamped on day 31 (one day past the deadline, two before the escalation), processed after the
escalation's tick, left the escalation counted; processed in order it cancelled it. The alert
already sent stays sent, and is not sent twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY, SIMPLE, T0, TZ, ev
from workers.sla.engine import (
    Effects,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)

DUE = T0 + 30 * DAY  # SIMPLE: 30 days, escalation 3 days after the breach


def _state() -> State:
    routed: dict[str, Any] = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                              "authority_id": "A", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, TZ, SIMPLE)[0]


def _tick(state: State, kind: str) -> Effects:
    return apply_tick(state, kind, state["cycle"], SIMPLE)


def _counters(state: State) -> list[tuple[str, str, str]]:
    return sorted(c for c in contributions(state) if c[2] != "received")


def _escalations(effects: list[Effects]) -> int:
    return sum(1 for e in effects for a in e.alerts if a.level == "escalation")


@pytest.mark.parametrize("kind,extra", [("answered", {}), ("closed", {}),
                                        ("redirected", {"to_authority_id": "B"})])
def test_an_end_before_the_escalation_takes_it_back(kind: str, extra: dict[str, Any]) -> None:
    event = ev(kind, DUE + 1 * DAY, 1, **extra)
    in_order = _state()
    _tick(in_order, "breach")
    sent = [apply_lifecycle(in_order, event, SIMPLE)]
    sent.append(_tick(in_order, "escalation"))
    late = _state()
    _tick(late, "breach")
    late_sent = [_tick(late, "escalation")]
    assert late["edays"]
    late_sent.append(apply_lifecycle(late, event, SIMPLE))
    assert _counters(late) == _counters(in_order)
    assert not any(c[2] == "escalations" for c in _counters(late))
    assert late["escalated"] is None and late["bdays"]
    assert _escalations(late_sent) == 1 and _escalations(sent) == 0
    assert "escalation:0" in late["alerts"]  # sent, and never sent again


def test_an_end_after_the_escalation_keeps_it() -> None:
    state = _state()
    _tick(state, "breach")
    _tick(state, "escalation")
    apply_lifecycle(state, ev("answered", DUE + 4 * DAY, 1), SIMPLE)
    assert any(c[2] == "escalations" for c in _counters(state))


def test_a_pause_before_the_escalation_holds_it_until_the_resume() -> None:
    """In order the pause holds the escalation and the resume arms it again; processed after
    the escalation's tick, the pause takes it back and the resume arms it quietly: the same
    figures, one alert."""
    pause = ev("paused", DUE + 1 * DAY, 1)
    resume = ev("resumed", DUE + 5 * DAY, 2)
    in_order = _state()
    _tick(in_order, "breach")
    sent = [apply_lifecycle(in_order, pause, SIMPLE), _tick(in_order, "escalation")]
    assert not any(c[2] == "escalations" for c in _counters(in_order))
    sent.append(apply_lifecycle(in_order, resume, SIMPLE))
    sent.append(_tick(in_order, "escalation"))
    late = _state()
    _tick(late, "breach")
    late_sent = [_tick(late, "escalation"), apply_lifecycle(late, pause, SIMPLE)]
    assert _counters(late) == _counters(_paused_view())
    late_sent.append(apply_lifecycle(late, resume, SIMPLE))
    armed = [t for e in late_sent[-1:] for t in e.timers if t.kind == "escalation"]
    assert armed and armed[0].due_ts == DUE + 3 * DAY
    late_sent.append(_tick(late, "escalation"))
    assert _counters(late) == _counters(in_order)
    assert any(c[2] == "escalations" for c in _counters(late))
    assert _escalations(sent) == 1 and _escalations(late_sent) == 1


def _paused_view() -> State:
    """The state in order after the pause: breached, not escalated."""
    state = _state()
    _tick(state, "breach")
    apply_lifecycle(state, ev("paused", DUE + 1 * DAY, 1), SIMPLE)
    return state


def test_a_pause_then_a_close_leaves_no_escalation_in_either_order() -> None:
    pause = ev("paused", DUE + 1 * DAY, 1)
    close = ev("closed", DUE + 5 * DAY, 2)
    in_order = _state()
    _tick(in_order, "breach")
    for event in (pause, close):
        apply_lifecycle(in_order, event, SIMPLE)
    late = _state()
    _tick(late, "breach")
    _tick(late, "escalation")
    for event in (pause, close):
        apply_lifecycle(late, event, SIMPLE)
    assert _tick(late, "escalation").alerts == []
    assert _counters(late) == _counters(in_order)
    assert not any(c[2] == "escalations" for c in _counters(late))
