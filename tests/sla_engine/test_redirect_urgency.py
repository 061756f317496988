"""A ``redirected`` event that names ``urgent`` counts the receiving body's answer period with
it; one that leaves it null or out keeps the appeal's.

Why: a triage decision that comes after ``APPEALS_TRIAGE_MAX_WAIT`` becomes a redirect from the
region's triage desk (``workers.route.agent._late_redirect``). The decision's ``urgent`` (a
human saying "no heating in frost") was lost there: the appeal kept the urgency it was routed to
the desk with (the classifier's, unsure by definition) and the receiving body got the ordinary
term instead of the policy's ``urgent_answer``. ``lifecycle-event`` already carries ``urgent``
on any event; the engine read it on no redirect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.sla_engine.engine_support import DAY
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import SlaRules, apply_lifecycle, new_state, replay_deadline

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC).timestamp()
#: Urgent appeals get one day, the others thirty.
RULES = SlaRules(due=lambda regime, start, tz, urgent, *_: start + (DAY if urgent else 30 * DAY),
                 extend=lambda regime, due, days, *_: due + days * DAY)


def _redirect(n: int, at: float, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "appeal_id": "a1", "event": "redirected",
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), "authority_id": "DESK",
            "to_authority_id": "B", **extra}


def _routed(urgent: bool) -> dict[str, Any]:
    return {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "DESK",
            "category": "other", "urgent": urgent}


@pytest.mark.parametrize(("routed", "named", "expected"), [
    (False, True, True), (True, False, False), (True, None, True), (False, None, False)])
def test_a_redirect_naming_urgent_counts_the_receiving_period_with_it(
        routed: bool, named: bool | None, expected: bool) -> None:
    state, _ = new_state(_routed(routed), 0, T0, "Asia/Barnaul", RULES)
    at = T0 + 2 * DAY
    effects = apply_lifecycle(state, _redirect(1, at, urgent=named), RULES)
    assert effects.outcome == "applied" and state["auth"] == "B"
    assert state["urgent"] is expected
    assert state["due"] == at + (DAY if expected else 30 * DAY)
    assert [t.due_ts for t in effects.timers if t.kind == "breach"] == [state["due"]]
    assert replay_deadline(state, RULES)[0] == state["due"]  # a recompute keeps it


def test_the_policy_book_gives_an_urgent_incident_its_urgent_answer_at_the_receiving_body(
        ) -> None:
    book = DeadlineService().rules()
    routed = {**_routed(False), "regime": "incident"}
    plain, _ = new_state(routed, 0, T0, "Asia/Barnaul", book)
    urgent, _ = new_state(routed, 0, T0, "Asia/Barnaul", book)
    apply_lifecycle(plain, _redirect(1, T0 + 3600), book)
    apply_lifecycle(urgent, _redirect(1, T0 + 3600, urgent=True), book)
    assert urgent["due"] < plain["due"]
