"""A triage decision stamped long before its appeal's registration is refused, not applied.

Before, the triage agent applied a decision whatever its ``at``. One that came after the
timeout (the appeal at the triage desk) became a ``redirected`` event with that ``at``; stamped
with a mistyped year (2016 for 2026) the SLA agent refused it (``before_period``), but the
triage table had already marked the appeal decided: the appeal stayed at the desk, and the
operator's corrected decision was dead-lettered ``already_triaged``. The SLA agent cannot check
the stamp before it forwards the decision: in triage the appeal has no SLA state there.

Now the triage agent checks it against the pending copy's ``registered_at`` (or its receipt,
``submitted_at``, when earlier), and after the timeout against the desk marker's, which keeps
them, with ``APPEALS_SLA_PAST_TOLERANCE`` as the SLA agent counts it. Such a decision is
dead-lettered ``before_period`` (the SLA agent's reason) and the appeal is not marked decided:
the corrected decision applies.

No broker: ``process_batch`` with a recording outbox and a dict for the table.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from streams import topics as t
from tests.route.test_triage_log_order import (
    merged,
    per_key,
    sla_authority,
    split,
)
from tests.route.test_triage_timeout import (
    DECISIONS,
    DESK,
    MAX_WAIT,
    PENDING,
    REGISTERED,
    T0,
    Outbox,
    Worker,
    _installed,
    decision,
    event,
    ids_on,
    pending,
    tick,
)
from workers.route import agent as A
from workers.routing import Router, load_rules

X, Y, Z = ids_on(1, 3)
#: A mistyped year: ten years before the registration (2026-09-21).
TYPO = "2016-09-23T08:00:00+00:00"
#: The corrected decision (two days after the registration).
RIGHT = "2026-09-23T08:00:00+00:00"


def stamped(appeal_id: str, at: str, category: str = "healthcare", n: int = 1) -> dict[str, Any]:
    return {**decision(appeal_id, category, n), "at": at}


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def test_a_decision_stamped_years_before_registration_leaves_the_appeal_waiting(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    before = dict(worker.table)
    out = worker.run(event(DECISIONS, stamped(X, TYPO), T0 + 60))
    assert out.sent == [], "neither routed nor a training line"
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("before_period", DECISIONS)]
    detail = out.dead[0]["detail"]
    assert "APPEALS_SLA_PAST_TOLERANCE" in detail and "registered" in detail
    assert "Бийск" not in detail and "+7913" not in detail
    assert worker.table == before, "not decided: the copy waits on"
    # The operator's corrected decision routes it.
    out = worker.run(event(DECISIONS, stamped(X, RIGHT, n=2), T0 + 120))
    assert out.dead == []
    assert [(r["appeal_id"], r["authority_id"]) for r in out.on(t.ROUTED)] == [
        (X, "22-minzdrav")]
    assert worker.table[X.encode()]["decided"] == "healthcare"


def test_after_the_timeout_it_is_refused_and_the_corrected_decision_redirects(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X, submitted_at=REGISTERED), T0))
    out = worker.run(tick(1, T0 + MAX_WAIT))
    [routed] = out.on(t.ROUTED)
    marker = worker.table[X.encode()]
    assert marker["registered_at"] == REGISTERED and "received_at" not in marker
    sent = list(out.sent)
    out = worker.run(event(DECISIONS, stamped(X, TYPO), T0 + MAX_WAIT + 60))
    assert out.sent == [], "no redirect the SLA agent would refuse"
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("before_period", DECISIONS)]
    assert worker.table[X.encode()] == marker, "not marked decided"
    out = worker.run(event(DECISIONS, stamped(X, RIGHT, n=2), T0 + MAX_WAIT + 120))
    assert out.dead == []
    [redirect] = out.on(t.SLA_LIFECYCLE)
    assert (redirect["at"], redirect["to_authority_id"]) == (RIGHT, "22-minzdrav")
    assert worker.table[X.encode()]["decided"] == "healthcare"
    # What the SLA agent makes of what was published: the appeal leaves the desk.
    outbox = Outbox()
    outbox.sent = [*sent, *out.sent]
    assert routed["authority_id"] == DESK
    assert sla_authority(outbox, X) == "22-minzdrav"


@pytest.mark.parametrize("late", [False, True])
def test_a_decision_that_overtook_its_copy_is_refused_when_the_copy_comes(
        router: Router, late: bool) -> None:
    worker = Worker(router)
    offset_of = event(DECISIONS, stamped(X, TYPO), T0 + (MAX_WAIT + 5 if late else 5))
    worker.run(offset_of)
    out = worker.run(event(PENDING, pending(X), T0))
    assert [(d["reason"], d["topic"], d["partition"], d["offset"]) for d in out.dead] == [
        ("before_period", DECISIONS, 1, offset_of.message.offset)]
    assert out.dead[0]["value"]["at"] == TYPO
    assert out.on(t.TRIAGE_FEEDBACK) == [] and out.on(t.SLA_LIFECYCLE) == []
    if late:
        # Past its wait at that clock: the desk, as when the copy is read first.
        assert [r["routing_level"] for r in out.on(t.ROUTED)] == ["triage_timeout"]
        assert "decided" not in worker.table[X.encode()]
        out = worker.run(event(DECISIONS, stamped(X, RIGHT, n=2), T0 + MAX_WAIT + 60))
        assert [r["to_authority_id"] for r in out.on(t.SLA_LIFECYCLE)] == ["22-minzdrav"]
    else:
        assert out.on(t.ROUTED) == []
        assert A._is_waiting_copy(worker.table[X.encode()])
        out = worker.run(event(DECISIONS, stamped(X, RIGHT, n=2), T0 + 60))
        assert [r["authority_id"] for r in out.on(t.ROUTED)] == ["22-minzdrav"]
    assert out.dead == []


def test_within_the_tolerance_and_from_the_receipt_a_decision_applies(router: Router) -> None:
    worker = Worker(router)
    # Two days before registration: a register kept by the date, a clock behind.
    worker.run(event(PENDING, pending(X), T0))
    out = worker.run(event(DECISIONS, stamped(X, "2026-09-19T15:00:00+00:00"), T0 + 5))
    assert out.dead == [] and len(out.on(t.ROUTED)) == 1
    # A 59-FZ letter read late, registered 12 days after its receipt: counted from the receipt.
    worker.run(event(PENDING, pending(Y, submitted_at="2026-09-09T10:00:00+00:00"), T0))
    out = worker.run(event(DECISIONS, stamped(Y, "2026-09-10T09:00:00+00:00"), T0 + 5))
    assert out.dead == [] and len(out.on(t.ROUTED)) == 1
    # ... and so after the timeout, from the marker.
    worker.run(event(PENDING, pending(Z, submitted_at="2026-09-09T10:00:00+00:00"), T0))
    worker.run(tick(1, T0 + MAX_WAIT))
    assert worker.table[Z.encode()]["received_at"] == "2026-09-09T10:00:00+00:00"
    out = worker.run(event(DECISIONS, stamped(Z, "2026-09-07T09:00:00+00:00"), T0 + MAX_WAIT + 5))
    assert out.dead == [] and len(out.on(t.SLA_LIFECYCLE)) == 1
    assert worker.table[Z.encode()]["decided"] == "healthcare"


def test_a_desk_marker_written_before_it_kept_the_registration_is_not_checked(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    worker.run(tick(1, T0 + MAX_WAIT))
    old = {k: v for k, v in worker.table[X.encode()].items() if k != "registered_at"}
    worker = Worker(router, table={X.encode(): old})
    out = worker.run(event(DECISIONS, stamped(X, TYPO), T0 + MAX_WAIT + 60))
    assert out.dead == [] and len(out.on(t.SLA_LIFECYCLE)) == 1, "as before: nothing to check"


def test_the_installed_agent_takes_the_tolerance_from_the_settings(
        router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    # APPEALS_SLA_PAST_TOLERANCE=0: a decision a minute before the registration is refused.
    table: dict[bytes, Any] = {X.encode(): {**pending(X), "since": T0, "p": 1, "offset": 0}}
    agent, _clock, outbox = _installed(router, table, {1}, monkeypatch, sla_past_tolerance=0.0)

    async def stream(_: Any, __: Any) -> AsyncIterator[list[Any]]:
        yield [event(DECISIONS, stamped(X, "2026-09-21T13:59:00+00:00"), T0 + 5)]

    asyncio.run(agent(stream))
    assert [d["reason"] for d in outbox.dead] == ["before_period"]
    assert outbox.on(t.ROUTED) == []


def test_every_merge_and_split_of_a_log_with_a_refused_decision_ends_the_same(
        router: Router) -> None:
    from tests.route.test_triage_log_order import msg, run_batches

    pend = [msg(PENDING, pending(X), T0, 0), msg(PENDING, pending(Y), T0 + 10, 1)]
    dec = [msg(DECISIONS, stamped(X, TYPO), T0 + 20, 0),
           msg(DECISIONS, stamped(Y, TYPO), T0 + 30, 1),
           msg(DECISIONS, A.TICK_VALUE, T0 + 10 + MAX_WAIT, 2, key=A.TICK_KEY),
           msg(DECISIONS, stamped(X, RIGHT, n=2), T0 + 10 + MAX_WAIT + 5, 3),
           msg(DECISIONS, stamped(Y, RIGHT, n=2), T0 + 10 + MAX_WAIT + 6, 4)]
    reference, table = run_batches(router, [[*pend, *dec]])
    assert sorted(d["reason"] for d in reference.dead) == ["before_period"] * 2
    assert [(v["appeal_id"], v.get("to_authority_id")) for _b, _k, v in reference.sent] == [
        (X, None), (Y, None), (X, "22-minzdrav"), (Y, "22-minzdrav")]
    rng = random.Random(2016)
    for _ in range(200):
        events = merged(pend, dec, rng)
        cuts = tuple(sorted(rng.sample(range(1, len(events)), rng.randrange(len(events)))))
        outbox, got = run_batches(router, split(events, cuts))
        assert per_key(outbox) == per_key(reference)
        assert sorted(d["reason"] for d in outbox.dead) == ["before_period"] * 2
        assert got == table


def test_a_corrected_decision_that_also_overtook_the_copy_applies(router: Router) -> None:
    """Both decisions read before the copy: the correction waits with the mistyped one, and
    when the copy comes they are judged in the order they came, as if the copy had come first.
    Judged against the mistyped one on arrival (``already_triaged``, or quiet for the same
    category), the correction was lost in this order of the topics only."""
    worker = Worker(router)
    worker.run(event(DECISIONS, stamped(X, TYPO, "healthcare"), T0 + 5),
               event(DECISIONS, stamped(X, RIGHT, "education", n=2), T0 + 6),
               event(DECISIONS, stamped(X, RIGHT, "roads", n=3), T0 + 7))
    out = worker.run(event(PENDING, pending(X), T0))
    assert [(r["category"], r["authority_id"]) for r in out.on(t.ROUTED)] == [
        ("education", "22-biysk-uobr")]
    assert [(d["reason"], d["value"]["category"]) for d in out.dead] == [
        ("before_period", "healthcare"), ("already_triaged", "roads")]
    assert worker.table[X.encode()]["decided"] == "education"


def test_decisions_whose_copy_never_comes_are_all_dead_lettered(router: Router) -> None:
    worker = Worker(router)
    worker.run(event(DECISIONS, stamped(X, TYPO), T0),
               event(DECISIONS, stamped(X, RIGHT, n=2), T0 + 1))
    out = worker.run(tick(1, T0 + A.EARLY_DECISION_MAX_WAIT))
    assert [(d["reason"], d["value"]["at"]) for d in out.dead] == [
        ("not_triaged", TYPO), ("not_triaged", RIGHT)]
    assert X.encode() not in worker.table
