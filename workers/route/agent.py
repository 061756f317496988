"""Classification and routing, and the triage agent for appeals the model is unsure of.

:func:`classify_and_route` runs inside the intake agent, on the batch it has just registered
(classification vectorises a whole batch far cheaper than one text at a time, and routing in
the same step saves a hop: an appeal is consumed once on its way to the SLA agent). An appeal
the model is unsure of goes to the human triage queue instead of being routed on a guess: a
``TriageItem`` for people and a pending copy for the triage agent, keyed by ``appeal_id``.

The triage agent keeps the pending appeals in a table until a triage decision (a ``triaged``
lifecycle event) names the category, then routes the appeal once. A decision that overtakes its
pending appeal (different topics) waits in the same table for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from monitoring import metrics
from schemas.records import RoutedAppeal, TriageCandidate, TriageItem
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.routing import RouteInput, Router
from workers.runtime import (
    Outbox,
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)

log = logging.getLogger(__name__)

STAGE = "route"
TRIAGE_STAGE = "triage"

#: The fields of a registered appeal that classification and routing read.
ROUTE_FIELDS = ("appeal_id", "regime", "region", "registered_at", "channel", "subcategory",
                "municipality", "text", "address", "complaint_about")


def routed_record(appeal: dict[str, Any], decision: Any, category: str, urgent: bool,
                  confidence: float, classifier_version: str | None) -> RoutedAppeal:
    return RoutedAppeal(
        appeal_id=appeal["appeal_id"],
        regime=appeal["regime"],
        region=appeal["region"],
        registered_at=appeal["registered_at"],
        category=category,
        urgent=urgent,
        confidence=round(float(confidence), 4),
        authority_id=decision.authority_id,
        routing_level=decision.level,
        rule_version=decision.rule_version,
        routed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        channel=appeal.get("channel"),
        subcategory=appeal.get("subcategory"),
        classifier_version=classifier_version,
        parent_authority_id=decision.parent_authority_id,
        municipality=decision.municipality,
        complaint=bool(appeal.get("complaint_about")),
        complaint_about=appeal.get("complaint_about"),
    )


def route_input(appeal: dict[str, Any], category: str) -> RouteInput:
    return RouteInput(
        appeal_id=appeal["appeal_id"],
        region_code=appeal["region"],
        category=category,
        subcategory=appeal.get("subcategory"),
        municipality=appeal.get("municipality"),
        text=appeal.get("text") or "",
        address=appeal.get("address"),
        complaint_about=appeal.get("complaint_about"),
    )


async def classify_and_route(ctx: WorkerContext, outbox: Outbox, appeals: Sequence[dict[str, Any]],
                             classifier: Any, router: Router) -> None:
    """Classify a batch of registered appeals; route the sure ones, queue the rest for triage."""
    if not appeals:
        return
    threshold = ctx.settings.triage_confidence
    results = classifier.classify_batch([a["text"] for a in appeals])
    for appeal, result in zip(appeals, results, strict=True):
        metrics.CLASSIFIED.labels(result.category, str(result.urgent).lower()).inc()
        if result.confidence < threshold:
            await _to_triage(outbox, appeal, result)
            continue
        decision = router.route(route_input(appeal, result.category))
        record = routed_record(appeal, decision, result.category, result.urgent,
                               result.confidence, result.model_version)
        await outbox.send_record(t.ROUTED, appeal["appeal_id"], record)
        metrics.ROUTED.labels(result.category, decision.level).inc()


async def _to_triage(outbox: Outbox, appeal: dict[str, Any], result: Any) -> None:
    item = TriageItem(
        appeal_id=appeal["appeal_id"],
        region=appeal["region"],
        registered_at=appeal["registered_at"],
        candidates=[TriageCandidate(c, round(float(s), 4)) for c, s in result.top3],
        regime=appeal["regime"],
        urgent=result.urgent,
        classifier_version=result.model_version,
    )
    await outbox.send_record(t.TRIAGE, appeal["appeal_id"], item)
    keep = {k: appeal.get(k) for k in ROUTE_FIELDS}
    keep["urgent"] = result.urgent
    keep["confidence"] = result.confidence
    keep["classifier_version"] = result.model_version
    await outbox.send(t.TRIAGE_PENDING, appeal["appeal_id"].encode(), orjson.dumps(keep))
    metrics.TRIAGED.inc()


def install_triage(app: faust.App, ctx: WorkerContext, router: Router) -> Any:
    """The triage agent: pending appeals and human decisions meet here, keyed by appeal_id."""
    settings = ctx.settings
    source = ctx.topology.channel_of(t.TRIAGE_PENDING, t.TRIAGE_DECISIONS)
    decisions_topic = t.topic_name(settings, t.TRIAGE_DECISIONS)
    pending = app.Table(
        "triage-pending",
        partitions=settings.partitions,
        key_type=bytes,
        use_partitioner=True,
    )

    @app.agent(source, name="triage")
    async def triage(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings):
            with crash_on_error(TRIAGE_STAGE):
                outbox = ctx.outbox(TRIAGE_STAGE)
                for event in events:
                    msg = event.message
                    try:
                        data = parse_event(msg.value)
                        if msg.topic == decisions_topic:
                            await _on_decision(outbox, pending, router, data)
                        else:
                            await _on_pending(outbox, pending, router, data)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=TRIAGE_STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                await outbox.flush()
                observe_stage_latency(TRIAGE_STAGE, events)

    return triage


def _appeal_id(data: dict[str, Any]) -> str:
    appeal_id = data.get("appeal_id")
    if not isinstance(appeal_id, str) or not appeal_id:
        raise InvalidEvent("invalid_value", "appeal_id missing")
    return appeal_id


async def _on_pending(outbox: Outbox, pending: Any, router: Router,
                      appeal: dict[str, Any]) -> None:
    key = _appeal_id(appeal).encode()
    held = pending.get(key)
    if held is not None and "decision" in held:
        # The human was quicker than this queue: route now.
        await _route_decided(outbox, router, appeal, held["decision"])
        pending[key] = {"done": True}
        return
    if held is not None and held.get("done"):
        return  # a replay of an appeal already routed by its decision
    pending[key] = appeal


async def _on_decision(outbox: Outbox, pending: Any, router: Router,
                       data: dict[str, Any]) -> None:
    """A human named the category: route the waiting appeal (once; repeats find nothing)."""
    appeal_id = _appeal_id(data)
    if not isinstance(data.get("category"), str):
        raise InvalidEvent("invalid_value", "triage decision needs appeal_id and category")
    key = appeal_id.encode()
    held = pending.get(key)
    if held is None:
        # The decision overtook the pending appeal: keep it until the appeal arrives.
        pending[key] = {"decision": data}
        metrics.LIFECYCLE.labels("triaged", "early").inc()
        return
    if "decision" in held or held.get("done"):
        metrics.LIFECYCLE.labels("triaged", "not_pending").inc()
        return
    await _route_decided(outbox, router, held, data)
    pending[key] = {"done": True}


async def _route_decided(outbox: Outbox, router: Router, appeal: dict[str, Any],
                         decision_event: dict[str, Any]) -> None:
    category = decision_event["category"]
    urgent = decision_event.get("urgent")
    urgent = bool(appeal.get("urgent")) if urgent is None else bool(urgent)
    decision = router.route(route_input(appeal, category))
    record = routed_record(appeal, decision, category, urgent, 1.0, "triage")
    await outbox.send_record(t.ROUTED, appeal["appeal_id"], record)
    metrics.ROUTED.labels(category, decision.level).inc()
    metrics.LIFECYCLE.labels("triaged", "applied").inc()
