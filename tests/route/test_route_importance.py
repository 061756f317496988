"""An appeal registered with ``importance: high`` is routed ``urgent``, on both routing paths.

The SLA agent picks a policy's shorter ``urgent_answer`` from the routed record's ``urgent``
flag alone, and the classifier reads only the text. DESIGN §2 gives the incident regime's first
response "by region and importance; 4 h for high importance is common" (policies.toml: 8
working hours, ``urgent_answer = 4``), so the intake's importance has to reach that flag: before
this, a native incident marked high and registered Mon 10:00 was due at 18:00, not 14:00.

- Direct path (:func:`classify_and_route`): urgent = classifier urgent OR importance high.
- Triage path: the pending copy carries the importance; a decision's explicit ``urgent`` wins,
  a null one falls back to the same rule. The feedback label stays the decision's or the
  classifier's flag (it trains a classifier of the text; the importance is not in the text).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import workers.intake.adapters  # noqa: F401  (registers the native adapters)
from schemas.records import RoutedAppeal, SourcePosition
from schemas.validation import InvalidEvent, validate
from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings
from tests.route.route_support import RecordingOutbox
from workers.intake.agent import route_view
from workers.intake.core import intake_from_dict, register
from workers.route import agent as A
from workers.routing import Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
BARNAUL = dt.timezone(dt.timedelta(hours=7))
MONDAY_10 = dt.datetime(2026, 3, 16, 10, 0, tzinfo=BARNAUL)


class Outbox(RecordingOutbox):
    """Every send, decoded, with its topic base name; a dead letter fails the test."""

    def __init__(self) -> None:
        super().__init__(strict=True)


class Classifier:
    """The classifier's verdict for every text: a category it is sure or unsure of."""

    def __init__(self, *, urgent: bool, confidence: float) -> None:
        self.result = SimpleNamespace(
            category="landscaping", urgent=urgent, confidence=confidence, model_version="m",
            top3=[("landscaping", confidence), ("housing_utilities", 0.1), ("other", 0.05)])

    def classify_batch(self, texts: list[str]) -> list[Any]:
        return [self.result for _ in texts]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def incident(importance: str | None, incident_id: str = "inc-1") -> dict[str, Any]:
    """A native incident as the ЦУР system sends it, registered Mon 10:00 Barnaul time, in the
    shape intake hands to routing (:func:`route_view`)."""
    raw = {"channel": "incident", "incident_id": incident_id,
           "published_at": MONDAY_10.isoformat(), "region": "22", "municipality": "г. Барнаул",
           "text": "На улице Ленина в Барнауле не убирают мусор во дворе уже неделю",
           "author": {"handle": "@x"}}
    if importance is not None:
        raw["importance"] = importance
    intake = intake_from_dict(raw, channel_hint="incident")
    source = SourcePosition("appeals.intake.incident", 0, 0)
    return route_view(register(intake, registered_at=MONDAY_10, source=source))


def classify_and_route(router: Router, appeals: list[dict[str, Any]], *, urgent: bool,
                       confidence: float) -> Outbox:
    outbox = Outbox()
    ctx = SimpleNamespace(settings=SETTINGS, clock=SlaClock())
    asyncio.run(A.classify_and_route(ctx, outbox, appeals,  # type: ignore[arg-type]
                                     Classifier(urgent=urgent, confidence=confidence), router))
    return outbox


def test_the_registered_importance_reaches_routing() -> None:
    assert incident("высокая")["importance"] == "high"
    assert incident(None)["importance"] is None


@pytest.mark.parametrize(("classifier_urgent", "importance", "urgent"), [
    (False, "high", True),
    (False, "normal", False),
    (False, "low", False),
    (False, None, False),
    (True, "low", True),
    (True, None, True),
])
def test_a_directly_routed_appeal_is_urgent_when_its_importance_is_high(
        router: Router, classifier_urgent: bool, importance: str | None, urgent: bool) -> None:
    outbox = classify_and_route(router, [incident(importance)], urgent=classifier_urgent,
                                confidence=0.9)
    [routed] = outbox.on(t.ROUTED)
    assert routed["urgent"] is urgent
    assert "importance" not in routed, "the routed-appeal schema is unchanged"
    validate(RoutedAppeal.schema, routed)


def test_a_high_importance_incident_gets_the_urgent_first_response_deadline(
        router: Router) -> None:
    """The property DESIGN §2 asks for, through the SLA engine as the SLA agent builds it."""
    from workers.geo.regions import region_timezone
    from workers.sla.deadline_service import DeadlineService, load_book
    from workers.sla.engine import new_state

    rules = DeadlineService(load_book(router.rules.authorities.values())).rules()
    tz = region_timezone("22")
    dues = {}
    for importance in ("high", "normal"):
        [routed] = classify_and_route(router, [incident(importance)], urgent=False,
                                      confidence=0.9).on(t.ROUTED)
        assert routed["regime"] == "incident"
        state, _ = new_state(routed, 0, MONDAY_10.timestamp(), tz, rules)
        dues[importance] = dt.datetime.fromtimestamp(state["due"], BARNAUL)
    assert dues == {"high": MONDAY_10.replace(hour=14), "normal": MONDAY_10.replace(hour=18)}


def _event(topic: str, value: dict[str, Any]) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=0, offset=0, timestamp=1_790_000_000.0,
        value=orjson.dumps(value), key=value["appeal_id"].encode()))


def _decision(appeal_id: str, **extra: Any) -> Any:
    return _event(DECISIONS, {"schema_version": 1, "event_id": f"{appeal_id}:t",
                              "appeal_id": appeal_id, "event": "triaged",
                              "at": "2026-03-16T04:00:00+00:00", "category": "landscaping",
                              **extra})


@pytest.mark.parametrize(("importance", "decided", "urgent"), [
    ("high", None, True),     # the decision left it open: high importance makes it urgent
    ("high", False, False),   # a human's explicit "not urgent" wins
    ("normal", None, False),
    ("normal", True, True),
])
def test_a_triaged_appeal_is_urgent_when_its_importance_is_high(
        router: Router, importance: str, decided: bool | None, urgent: bool) -> None:
    appeal = incident(importance)
    unsure = classify_and_route(router, [appeal], urgent=False, confidence=0.2)
    assert unsure.on(t.ROUTED) == []
    [copy] = unsure.on(t.TRIAGE_PENDING)
    assert copy["importance"] == importance, "the pending copy carries the importance"
    [item] = unsure.on(t.TRIAGE)
    assert item["urgent"] is (importance == "high"), (
        "the desk sees what the appeal will be routed with unless it says otherwise")

    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    early = A.EarlyDecisions(SETTINGS.partitions)
    asyncio.run(A.process_batch(
        outbox, table, router, early,  # type: ignore[arg-type]
        [_event(PENDING, copy), _decision(appeal["appeal_id"], urgent=decided)], DECISIONS))
    [routed] = outbox.on(t.ROUTED)
    assert routed["urgent"] is urgent
    validate(RoutedAppeal.schema, routed)
    [feedback] = outbox.on(t.TRIAGE_FEEDBACK)
    assert feedback["urgent"] is (False if decided is None else decided), \
        "the training label is the decision's or the classifier's flag, not the importance"


def test_a_pending_copy_from_before_the_importance_was_carried_still_routes(
        router: Router) -> None:
    copy = {k: v for k, v in incident("high").items() if k != "importance"}
    copy.update(urgent=False, confidence=0.2, classifier_version="m")
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    asyncio.run(A.process_batch(
        outbox, table, router, A.EarlyDecisions(SETTINGS.partitions),  # type: ignore[arg-type]
        [_event(PENDING, copy), _decision(copy["appeal_id"])], DECISIONS))
    assert [r["urgent"] for r in outbox.on(t.ROUTED)] == [False]


@pytest.mark.parametrize("importance", ["urgent", 3, ""])
def test_a_pending_copy_with_an_importance_routing_cannot_read_is_refused(
        importance: object) -> None:
    copy = {**incident(None), "importance": importance, "urgent": False}
    with pytest.raises(InvalidEvent) as caught:
        A.check_pending(copy)
    assert caught.value.reason == "invalid_value"
    assert "importance" in caught.value.detail


def test_a_nan_confidence_is_not_routed(router: Router) -> None:
    """``nan < threshold`` is False, so a damaged model's NaN confidence was routed as sure
    (review of session 18); the classifier now refuses such a model, and routing still sends
    a confidence that is not at least the threshold to triage."""
    outbox = classify_and_route(router, [incident(None)], urgent=False,
                                confidence=float("nan"))
    assert outbox.on(t.ROUTED) == []
