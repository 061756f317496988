"""Bad input to the triage agent is dead-lettered with its reason; the rest goes on (no broker).

- A pending copy that routing could not use (``{"appeal_id": X}`` with no region, regime or
  registration time; a field of the wrong type or value) is refused when it arrives, so it
  never waits in the table for the decision that would trip over it.
- A copy stored before that check (it comes back from the changelog unchecked) is checked
  again when its decision arrives: the decision is dead-lettered as ``unprocessable`` and the
  table is left as it was. The same for a waiting decision when its appeal arrives; and a
  decision with a category the routed record could not carry is refused when it arrives.
- Any ``KeyError``/``ValueError``/``TypeError`` while an event is applied dead-letters that
  event as ``unprocessable`` (the exception type in the detail, nothing of the payload in the
  log) instead of escaping the batch, where ``crash_on_error`` would end the process and the
  replay would end the next one the same way.

The old agent stored any object with a string ``appeal_id`` and caught only ``InvalidEvent``:
each case here raised out of ``process_batch``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.settings import Settings
from workers.route import agent as A
from workers.routing import RouteDecision, RouteInput, Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
T0 = 1_790_000_000.0
TEXT = "Яма на дороге у дома Проверкина"


class Outbox:
    """Sends and dead letters, in order; ``flush`` acknowledges."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.dead: list[dict[str, Any]] = []

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((base, orjson.loads(value)))

    async def send_record(self, base: str, key: str, record: Any) -> None:
        await self.send(base, key.encode(), record.to_json())

    async def dead_letter(self, event: Any, **kw: Any) -> None:
        self.dead.append({**kw, "topic": event.message.topic,
                          "appeal_id": orjson.loads(event.message.value).get("appeal_id")})

    async def dead_letter_raw(self, raw: bytes, key: bytes | None, **kw: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {kw}")

    async def flush(self) -> None:
        pass

    def routed(self) -> list[str]:
        return [v["appeal_id"] for base, v in self.sent if base == t.ROUTED]


#: A value for ``pending(**changes)`` that leaves the field out.
_DROP = object()


def pending(appeal_id: str, /, **changes: Any) -> dict[str, Any]:
    value = {"appeal_id": appeal_id, "regime": "pos", "region": "22",
             "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web",
             "subcategory": None, "municipality": "Барнаул", "text": TEXT, "address": None,
             "complaint_about": None, "urgent": False, "confidence": 0.3,
             "classifier_version": "m"}
    value.update(changes)
    return {k: v for k, v in value.items() if v is not _DROP}


def decision(appeal_id: str, **changes: Any) -> dict[str, Any]:
    value = {"schema_version": 1, "event_id": f"{appeal_id}:t", "appeal_id": appeal_id,
             "event": "triaged", "at": "2026-11-24T03:00:00+00:00", "category": "roads",
             **changes}
    return {k: v for k, v in value.items() if v is not _DROP}


def event(topic: str, value: dict[str, Any]) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=0, offset=0, timestamp=T0, value=orjson.dumps(value),
        key=str(value.get("appeal_id")).encode()))


def run(outbox: Outbox, table: dict[bytes, Any], router: Router,
        *batches: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Each batch through ``process_batch``, as the agent runs it (one EarlyDecisions)."""
    early = A.EarlyDecisions(SETTINGS.partitions)

    async def go() -> None:
        for batch in batches:
            await A.process_batch(outbox, table, router, early,  # type: ignore[arg-type]
                                  [event(topic, value) for topic, value in batch], DECISIONS)

    asyncio.run(go())


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def test_a_pending_copy_without_routing_fields_is_dead_lettered_on_arrival(
        router: Router) -> None:
    """The reviewer's case: ``{"appeal_id": X}``, then a valid decision for X."""
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router,
        [(PENDING, pending("good")), (PENDING, {"appeal_id": "bad"})],
        [(DECISIONS, decision("bad")), (DECISIONS, decision("good"))])
    assert [(d["reason"], d["stage"], d["topic"], d["appeal_id"]) for d in outbox.dead] == [
        ("missing_field", "triage", PENDING, "bad")]
    assert "regime" in outbox.dead[0]["detail"]
    assert outbox.routed() == ["good"]
    # The decision for it waits, like any decision without its appeal (then not_triaged).
    assert A._is_early(table[b"bad"]) and table[b"good"]["done"]


@pytest.mark.parametrize(("changes", "reason", "field"), [
    ({"region": _DROP}, "missing_field", "region"),
    ({"registered_at": None}, "missing_field", "registered_at"),
    ({"regime": "xx"}, "invalid_value", "regime"),
    ({"region": 22}, "wrong_type", "region"),
    ({"registered_at": 1700000000}, "wrong_type", "registered_at"),
    ({"registered_at": "2026-11-24T02:00:00"}, "invalid_value", "registered_at"),
    ({"registered_at": "9999-12-31T23:00:00-05:00"}, "invalid_value", "registered_at"),
    ({"registered_at": "yesterday"}, "invalid_value", "registered_at"),
    ({"text": 5}, "wrong_type", "text"),
    ({"complaint_about": ["a"]}, "wrong_type", "complaint_about"),
    ({"urgent": "yes"}, "wrong_type", "urgent"),
    ({"confidence": "0.3"}, "wrong_type", "confidence"),
    ({"confidence": 3}, "invalid_value", "confidence"),
    ({"classifier_category": "potholes"}, "invalid_value", "classifier_category"),
    ({"appeal_id": 12345}, "invalid_value", "appeal_id"),
])
def test_each_fault_of_a_pending_copy_is_named(router: Router, changes: dict[str, Any],
                                               reason: str, field: str) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router, [(PENDING, pending("bad", **changes)), (PENDING, pending("ok"))],
        [(DECISIONS, decision("ok"))])
    assert [(d["reason"], d["topic"]) for d in outbox.dead] == [(reason, PENDING)]
    assert field in outbox.dead[0]["detail"]
    assert TEXT not in outbox.dead[0]["detail"]
    assert outbox.routed() == ["ok"] and b"bad" not in table


def test_a_decision_for_a_bad_copy_stored_before_the_check_is_dead_lettered(
        router: Router) -> None:
    """The table came back from a changelog written by the unchecking version."""
    stored = {"appeal_id": "old"}
    outbox, table = Outbox(), {b"old": stored}
    run(outbox, table, router,
        [(DECISIONS, decision("old")), (PENDING, pending("good")), (DECISIONS, decision("good"))])
    assert [(d["reason"], d["topic"], d["appeal_id"]) for d in outbox.dead] == [
        ("unprocessable", DECISIONS, "old")]
    assert "missing_field" in outbox.dead[0]["detail"]
    assert outbox.routed() == ["good"]
    assert table[b"old"] is stored, "neither routed on a guess nor dropped unseen"


def test_an_appeal_for_a_bad_decision_stored_before_the_check_is_dead_lettered(
        router: Router) -> None:
    """A decision that overtook its appeal and waited since before decisions were checked."""
    waiting = {"decision": decision("w", category="potholes"), "since": T0, "p": 0, "offset": 7}
    outbox, table = Outbox(), {b"w": waiting}
    run(outbox, table, router, [(PENDING, pending("w")), (PENDING, pending("ok"))],
        [(DECISIONS, decision("ok"))])
    assert [(d["reason"], d["topic"], d["appeal_id"]) for d in outbox.dead] == [
        ("unprocessable", PENDING, "w")]
    assert "invalid_value" in outbox.dead[0]["detail"]
    assert outbox.routed() == ["ok"] and table[b"w"] is waiting


def test_a_value_in_the_table_that_is_not_an_object_is_refused(router: Router) -> None:
    outbox, table = Outbox(), {b"junk": [1, 2, 3], b"junk2": "p"}
    run(outbox, table, router,
        [(DECISIONS, decision("junk")), (PENDING, pending("junk2")), (PENDING, pending("ok")),
         (DECISIONS, decision("ok"))])
    assert [(d["reason"], d["appeal_id"]) for d in outbox.dead] == [
        ("unprocessable", "junk"), ("unprocessable", "junk2")]
    assert outbox.routed() == ["ok"]


@pytest.mark.parametrize(("changes", "reason"), [
    ({"category": "potholes"}, "invalid_value"),
    ({"category": None}, "invalid_value"),
    ({"urgent": "no"}, "wrong_type"),
    # Checked against the lifecycle-event schema, and it must be a triage decision.
    ({"event": "answered"}, "invalid_value"),
    ({"event": "redirected", "to_authority_id": "22-minzdrav"}, "invalid_value"),
    ({"event_id": _DROP}, "missing_field"),
    ({"event_id": ""}, "invalid_value"),
    ({"at": _DROP}, "missing_field"),
    ({"at": "tomorrow"}, "invalid_value"),
    ({"at": "2026-11-24T03:00:00"}, "invalid_value"),
    ({"note": "x"}, "unknown_field"),
])
def test_a_decision_the_routed_record_could_not_carry_is_refused(
        router: Router, changes: dict[str, Any], reason: str) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router, [(PENDING, pending("a1"))],
        [(DECISIONS, decision("a1", **changes)), (DECISIONS, decision("a1"))])
    assert [(d["reason"], d["topic"]) for d in outbox.dead] == [(reason, DECISIONS)]
    assert outbox.routed() == ["a1"], "the next, valid decision still routes it"


def test_another_lifecycle_event_with_a_category_is_no_triage_decision(router: Router) -> None:
    """The reviewer's case: an ``answered`` event with a category and neither ``event_id`` nor
    ``at`` routed the waiting appeal to healthcare and became a training line."""
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    answered = {"schema_version": 1, "appeal_id": "a1", "event": "answered",
                "category": "healthcare"}
    run(outbox, table, router, [(PENDING, pending("a1")), (DECISIONS, answered)])
    assert [(d["reason"], d["topic"]) for d in outbox.dead] == [("invalid_value", DECISIONS)]
    assert "triaged" in outbox.dead[0]["detail"]
    assert outbox.sent == [], "neither routed nor published as training data"
    assert "decision" not in table[b"a1"] and not table[b"a1"].get("done"), "still waiting"


class FaultyRouter(Router):
    """Fails for one appeal the way an unforeseen bug or shape would."""

    def __init__(self, fault: Exception) -> None:
        super().__init__(load_rules())
        self.fault = fault

    def route(self, appeal: RouteInput) -> RouteDecision:
        if appeal.appeal_id == "boom":
            raise self.fault
        return super().route(appeal)


@pytest.mark.parametrize("fault", [KeyError("region"), ValueError(TEXT), TypeError(TEXT)])
def test_a_fault_while_applying_an_event_is_dead_lettered_as_unprocessable(
        fault: Exception, caplog: pytest.LogCaptureFixture) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    with caplog.at_level(logging.WARNING, logger=A.__name__):
        run(outbox, table, FaultyRouter(fault),
            [(PENDING, pending("boom")), (PENDING, pending("ok"))],
            [(DECISIONS, decision("boom")), (DECISIONS, decision("ok"))])
    assert [(d["reason"], d["topic"], d["appeal_id"]) for d in outbox.dead] == [
        ("unprocessable", DECISIONS, "boom")]
    detail = outbox.dead[0]["detail"]
    assert type(fault).__name__ in detail and TEXT not in detail
    assert TEXT not in caplog.text and type(fault).__name__ in caplog.text
    assert outbox.routed() == ["ok"], "nothing of the failed event was sent"
    assert [v["appeal_id"] for base, v in outbox.sent if base == t.TRIAGE_FEEDBACK] == ["ok"]
    stored = {k: v for k, v in table[b"boom"].items() if k not in A._WAIT_FIELDS}
    assert stored == pending("boom"), "no done marker: a later decision can route it"
