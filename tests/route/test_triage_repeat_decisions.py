"""A decision the triage agent does not apply is dead-lettered, not only counted.

- A second decision for an appeal already decided (routed by a decision, redirected from the
  desk after one, or with a decision already waiting for its copy) that names another
  category or another ``urgent`` was dropped with a counter (``not_pending``): the operator
  who corrected a category never learnt it was not applied. It is dead-lettered
  (``already_triaged``); a repeat of the applied decision (a replay, a resend) stays quiet.
- A decision carrying ``to_authority_id`` or ``extension_days`` (the ``lifecycle-event``
  schema allows them on any event) had them ignored unseen, even a body that does not exist:
  the category's body got the appeal. It is dead-lettered (``invalid_value``).
"""

from __future__ import annotations

from typing import Any

import pytest

from streams import topics as t
from tests.route.test_triage_timeout import (
    DECISIONS,
    MAX_WAIT,
    PENDING,
    T0,
    TEXT,
    Worker,
    X,
    Y,
    decision,
    event,
    pending,
    tick,
)
from workers.routing import Router, load_rules


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def _decision(appeal_id: str, category: str, n: int, **extra: Any) -> dict[str, Any]:
    return {**decision(appeal_id, category, n), **extra}


def _reasons(out: Any) -> list[tuple[str, str]]:
    return [(d["reason"], d["topic"]) for d in out.dead]


@pytest.mark.parametrize("first_copy", [True, False], ids=["copy_first", "decision_first"])
def test_a_conflicting_repeat_is_dead_lettered_an_identical_one_is_quiet(
        router: Router, first_copy: bool) -> None:
    worker = Worker(router)
    copy = event(PENDING, pending(X), T0)
    first = event(DECISIONS, _decision(X, "roads", 1, urgent=True), T0 + 10)
    if first_copy:
        worker.run(copy)
        assert [r["category"] for r in worker.run(first).on(t.ROUTED)] == ["roads"]
    else:
        worker.run(first)  # waits for its copy
    refused = []
    for n, changes in enumerate(({"category": "healthcare"}, {"urgent": False},
                                 {"urgent": None}), start=2):
        other = {**_decision(X, "roads", n, urgent=True), **changes}
        out = worker.run(event(DECISIONS, other, T0 + 10 + n))
        assert out.sent == []
        refused.extend(out.dead)
        # Before its copy, the first decision may still be refused (stamped before the
        # registration: tests/route/test_triage_decision_stamps.py): the others wait with it
        # and are judged, in the order they came, when the copy comes.
        assert _reasons(out) == ([("already_triaged", DECISIONS)] if first_copy else []), changes
    # The same decision again, under its own id or another: quiet.
    for n in (1, 9):
        out = worker.run(event(DECISIONS, _decision(X, "roads", n, urgent=True), T0 + 30 + n))
        assert out.dead == [] and out.sent == []
    if not first_copy:
        out = worker.run(copy)
        assert [(r["category"], r["urgent"]) for r in out.on(t.ROUTED)] == [("roads", True)]
        refused = out.dead
    assert [(d["reason"], d.get("topic", DECISIONS)) for d in refused] == [
        ("already_triaged", DECISIONS)] * 3
    for dead in refused:
        assert "roads" in dead["detail"] and "first decision wins" in dead["detail"]
        assert TEXT not in dead["detail"]
    assert worker.table[X.encode()]["done"]


def test_a_conflicting_decision_after_a_late_one_is_dead_lettered(router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X, municipality="Бийск"), T0))
    worker.run(tick(1, T0 + MAX_WAIT))
    late = worker.run(event(DECISIONS, decision(X, "roads"), T0 + MAX_WAIT + 60))
    assert [e["event"] for e in late.on(t.SLA_LIFECYCLE)] == ["redirected"]
    out = worker.run(event(DECISIONS, decision(X, "education", 2), T0 + MAX_WAIT + 70))
    assert _reasons(out) == [("already_triaged", DECISIONS)] and out.sent == []
    out = worker.run(event(DECISIONS, decision(X, "roads", 3), T0 + MAX_WAIT + 80))
    assert out.dead == [] and out.sent == []


def test_a_marker_without_the_decision_stays_quiet(router: Router) -> None:
    """Written before the table kept the decision: nothing to compare a repeat with."""
    worker = Worker(router, table={X.encode(): {"done": True}})
    out = worker.run(event(DECISIONS, decision(X, "education"), T0))
    assert out.dead == [] and out.sent == []


@pytest.mark.parametrize("extra", [{"to_authority_id": "22-no-such-body"},
                                   {"to_authority_id": "22-minzdrav"},
                                   {"extension_days": 10}])
def test_a_decision_naming_a_body_or_days_is_dead_lettered(
        router: Router, extra: dict[str, Any]) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(Y), T0))
    out = worker.run(event(DECISIONS, {**decision(Y, "roads"), "authority_id": "22-cur",
                                       **extra}, T0 + 10))
    assert _reasons(out) == [("invalid_value", DECISIONS)] and out.sent == []
    [name] = extra
    assert name in out.dead[0]["detail"]
    # The appeal still waits for a decision it can apply.
    out = worker.run(event(DECISIONS, decision(Y, "roads", 2), T0 + 20))
    assert [r["category"] for r in out.on(t.ROUTED)] == ["roads"] and out.dead == []
