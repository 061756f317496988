"""The demo plans an appeal's lifecycle events from its ``registered_at``, not from the moment
it sent the appeal.

Review of a first run: the demo dead-lettered 1-12 of its own events per run as
``before_period``. It planned them from its clock when it sent the appeal, while the worker
registers the appeal (and starts its periods) when it processes it; at 86,400× an intake lag
over 0.36 s is more than 0.36 SLA days, an incident's pause offset (0.3 × 1.2 days). Now the
events are moved to start at the ``registered_at`` the demo reads on appeals.registered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.structs import TopicPartition

from schemas.records import SourcePosition
from streams import topics as t
from streams.settings import Settings
from workers.demo.generator import DAY, NOMINAL_PERIOD, GeneratedAppeal, Generator
from workers.demo.runner import AwaitingRegistration, Tally, _watch, registration
from workers.intake import agent as intake_agent
from workers.intake import core
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import BEFORE_PERIOD, apply_lifecycle, new_state

SENT = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC).timestamp()
LAG = 0.5 * DAY  # half a second of intake lag at the demo's 86,400×


def _paused_incident() -> GeneratedAppeal:
    gen = Generator(seed=5, malformed_share=0.0, vague_share=0.0)
    for _ in range(20_000):
        appeal = gen.appeal(SENT)
        if appeal.fate == "paused" and appeal.regime == "incident":
            return appeal
    raise AssertionError("no paused incident generated")


def _registered_record(appeal: GeneratedAppeal, registered_ts: float) -> bytes:
    """The appeals.registered record the worker writes for ``appeal`` at ``registered_ts``."""
    intake_agent._load_plugins()
    intake = core.decode_intake(appeal.value)
    return core.register(intake, registered_at=dt.datetime.fromtimestamp(registered_ts, dt.UTC),
                         source=SourcePosition("t", 0, 0)).to_json()


def _state(appeal_id: str, regime: str, registered_at: str) -> tuple[dict[str, Any], Any]:
    rules = DeadlineService().rules()
    routed = {"schema_version": 1, "appeal_id": appeal_id, "regime": regime, "region": "22",
              "registered_at": registered_at, "category": "housing_utilities",
              "urgent": False, "confidence": 0.9, "authority_id": "22-minzhkh",
              "routing_level": "region", "rule_version": "v1", "routed_at": registered_at}
    reg = dt.datetime.fromisoformat(registered_at).timestamp()
    state, _ = new_state(routed, 0, reg, "Asia/Barnaul", rules)
    return state, rules


def test_lifecycle_events_start_at_the_registration() -> None:
    appeal = _paused_incident()
    gen = Generator(seed=6)
    planned = gen.plan(appeal, SENT)
    awaiting = AwaitingRegistration()
    awaiting.add(appeal.appeal_id, SENT, planned)

    value = _registered_record(appeal, SENT + LAG)
    appeal_id, registered_ts = registration(value)
    assert appeal_id == appeal.appeal_id
    assert registered_ts == pytest.approx(SENT + LAG, abs=0.001)
    moved = awaiting.registered(appeal_id, registered_ts)
    assert len(awaiting) == 0
    # The same plan, each event as far after the registration as it was after the sending.
    assert [e.payload["event"] for e in moved] == [e.payload["event"] for e in planned]
    assert [e.at - registered_ts for e in moved] == pytest.approx(
        [e.at - SENT for e in planned])
    pause = next(e for e in moved if e.payload["event"] == "paused")
    assert pause.at == pytest.approx(registered_ts + 0.3 * NOMINAL_PERIOD["incident"])
    assert dt.datetime.fromisoformat(pause.payload["at"]).timestamp() == int(pause.at)

    # The SLA engine takes the moved pause; the one planned from the sending is refused.
    registered_at = orjson.loads(value)["registered_at"]
    state, rules = _state(appeal_id, "incident", registered_at)
    assert apply_lifecycle(state, pause.payload, rules).outcome != BEFORE_PERIOD
    state, rules = _state(appeal_id, "incident", registered_at)
    stale = next(e for e in planned if e.payload["event"] == "paused")
    assert apply_lifecycle(state, stale.payload, rules).outcome == BEFORE_PERIOD


def test_an_appeal_the_demo_did_not_plan_gets_no_events() -> None:
    """The readiness probe, or a registration read twice."""
    awaiting = AwaitingRegistration()
    assert awaiting.registered("0" * 24, SENT) == []


def test_the_watcher_reads_registered_at_from_appeals_registered() -> None:
    settings = Settings.load({})
    appeal = _paused_incident()
    value = _registered_record(appeal, SENT + LAG)
    batches: list[dict[Any, list[Any]]] = [
        {TopicPartition(t.topic_name(settings, t.REGISTERED), 0): [
            SimpleNamespace(value=value)]}]

    class Consumer:
        async def getmany(self, **_: Any) -> dict[Any, list[Any]]:
            if batches:
                return batches.pop(0)
            raise asyncio.CancelledError

    tally = Tally()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_watch(Consumer(), settings, tally))
    assert tally.registered == 1
    assert tally.registrations == [(appeal.appeal_id, pytest.approx(SENT + LAG, abs=0.001))]
