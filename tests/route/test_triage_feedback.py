"""The triage agent publishes each decision it routes on as training data (no broker).

- A decision that routes an appeal also sends a ``TriageFeedback`` record to
  ``appeals.triage.feedback``, keyed by ``appeal_id``, in the same outbox as the routed record:
  the decided category, the urgency the appeal was *routed* with (the decision's, or the
  classifier's when the decision left it null), the appeal text, and no personal fields.
- A decision that overtook its appeal publishes it when the appeal arrives; a repeated decision
  publishes nothing; a failed flush leaves no done marker, so the replay publishes it again.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from schemas.records import TriageFeedback
from schemas.validation import validate
from streams import topics as t
from streams.settings import Settings
from workers.route import agent as A
from workers.routing import Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
T0 = 1_790_000_000.0
PERSONAL = {"author", "name", "phone", "email", "address", "handle", "attachments"}


class Outbox:
    """Every send with its topic; ``flush`` acknowledges them (or fails, like a lost broker)."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.acked: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.fail_flush = fail_flush

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((base, key, orjson.loads(value)))

    async def send_record(self, base: str, key: str | None, record: Any) -> None:
        await self.send(base, key.encode() if key is not None else None, record.to_json())

    async def dead_letter(self, event: Any, **kw: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {kw}")

    async def dead_letter_raw(self, raw: bytes, key: bytes | None, **kw: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {kw}")

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker gone")
        self.acked.extend(self.sent[len(self.acked):])

    def on(self, base: str) -> list[dict[str, Any]]:
        return [v for b, _, v in self.acked if b == base]


_offsets = iter(range(10**6))


def _event(topic: str, value: dict[str, Any], ts: float) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=0, offset=next(_offsets), timestamp=ts,
        value=orjson.dumps(value), key=value["appeal_id"].encode()))


def pending(appeal_id: str, *, urgent: bool = True, text: str = "Пахнет газом в подъезде",
            ts: float = T0) -> Any:
    # The pending copy as _to_triage writes it: ROUTE_FIELDS + the classifier's output.
    value = {"appeal_id": appeal_id, "regime": "pos", "region": "22",
             "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web",
             "subcategory": None, "municipality": "Барнаул", "text": text,
             "address": "г. Барнаул, ул. Мира, 1", "complaint_about": None, "urgent": urgent,
             "confidence": 0.312345, "classifier_version": "2.0+abc"}
    return _event(PENDING, value, ts)


def decision(appeal_id: str, ts: float = T0 + 1, **extra: Any) -> Any:
    value = {"schema_version": 1, "event_id": f"{appeal_id}:t", "appeal_id": appeal_id,
             "event": "triaged", "at": "2026-11-24T03:00:00+00:00",
             "category": "housing_utilities", **extra}
    return _event(DECISIONS, value, ts)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def run(outbox: Outbox, table: dict[bytes, Any], router: Router, *batches: list[Any]) -> None:
    early = A.EarlyDecisions(SETTINGS.partitions)
    for events in batches:
        asyncio.run(A.process_batch(outbox, table, router, early, events,  # type: ignore[arg-type]
                                    DECISIONS))


@pytest.mark.parametrize(("decided", "routed"), [(None, True), (False, False), (True, True)])
def test_a_routed_decision_is_published_as_feedback(router: Router, decided: bool | None,
                                                    routed: bool) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router, [pending("a1", urgent=True)], [decision("a1", urgent=decided)])
    [routed_rec] = outbox.on(t.ROUTED)
    [feedback] = outbox.on(t.TRIAGE_FEEDBACK)
    assert routed_rec["urgent"] is routed
    assert feedback == {
        "schema_version": 1, "appeal_id": "a1", "text": "Пахнет газом в подъезде",
        "category": "housing_utilities", "urgent": routed,
        "decided_at": "2026-11-24T03:00:00+00:00", "classifier_category": None,
        "confidence": 0.3123, "classifier_version": "2.0+abc"}
    validate(TriageFeedback.schema, feedback)
    assert not PERSONAL & set(feedback), "no personal fields besides the text"
    keys = [k for b, k, _ in outbox.acked if b == t.TRIAGE_FEEDBACK]
    assert keys == [b"a1"], "keyed by appeal_id"
    assert table[b"a1"]["done"]


def test_repeated_decisions_publish_once_and_early_ones_when_the_appeal_comes(
        router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router,
        [pending("a1"), decision("a1", category="roads", urgent=False)],
        [decision("a1", category="roads", urgent=False)],  # a repeat: ignored
        [decision("a2", category="ecology")],             # overtook its appeal
        [pending("a2", urgent=False, text="Свалка у реки")])
    assert [(f["appeal_id"], f["category"], f["urgent"]) for f in outbox.on(t.TRIAGE_FEEDBACK)] \
        == [("a1", "roads", False), ("a2", "ecology", False)]
    assert len(outbox.on(t.ROUTED)) == 2


def test_feedback_is_acknowledged_with_the_routed_record_before_the_table(
        router: Router) -> None:
    table: dict[bytes, Any] = {}
    run(Outbox(), table, router, [pending("a1")])
    before = dict(table)
    broken = Outbox(fail_flush=True)
    with pytest.raises(ConnectionError):
        run(broken, table, router, [decision("a1")])
    assert [b for b, _, _ in broken.sent] == [t.ROUTED, t.TRIAGE_FEEDBACK]
    assert table == before, "no done marker without the acknowledgement"
    replay = Outbox()
    run(replay, table, router, [decision("a1")])
    assert [f["appeal_id"] for f in replay.on(t.TRIAGE_FEEDBACK)] == ["a1"]


def test_decided_at_falls_back_to_now_without_an_instant() -> None:
    # A decision without an instant is refused when it arrives (the lifecycle-event schema,
    # tests/route/test_triage_bad_input.py); the fallback stays for anything else.
    decided = A._decided_at("2026-11-24T03:00:00")
    assert decided != "2026-11-24T03:00:00" and A.is_datetime(decided)


def test_an_appeal_without_text_routes_but_teaches_nothing(router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router, [pending("a1", text="  "), decision("a1")])
    assert len(outbox.on(t.ROUTED)) == 1 and outbox.on(t.TRIAGE_FEEDBACK) == []


def test_the_pending_copy_keeps_the_classifier_category_for_the_feedback(
        router: Router) -> None:
    """``_to_triage`` wrote the classifier's urgency and confidence into the pending copy but
    not its category, so every feedback line said ``classifier_category: null``."""
    appeal = {"appeal_id": "a9", "regime": "pos", "region": "22",
              "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web",
              "subcategory": None, "municipality": "Барнаул", "text": "Пахнет газом в подъезде",
              "address": None, "complaint_about": None, "importance": None}
    result = SimpleNamespace(category="ecology", urgent=True, confidence=0.31,
                             model_version="2.0+abc",
                             top3=(("ecology", 0.31), ("housing_utilities", 0.3),
                                   ("safety", 0.2)))
    first = Outbox()
    asyncio.run(A._to_triage(first, appeal, result))  # type: ignore[arg-type]
    [copy] = [v for b, _, v in first.sent if b == t.TRIAGE_PENDING]
    assert copy["classifier_category"] == "ecology"
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    run(outbox, table, router, [_event(PENDING, copy, T0)], [decision("a9")])
    [feedback] = outbox.on(t.TRIAGE_FEEDBACK)
    assert (feedback["classifier_category"], feedback["category"]) == (
        "ecology", "housing_utilities")
