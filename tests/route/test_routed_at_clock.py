"""``routed_at`` is read on the SLA clock, the clock intake stamps ``registered_at`` with.

With ``APPEALS_TIME_SCALE`` above 1 (the demo runs a day a second) the SLA clock runs ahead of
the wall clock; a routed record stamped with the wall clock said it was routed weeks before it
was registered. Both routing paths are checked: the direct one (:func:`classify_and_route`) and
the triage agent's (a human's decision, :func:`process_batch`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings
from tests.route.route_support import RecordingOutbox
from workers.route import agent as A
from workers.routing import Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
#: A demo that has run for 20 s at a day a second: the SLA clock is 20 days ahead.
NOW = datetime.fromtimestamp(time.time(), UTC) + timedelta(days=20)


class FrozenClock(SlaClock):
    """The SLA clock of such a demo, stopped at NOW: what the agent stamps is exact."""

    def __init__(self) -> None:
        super().__init__(86400.0, time.time() - 20)

    def now(self) -> float:
        return NOW.timestamp()


CLOCK = FrozenClock()


class Outbox(RecordingOutbox):
    def __init__(self) -> None:
        super().__init__(strict=True)


class Classifier:
    def __init__(self, confidence: float) -> None:
        self.result = SimpleNamespace(category="roads", urgent=False, confidence=confidence,
                                      model_version="m", top3=[("roads", confidence)])

    def classify_batch(self, texts: list[str]) -> list[Any]:
        return [self.result for _ in texts]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def appeal(appeal_id: str) -> dict[str, Any]:
    return {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
            "registered_at": (NOW - timedelta(hours=1)).isoformat(timespec="milliseconds"),
            "channel": "fz59", "subcategory": None, "municipality": "Бийск",
            "text": "Яма на дороге на улице Ленина в Бийске", "address": None,
            "complaint_about": None, "importance": None, "subject": None, "duplicate_of": None}


def _routed_at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["routed_at"])


def test_a_directly_routed_appeal_is_routed_after_its_registration(router: Router) -> None:
    outbox = Outbox()
    ctx = SimpleNamespace(settings=SETTINGS, clock=CLOCK)
    asyncio.run(A.classify_and_route(ctx, outbox, [appeal("ab" * 12)],  # type: ignore[arg-type]
                                     Classifier(0.9), router))
    [record] = outbox.routed
    assert abs(_routed_at(record) - NOW) < timedelta(milliseconds=1), record["routed_at"]


def test_a_triaged_appeal_is_routed_after_its_registration(router: Router) -> None:
    appeal_id = "cd" * 12
    copy = {**appeal(appeal_id), "urgent": False, "confidence": 0.3,
            "classifier_category": "roads", "classifier_version": "m", "schema_version": 1}
    decision = {"schema_version": 1, "event_id": "e1", "appeal_id": appeal_id,
                "event": "triaged", "at": CLOCK.now_dt().isoformat(timespec="seconds"),
                "category": "roads"}
    events = [SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=0, offset=n, timestamp=time.time(), key=appeal_id.encode(),
        value=orjson.dumps(value))) for n, (topic, value) in enumerate(
            [(PENDING, copy), (DECISIONS, decision)])]
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    asyncio.run(A.process_batch(outbox, table, router,  # type: ignore[arg-type]
                                A.EarlyDecisions(SETTINGS.partitions), events, DECISIONS,
                                clock=CLOCK))
    [record] = outbox.routed
    assert abs(_routed_at(record) - NOW) < timedelta(milliseconds=1), record["routed_at"]
