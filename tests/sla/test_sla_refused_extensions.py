"""An extension the SLA rules refuse is dead-lettered (``extension_refused``) with the rule
that refused it, and changes nothing.

Before, the engine's ``rejected`` was only counted in ``appeals_lifecycle_events_total``: no
dead letter was written, so the body whose system sent the extension believed its deadline
had moved (and answered a month late), and nobody could find which event was refused or why.
The refused event's id is not kept either (as for every dead-lettered lifecycle event), so an
extension the body corrects and resends under the same id is judged again; before, the id
was kept and the corrected resend was dropped as a duplicate.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from monitoring import metrics
from tests.sla.sla_support import (
    DAY,
    EXTERNAL,
    KEY,
    NOW,
    ROUTED,
    T0,
    dead_count,
    fixed_clock,
    lifecycle,
    message,
    route,
    routed_record,
    run_batches,
    stand_in_runtime,
)
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import EXTENSION_REFUSED, State

BARNAUL = dt.timezone(dt.timedelta(hours=7))
#: A Wednesday; with the policy book's fz59 the 30th day is Fri 10 Apr 2026, 23:59:59 local,
#: and +1 day (Sat) is walked back to it by the ``previous`` shift: an extension moving nothing.
REG = dt.datetime(2026, 3, 11, 10, 0, tzinfo=BARNAUL)
DUE = dt.datetime(2026, 4, 10, 23, 59, 59, tzinfo=BARNAUL).timestamp()


def _calendar_runtime() -> Any:
    """The agent with the policy book's deadlines (fz59: 30 calendar days, extensions of
    1..30 days, once per body) and a routed appeal registered at :data:`REG`."""
    rt = stand_in_runtime(clock=fixed_clock(NOW.timestamp()), rules=DeadlineService().rules())
    assert route(rt, registered=REG)["due"] == DUE
    return rt


def _rejected() -> float:
    value: float = metrics.LIFECYCLE.labels("extended", "rejected")._value.get()
    return value


def _refused(rt: Any, extension: dict[str, Any], offset: int = 9) -> str:
    """Run ``extension`` alone in a batch; check it is dead-lettered as refused, counted as
    before, and that the appeal's state is not touched; return the dead letter's detail."""
    before = rt.table[KEY]
    dead, rejected = dead_count(EXTENSION_REFUSED), _rejected()
    outbox, [batch] = run_batches(rt, [message(EXTERNAL, extension, offset)])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EXTENSION_REFUSED, extension)
    assert dead_count(EXTENSION_REFUSED) == dead + 1
    assert _rejected() == rejected + 1  # the lifecycle metric counts it as it always did
    # Nothing stored: the state (its deadline, its one extension, its remembered ids), the
    # timer index and the read model stay as they were.
    assert KEY not in batch.changed and not batch.schedule
    state: State = rt.table[KEY]
    assert state is before and extension["event_id"] not in state["events"]
    assert detail is not None and detail.startswith("extended refused: ")
    return detail


def test_a_second_extension_is_dead_lettered_naming_the_policy_s_number(
        rt: Any, routed_state: State) -> None:
    first = lifecycle("extended", 1, T0 + dt.timedelta(days=2), extension_days=30)
    run_batches(rt, [message(EXTERNAL, first, 1)])
    assert rt.table[KEY]["ext"] == 1 and rt.table[KEY]["due"] == T0.timestamp() + 40 * DAY
    second = lifecycle("extended", 2, T0 + dt.timedelta(days=3), extension_days=10)
    assert _refused(rt, second) == (
        "extended refused: extension 2 of this body: the policy allows 1")


def test_an_extension_declared_after_the_deadline_is_dead_lettered_with_both_moments(
        rt: Any, routed_state: State) -> None:
    # The routed appeal is due ten days after T0 (10:00 in Barnaul).
    late = lifecycle("extended", 1, T0 + dt.timedelta(days=11), extension_days=30)
    assert _refused(rt, late) == (
        "extended refused: declared at 2026-11-13T10:00:00+07:00, after the deadline "
        "2026-11-12T10:00:00+07:00: only a running term can be extended")


def test_extension_days_the_policy_refuses_are_dead_lettered_and_a_corrected_resend_applies(
        ) -> None:
    rt = _calendar_runtime()
    wrong = lifecycle("extended", 1, REG + dt.timedelta(days=5), extension_days=45)
    assert _refused(rt, wrong) == (
        "extended refused: extension_days 45: extension must be 1..30 days, got 45")
    # The body corrects the number and resends under the same id: judged again, applied.
    outbox, _ = run_batches(rt, [message(EXTERNAL, {**wrong, "extension_days": 30}, 10)])
    assert outbox.dead == []
    state = rt.table[KEY]
    assert state["ext"] == 1 and wrong["event_id"] in state["events"]
    assert state["due"] == dt.datetime(2026, 5, 8, 23, 59, 59, tzinfo=BARNAUL).timestamp()


def test_an_extension_that_moves_nothing_is_dead_lettered_and_keeps_the_one_extension() -> None:
    rt = _calendar_runtime()
    short = lifecycle("extended", 1, REG + dt.timedelta(days=5), extension_days=1)
    assert _refused(rt, short) == (
        "extended refused: extension_days 1 moves nothing: the deadline stays "
        "2026-04-10T23:59:59+07:00")
    longer = lifecycle("extended", 2, REG + dt.timedelta(days=6), extension_days=30)
    outbox, _ = run_batches(rt, [message(EXTERNAL, longer, 10)])
    assert outbox.dead == [] and rt.table[KEY]["ext"] == 1


def test_a_held_extension_refused_when_the_routing_comes_is_dead_lettered(rt: Any) -> None:
    """Extensions that overtook the routing are applied when it comes; the one refused then
    is dead-lettered, and the routing and the other held events still take effect."""
    first = lifecycle("extended", 1, T0 + dt.timedelta(days=2), extension_days=30)
    second = lifecycle("extended", 2, T0 + dt.timedelta(days=3), extension_days=10)
    run_batches(rt, [message(EXTERNAL, first, 1), message(EXTERNAL, second, 2)])
    assert len(rt.table[KEY]["pending"]) == 2
    dead, rejected = dead_count(EXTENSION_REFUSED), _rejected()
    outbox, _ = run_batches(rt, [message(ROUTED, routed_record())])
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (EXTENSION_REFUSED, second)
    assert detail == "extended refused: extension 2 of this body: the policy allows 1"
    assert dead_count(EXTENSION_REFUSED) == dead + 1 and _rejected() == rejected + 1
    state = rt.table[KEY]
    assert state["ext"] == 1 and state["due"] == T0.timestamp() + 40 * DAY
    assert first["event_id"] in state["events"] and second["event_id"] not in state["events"]
