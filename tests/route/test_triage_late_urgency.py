"""A triage decision that comes after ``APPEALS_TRIAGE_MAX_WAIT`` carries its ``urgent`` into
the redirect from the triage desk, and the SLA engine counts the receiving body's term with it.

Before, the redirect named only the receiving body: a human's "urgent" (no heating in frost)
was lost, and the appeal kept the urgency it was routed to the desk with (the classifier's,
unsure by definition, or the intake's importance), so the receiving body got the ordinary term
instead of the policy's ``urgent_answer``. A decision that leaves ``urgent`` null keeps that
urgency, as a decision in time does (``_route_decided``). No training line either way: the
text left the table at the timeout (README, "Classification and routing").
"""

from __future__ import annotations

from typing import Any

import pytest

from schemas.records import LifecycleEvent
from schemas.validation import parse_datetime, validate
from streams import topics as t
from tests.route.test_triage_timeout import (
    DECISIONS,
    DESK,
    MAX_WAIT,
    PENDING,
    T0,
    TEXT,
    Worker,
    X,
    _timed_out,
    decision,
    event,
    pending,
    tick,
)
from workers.routing import Router, load_rules
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import apply_lifecycle, new_state


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


@pytest.mark.parametrize(("classifier", "decided", "expected"), [
    (False, True, True), (True, False, False), (True, None, True), (False, None, False)])
def test_the_late_decision_s_urgent_reaches_the_receiving_body_s_deadline(
        router: Router, classifier: bool, decided: bool | None, expected: bool) -> None:
    worker = _timed_out(router, municipality="Бийск", regime="incident", urgent=classifier)
    [routed] = _desk_routing(router, classifier)
    assert routed["urgent"] is classifier and routed["authority_id"] == DESK
    late = {**decision(X, "roads"), "urgent": decided}
    out = worker.run(event(DECISIONS, late, T0 + MAX_WAIT + 60))
    assert out.on(t.TRIAGE_FEEDBACK) == [] and out.dead == []
    [(base, _key, redirect)] = out.sent
    assert base == t.SLA_LIFECYCLE
    validate(LifecycleEvent.schema, redirect)
    assert redirect.get("urgent") is decided
    assert TEXT not in str(redirect)
    # The SLA engine, from the desk's routing to the redirect.
    rules = DeadlineService().rules()
    registered = parse_datetime(routed["registered_at"]).timestamp()
    state, _ = new_state(routed, 0, registered, "Asia/Barnaul", rules)
    assert apply_lifecycle(state, redirect, rules).outcome == "applied"
    assert state["auth"] == redirect["to_authority_id"] and state["urgent"] is expected
    at = parse_datetime(redirect["at"]).timestamp()
    ordinary = rules.due("incident", at, state["tz"], False, state["auth"], state["cat"],
                         state["sub"], state["region"])
    assert (state["due"] < ordinary) is expected  # the policy's urgent_answer, or not


def _desk_routing(router: Router, classifier: bool) -> list[dict[str, Any]]:
    """The routed record the timeout sends for such an appeal (a worker of its own)."""
    worker = Worker(router)
    worker.run(event(PENDING, pending(X, municipality="Бийск", regime="incident",
                                      urgent=classifier), T0))
    out = worker.run(tick(1, T0 + MAX_WAIT))
    return [r for r in out.on(t.ROUTED) if r["appeal_id"] == X]

