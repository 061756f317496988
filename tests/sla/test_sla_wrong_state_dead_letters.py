"""A lifecycle event the appeal's state refuses is dead-lettered with its reason and a detail
naming the state, and its id is not remembered: the resend is judged again.

Before, the engine's ``not_open``, ``not_closed`` and ``ignored`` were only counted, and the
event id was stored anyway: nothing told the sender, and the resend after the event it waited
for was swallowed as a duplicate (a reopen that overtook its close left the appeal closed for
good). The reopen and the answer that overtook the event they follow are now kept for it
instead (``tests/sla_engine/test_held_reopens_and_answers.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from tests.sla.sla_support import INTERNAL, KEY, T0, dead_count, lifecycle, message, run_batches
from workers.sla.engine import NOT_OPEN, State

D = dt.timedelta(days=1)


def test_a_pause_of_a_closed_appeal_is_dead_lettered_and_its_resend_judged_again(
        rt: Any, routed_state: State) -> None:
    run_batches(rt, [message(INTERNAL, lifecycle("closed", 1, T0 + 2 * D), 1)])
    dead = dead_count(NOT_OPEN)
    pause = lifecycle("paused", 2, T0 + 4 * D)
    outbox, [batch] = run_batches(rt, [message(INTERNAL, pause, 2)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (NOT_OPEN, pause)
    assert detail is not None and "it is closed at " in detail
    assert dead_count(NOT_OPEN) == dead + 1
    assert KEY not in batch.changed
    assert pause["event_id"] not in rt.table[KEY]["events"]
    # Reopened after the close: the resend of the pause now applies.
    run_batches(rt, [message(INTERNAL, lifecycle("reopened", 3, T0 + 3 * D), 3)])
    outbox, _ = run_batches(rt, [message(INTERNAL, pause, 4)])
    assert outbox.dead == [] and rt.table[KEY]["status"] == "paused"


def test_a_reopen_that_overtook_its_close_reopens_the_appeal_when_the_close_comes(
        rt: Any, routed_state: State) -> None:
    outbox, _ = run_batches(rt, [message(INTERNAL, lifecycle("reopened", 2, T0 + 3 * D), 1)])
    assert outbox.dead == [] and rt.table[KEY]["status"] == "running"
    outbox, _ = run_batches(rt, [message(INTERNAL, lifecycle("closed", 1, T0 + 2 * D), 2)])
    state = rt.table[KEY]
    assert outbox.dead == [] and state["status"] == "running"
    assert state["start"] == (T0 + 3 * D).timestamp() and "erop" not in state
