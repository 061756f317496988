"""The triage agent reads only the versions it knows, on both of its inputs.

Decisions (``appeals.triage.decisions``, lifecycle events) were taken whatever their
``schema_version`` said: a v2 decision, or one whose version was ``"anything"``, routed the
appeal. Pending copies (``appeals.triage.pending``) carried no version at all, so a later
change of their shape could not be told apart. Now a decision of another version (or none) is
refused, a pending copy is written with ``schema_version: 1`` and one of another version is
refused, while a copy without the field (written before it existed, possibly still in the topic
and in the table's changelog) is read as version 1.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from streams import topics as t
from workers.route import agent as A

DECISION = {"schema_version": 1, "event_id": "t", "appeal_id": "c" * 24, "event": "triaged",
            "at": "2026-11-25T10:00:00Z", "category": "roads"}
PENDING = {"appeal_id": "c" * 24, "regime": "pos", "region": "22",
           "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web", "text": "Яма",
           "urgent": False, "confidence": 0.3, "classifier_version": "m"}


@pytest.mark.parametrize("version", [2, 0, "1", "anything", True, None])
def test_a_decision_of_another_version_is_refused(version: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        A.check_decision(dict(DECISION, schema_version=version))
    assert info.value.reason == "unsupported_schema_version"


def test_a_decision_without_a_version_is_refused() -> None:
    decision = dict(DECISION)
    del decision["schema_version"]
    with pytest.raises(InvalidEvent) as info:
        A.check_decision(decision)
    assert info.value.reason == "missing_field" and "schema_version" in info.value.detail


def test_a_decision_of_version_one_is_taken() -> None:
    assert A.check_decision(DECISION) == "c" * 24


@pytest.mark.parametrize("version", [2, "1", True, None])
def test_a_pending_copy_of_another_version_is_refused(version: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        A.check_pending(dict(PENDING, schema_version=version))
    assert info.value.reason == "unsupported_schema_version"


def test_a_pending_copy_without_a_version_is_version_one() -> None:
    assert A.check_pending(PENDING) == "c" * 24
    assert A.check_pending(dict(PENDING, schema_version=1)) == "c" * 24


class _Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def send_record(self, topic: str, key: str, record: Any) -> None:
        self.sent.append((topic, record))

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, orjson.loads(value)))


def test_the_pending_copy_is_written_with_its_version_and_reads_back() -> None:
    appeal = {k: PENDING.get(k) for k in A.ROUTE_FIELDS}
    result = SimpleNamespace(top3=[("roads", 0.3), ("transport", 0.2), ("other", 0.1)],
                             category="roads", urgent=False, confidence=0.3, model_version="m")
    outbox = _Outbox()
    asyncio.run(A._to_triage(outbox, appeal, result))  # type: ignore[arg-type]
    [copy] = [value for topic, value in outbox.sent if topic == t.TRIAGE_PENDING]
    assert copy["schema_version"] == 1
    assert A.check_pending(copy) == "c" * 24
