"""A triage input whose Kafka key is not its appeal id is dead-lettered as ``key_mismatch``.

The triage table is keyed by the appeal id of the payload, the record sits on the partition of
its Kafka key. With two workers splitting the partitions, a decision keyed otherwise landed on a
worker that does not own its appeal's table partition: it found no appeal, its wait was staged
under a key whose partition that worker does not own and dropped by the commit, and it vanished
(no routing, no dead letter, no wait to expire). A mis-keyed pending copy was stored where no
decision for it would look. Both are now refused on arrival, as the SLA agent refuses a routed
record keyed otherwise.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.settings import Settings
from tests.route.route_support import RecordingOutbox
from workers.route import agent as A
from workers.routing import Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
T0 = 1_790_000_000.0
PART = A.EarlyDecisions(SETTINGS.partitions).partition_of
TEXT = "Яма на дороге у дома Проверкина"


class Outbox(RecordingOutbox):
    @property
    def routed_ids(self) -> list[str]:
        return [r["appeal_id"] for r in self.routed]


def pending(appeal_id: str) -> dict[str, Any]:
    return {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
            "registered_at": "2026-11-24T02:00:00+00:00", "channel": "fz59",
            "subcategory": None, "municipality": "Бийск", "text": TEXT, "address": None,
            "complaint_about": None, "urgent": False, "confidence": 0.3,
            "classifier_category": "roads", "classifier_version": "m", "schema_version": 1}


def decision(appeal_id: str) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"{appeal_id}:t", "appeal_id": appeal_id,
            "event": "triaged", "at": "2026-11-24T03:00:00+00:00", "category": "roads"}


def event(topic: str, value: dict[str, Any], key: bytes | None, ts: float = T0) -> Any:
    partition = PART(key) if key is not None else 0
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=partition, offset=0, timestamp=ts, key=key,
        value=orjson.dumps(value)))


class Worker:
    """One of two workers: its own table and partitions."""

    def __init__(self, owned: set[int]) -> None:
        self.owned = owned
        self.table: dict[bytes, Any] = {}
        self.early = A.EarlyDecisions(SETTINGS.partitions)

    def run(self, router: Router, *events: Any) -> Outbox:
        outbox = Outbox()
        asyncio.run(A.process_batch(outbox, self.table, router,  # type: ignore[arg-type]
                                    self.early, list(events), DECISIONS, lambda: self.owned))
        return outbox


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def _ids(first: set[int]) -> tuple[str, bytes]:
    """An appeal id whose partition is not in ``first``, and a key whose partition is."""
    x = next(f"{i:024x}" for i in range(1000) if PART(f"{i:024x}".encode()) not in first)
    k = next(f"key-{i}".encode() for i in range(1000) if PART(f"key-{i}".encode()) in first)
    return x, k


def test_a_mis_keyed_decision_is_dead_lettered_not_lost(router: Router) -> None:
    a, b = Worker({0, 1}), Worker({2, 3})
    x, k = _ids(a.owned)
    assert b.run(router, event(PENDING, pending(x), x.encode())).dead == []
    out = a.run(router, event(DECISIONS, decision(x), k))
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("key_mismatch", DECISIONS)]
    assert "appeal_id" in out.dead[0]["detail"] and x not in out.dead[0]["detail"]
    assert out.routed_ids == [] and a.table == {}
    # The same decision keyed by its appeal id reaches the owner and routes the appeal.
    assert b.run(router, event(DECISIONS, decision(x), x.encode())).routed_ids == [x]


@pytest.mark.parametrize("key", [b"somebody-else", None, b"AB" * 12])
def test_a_mis_keyed_pending_copy_is_dead_lettered(router: Router, key: bytes | None) -> None:
    worker = Worker({0, 1, 2, 3})
    appeal_id = "ab" * 12
    out = worker.run(router, event(PENDING, pending(appeal_id), key))
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("key_mismatch", PENDING)]
    assert TEXT not in out.dead[0]["detail"]
    assert worker.table == {}


def test_a_well_keyed_decision_and_copy_still_route(router: Router) -> None:
    worker = Worker({0, 1, 2, 3})
    appeal_id = "cd" * 12
    out = worker.run(router, event(PENDING, pending(appeal_id), appeal_id.encode()),
                     event(DECISIONS, decision(appeal_id), appeal_id.encode()))
    assert out.dead == [] and out.routed_ids == [appeal_id]
