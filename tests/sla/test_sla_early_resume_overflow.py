"""A resume beyond the :data:`~workers.sla.engine.MAX_EARLY_RESUMES` kept for pauses that have
not arrived is dead-lettered (``early_resume_overflow``), not silently dropped.

Before, a ninth resume kept the eight latest-stamped and let the earliest go without a word:
its event id stayed remembered, so a resend was a duplicate, and when its pause came, nothing
ended that pause: the appeal stayed paused with no deadline. Now the resume that does not fit
is refused whole, as the held events beyond ``MAX_PENDING`` are: the original bytes go to the
dead-letter topic, counted, its id is not kept, and a resend after its pause arrives ends it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from tests.sla.sla_support import (
    APPEAL,
    EXTERNAL,
    KEY,
    ROUTED,
    T0,
    dead_count,
    lifecycle,
    message,
    routed_record,
    run_batches,
)
from workers.sla.engine import EARLY_RESUME_OVERFLOW, MAX_EARLY_RESUMES, State

HOUR = dt.timedelta(hours=1)


def test_a_resume_beyond_the_kept_ones_is_dead_lettered_and_a_resend_after_its_pause_applies(
        rt: Any, routed_state: State) -> None:
    kept = [lifecycle("resumed", n, T0 + (1 + n) * HOUR) for n in range(MAX_EARLY_RESUMES)]
    outbox, _ = run_batches(rt, [message(EXTERNAL, e, n) for n, e in enumerate(kept)])
    assert outbox.dead == [] and len(rt.table[KEY]["eres"]) == MAX_EARLY_RESUMES
    before = rt.table[KEY]
    dead = dead_count(EARLY_RESUME_OVERFLOW)
    extra = lifecycle("resumed", 99, T0 + 20 * HOUR)  # after every kept one
    outbox, [batch] = run_batches(rt, [message(EXTERNAL, extra, 50)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EARLY_RESUME_OVERFLOW, extra)
    assert dead_count(EARLY_RESUME_OVERFLOW) == dead + 1
    assert detail == (
        f"resumed stamped {extra['at']}: {MAX_EARLY_RESUMES} resumes of appeal {APPEAL} already "
        "wait for pauses that have not arrived (stamped 2026-11-02T11:00:00+07:00 to "
        "2026-11-02T18:00:00+07:00); resend it after its pause")
    # Nothing stored, and the kept resumes are all still there.
    assert KEY not in batch.changed and rt.table[KEY] is before
    assert extra["event_id"] not in before["events"]
    # Its pause comes (after every kept resume: an ordinary pause), then the resend: the pause
    # ends, the deadline moves by its 5 hours.
    due = before["due"]
    run_batches(rt, [message(EXTERNAL, lifecycle("paused", 100, T0 + 15 * HOUR), 51)])
    assert rt.table[KEY]["status"] == "paused"
    outbox, _ = run_batches(rt, [message(EXTERNAL, extra, 52)])
    state = rt.table[KEY]
    assert outbox.dead == [] and state["status"] == "running"
    assert state["due"] == due + 5 * 3600 and len(state["eres"]) == MAX_EARLY_RESUMES


def test_a_held_resume_beyond_the_kept_ones_is_dead_lettered_when_the_routing_comes(
        rt: Any) -> None:
    resumes = [lifecycle("resumed", n, T0 + (10 + n) * HOUR)
               for n in range(MAX_EARLY_RESUMES + 1)]
    run_batches(rt, [message(EXTERNAL, e, n) for n, e in enumerate(resumes)])
    assert len(rt.table[KEY]["pending"]) == MAX_EARLY_RESUMES + 1
    outbox, _ = run_batches(rt, [message(ROUTED, routed_record())])
    [(reason, value, _detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EARLY_RESUME_OVERFLOW, resumes[-1])
    assert len(rt.table[KEY]["eres"]) == MAX_EARLY_RESUMES
