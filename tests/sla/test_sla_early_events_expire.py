"""A reopen or answer kept for an event that never comes is dead-lettered as ``held_expired``
by the SLA agent, when its ``held`` timer ticks ``APPEALS_SLA_EARLY_MAX_AGE`` after its stamp.

Before, it stayed in the appeal's state for good and nobody learnt of it: a second answer of an
answered appeal (an interim answer, then the final one) waited for a reopen that never came.
The engine side is in ``tests/sla_engine/test_held_events_expire.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from schemas.validation import validate
from streams.settings import ConfigError, Settings
from tests.sla.sla_support import (
    APPEAL,
    DAY,
    INTERNAL,
    KEY,
    ROUTED,
    T0,
    TICKS,
    fixed_clock,
    lifecycle,
    message,
    routed_record,
    run_batches,
    stand_in_runtime,
    ten_day_rules,
)
from workers.sla import agent as sla_agent
from workers.sla.deadline_service import DeadlineService

HOLD = 7 * DAY  # the default of SlaRules.early_hold (APPEALS_SLA_EARLY_MAX_AGE)
#: The dead-letter reason and the timer kind (``engine.HELD_EXPIRED``, ``HELD_TIMER``): part of
#: the dead-letter and tick topics' contracts, so spelt out here.
HELD_EXPIRED, HELD_TIMER = "held_expired", "held"


def _runtime() -> Any:
    return stand_in_runtime(clock=fixed_clock(T0.timestamp() + 30 * DAY), rules=ten_day_rules())


def _tick(member_cycle: int, due: float) -> dict[str, Any]:
    tick = {"schema_version": 1, "appeal_id": APPEAL, "kind": HELD_TIMER, "due_ts": due,
            "cycle": member_cycle}
    validate("sla-tick", tick)  # the tick topic's contract takes the new kind
    return tick


def test_a_final_answer_kept_for_a_reopen_that_never_comes_is_dead_lettered() -> None:
    rt = _runtime()
    interim = lifecycle("answered", 1, T0 + dt.timedelta(days=1), authority_id="22-mintrans")
    final = lifecycle("answered", 2, T0 + dt.timedelta(days=2), authority_id="22-mintrans",
                      reason="the final answer")
    outbox, [_, _, kept] = run_batches(rt, [message(ROUTED, routed_record())],
                                       [message(INTERNAL, interim)], [message(INTERNAL, final)])
    assert outbox.dead == []
    expires = (T0 + dt.timedelta(days=2)).timestamp() + HOLD
    [(timer, armed)] = kept.schedule[0]._last.values()
    assert (timer.kind, timer.due_ts, armed) == (HELD_TIMER, expires, True)

    outbox, [batch] = run_batches(rt, [message(TICKS, _tick(timer.cycle, expires))])
    [(reason, value, detail)] = outbox.dead
    assert reason == HELD_EXPIRED
    assert orjson.loads(value) == {  # what the state kept of it: no other field
        "schema_version": 1, "event_id": final["event_id"], "appeal_id": APPEAL,
        "event": "answered", "at": "2026-11-04T03:00:00+00:00"}
    assert detail is not None and "the reopen it answers" in detail and "7 days" in detail
    state = rt.table[KEY]
    assert "eans" not in state and final["event_id"] not in state["events"]
    assert state["answered"] == (T0 + dt.timedelta(days=1)).timestamp()
    [(gone, still)] = batch.schedule[0]._last.values()
    assert (gone.member, still) == (timer.member, False)

    # The same tick again (a replay) finds nothing: no second dead letter, nothing stored.
    outbox, [again] = run_batches(rt, [message(TICKS, _tick(timer.cycle, expires))])
    assert outbox.dead == [] and KEY not in again.changed


class CapturingRedis:
    """Records the members a rebuild writes; its finishing script reports Redis lost part
    of the index, so the rebuild stops before the read model (not under test here)."""

    def __init__(self) -> None:
        self.members: dict[str, float] = {}

    async def delete(self, *keys: str) -> int:
        return 0

    async def zadd(self, key: str, mapping: dict[str, float]) -> int:
        self.members.update(mapping)
        return len(mapping)

    async def eval(self, *args: Any) -> int:
        return 0


def test_an_answer_kept_by_the_version_before_expiries_is_dead_lettered_after_a_rebuild(
) -> None:
    """A state stored before 470f26f keeps bare moments (no expiry). The index rebuild (start-up,
    Redis loss) armed no held timer for them, and an answered appeal rarely gets another event
    to convert them: its kept answer stayed for good. The rebuild now arms it at the moment
    plus the configured hold, and its tick dead-letters it."""
    hold = 2 * DAY  # not the default: the rebuild must use the configured APPEALS_SLA_EARLY_MAX_AGE
    rt = stand_in_runtime(clock=fixed_clock(T0.timestamp() + 30 * DAY),
                          rules=ten_day_rules(early_hold=hold), prefix="t:", redis_token="x",
                          index_dirty=set())
    interim = lifecycle("answered", 1, T0 + dt.timedelta(days=1), authority_id="22-mintrans")
    run_batches(rt, [message(ROUTED, routed_record())], [message(INTERNAL, interim)])
    kept_at = (T0 + dt.timedelta(days=2)).timestamp()
    rt.table[KEY]["eans"] = [kept_at]  # as the older version stored the final answer

    redis = CapturingRedis()
    rt.ctx.redis = redis
    asyncio.run(sla_agent._rebuild_partition(rt, 0, [rt.table[KEY]]))
    expires = kept_at + hold
    assert redis.members[f"{APPEAL}|{HELD_TIMER}|{int(expires)}"] == expires

    outbox, _ = run_batches(rt, [message(TICKS, _tick(int(expires), expires))])
    [(reason, value, detail)] = outbox.dead
    assert reason == HELD_EXPIRED and orjson.loads(value)["event_id"] is None
    assert detail is not None and "2 days" in detail
    assert "eans" not in rt.table[KEY]


def test_the_hold_is_the_setting() -> None:
    assert Settings().sla_early_max_age == HOLD
    assert Settings.load({"APPEALS_SLA_EARLY_MAX_AGE": "7200"}).sla_early_max_age == 7200
    for bad in ("60", "0", "-1", str(400 * DAY)):
        with pytest.raises(ConfigError, match="APPEALS_SLA_EARLY_MAX_AGE must be"):
            Settings.load({"APPEALS_SLA_EARLY_MAX_AGE": bad})
    router = SimpleNamespace(authority=lambda authority_id: SimpleNamespace(timezone=None))
    rules = sla_agent.sla_rules(DeadlineService(), Settings(sla_early_max_age=2 * DAY), router)
    assert rules.early_hold == 2 * DAY
