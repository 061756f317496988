"""An extension of an appeal that is answered or closed is dead-lettered (``extension_refused``),
the detail naming the status and its moment.

Before, the engine's ``not_open`` was only counted in ``appeals_lifecycle_events_total``: every
other extension the SLA agent does not apply (one the rules refuse, one stamped before the
period it would extend) goes to the dead-letter topic with its reason, this one vanished, and
the body's system believed its deadline had moved. Like every dead-lettered lifecycle event it
changes nothing and its id is not kept, so a resend after a reopen is judged again. (An
extension stamped before the answer but processed after it is applied under the answer while
the body's extension is unused: ``tests/sla_engine/test_extension_under_the_answer.py``.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.sla import sla_support as sla
from tests.sla.sla_support import EXTERNAL, KEY, ROUTED, T0
from tests.sla_engine.test_refused_extensions import SIMPLE, _ext, _state
from workers.sla.engine import EXTENSION_REFUSED, State, apply_lifecycle


@pytest.mark.parametrize(("ending", "status"), [("answered", "answered"), ("closed", "closed")])
def test_the_engine_refuses_an_extension_of_an_ended_period_naming_the_status(
        ending: str, status: str) -> None:
    state = _state(SIMPLE)
    ended = {"event_id": "x1", "appeal_id": "a1", "event": ending,
             "at": "2026-03-20T10:00:00+07:00"}
    assert apply_lifecycle(state, ended, SIMPLE).outcome == "applied"
    due = state["due"]
    effects = apply_lifecycle(state, _ext(2, 19, 30), SIMPLE)  # stamped after the end
    assert effects.outcome == EXTENSION_REFUSED
    assert effects.detail.startswith(f"the appeal is {status} (at 2026-03-20T10:00:00+07:00): "
                                     "only an open answer period can be extended")
    assert state["due"] == due and state["ext"] == 0 and not effects.timers


def test_the_agent_dead_letters_an_extension_of_an_answered_appeal(
        rt: Any, routed_state: State) -> None:
    answered = sla.lifecycle("answered", 1, T0 + dt.timedelta(days=3))
    sla.run_batches(rt, [sla.message(EXTERNAL, answered, 1)])
    assert rt.table[KEY]["status"] == "answered"
    before = rt.table[KEY]
    dead = sla.dead_count(EXTENSION_REFUSED)
    extension = sla.lifecycle("extended", 2, T0 + dt.timedelta(days=4), extension_days=30)
    outbox, [batch] = sla.run_batches(rt, [sla.message(EXTERNAL, extension, 2)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EXTENSION_REFUSED, extension)
    assert detail is not None and detail.startswith(
        "extended refused: the appeal is answered (at ")
    assert sla.dead_count(EXTENSION_REFUSED) == dead + 1
    assert KEY not in batch.changed and rt.table[KEY] is before
    assert extension["event_id"] not in rt.table[KEY]["events"]


def test_a_held_extension_of_an_appeal_closed_by_an_earlier_held_event_is_dead_lettered(
        rt: Any) -> None:
    closed = sla.lifecycle("closed", 1, T0 + dt.timedelta(days=1))
    extension = sla.lifecycle("extended", 2, T0 + dt.timedelta(days=2), extension_days=30)
    sla.run_batches(rt, [sla.message(EXTERNAL, closed, 1), sla.message(EXTERNAL, extension, 2)])
    outbox, _ = sla.run_batches(rt, [sla.message(ROUTED, sla.routed_record())])
    [(reason, value, _detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EXTENSION_REFUSED, extension)
    assert rt.table[KEY]["status"] == "closed"
