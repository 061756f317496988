"""The classify-and-route agent: registered appeals in, routed appeals (or triage items) out.

Classification runs over a whole batch at once (the model vectorises a batch far cheaper than
one text at a time). An appeal the model is unsure of goes to the human triage queue instead of
being routed on a guess; it waits in a small table until a triage decision (a ``triaged``
lifecycle event) names its category, and is then routed like any other.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust

from monitoring import metrics
from schemas.records import RegisteredAppeal, RoutedAppeal, TriageCandidate, TriageItem
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.routing import RouteInput, Router
from workers.runtime import (
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)

log = logging.getLogger(__name__)

STAGE = "route"


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


def install(app: faust.App, ctx: WorkerContext, router: Router, classifier: Any) -> Any:
    settings = ctx.settings
    source = ctx.topology.channel_of(t.REGISTERED, t.TRIAGE_DECISIONS)
    decisions_topic = t.topic_name(settings, t.TRIAGE_DECISIONS)
    pending = app.Table(
        "triage-pending",
        partitions=settings.partitions,
        key_type=bytes,
        use_partitioner=True,
    )

    @app.agent(source, name="route")
    async def route(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings):
            with crash_on_error(STAGE):
                outbox = ctx.outbox()
                appeals: list[dict[str, Any]] = []
                for event in events:
                    msg = event.message
                    try:
                        if msg.topic == decisions_topic:
                            await _on_decision(ctx, outbox, pending, router,
                                               parse_event(msg.value))
                            continue
                        data = parse_event(msg.value, RegisteredAppeal.schema)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                        continue
                    appeals.append(data)
                if appeals:
                    results = classifier.classify_batch([a["text"] for a in appeals])
                    for appeal, result in zip(appeals, results, strict=True):
                        metrics.CLASSIFIED.labels(result.category, str(result.urgent).lower()).inc()
                        if result.confidence < settings.triage_confidence:
                            await _to_triage(outbox, pending, appeal, result)
                            continue
                        decision = router.route(route_input(appeal, result.category))
                        record = routed_record(appeal, decision, result.category, result.urgent,
                                               result.confidence, result.model_version)
                        await outbox.send_record(t.ROUTED, appeal["appeal_id"], record)
                        metrics.ROUTED.labels(result.category, decision.level).inc()
                await outbox.flush()
                observe_stage_latency(STAGE, events)

    return route


async def _to_triage(outbox: Any, pending: Any, appeal: dict[str, Any], result: Any) -> None:
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
    keep = {k: appeal.get(k) for k in ("appeal_id", "regime", "region", "registered_at",
                                       "channel", "subcategory", "municipality", "text",
                                       "address", "complaint_about")}
    keep["urgent"] = result.urgent
    keep["confidence"] = result.confidence
    keep["classifier_version"] = result.model_version
    pending[appeal["appeal_id"].encode()] = keep
    metrics.TRIAGED.inc()


async def _on_decision(ctx: WorkerContext, outbox: Any, pending: Any, router: Router,
                       data: dict[str, Any]) -> None:
    """A human named the category: route the waiting appeal (once; repeats find nothing)."""
    appeal_id = data.get("appeal_id")
    category = data.get("category")
    if not isinstance(appeal_id, str) or not isinstance(category, str):
        raise InvalidEvent("invalid_value", "triage decision needs appeal_id and category")
    key = appeal_id.encode()
    appeal = pending.get(key)
    if appeal is None:
        metrics.LIFECYCLE.labels("triaged", "not_pending").inc()
        return
    urgent = data.get("urgent")
    urgent = appeal["urgent"] if urgent is None else bool(urgent)
    decision = router.route(route_input(appeal, category))
    record = routed_record(appeal, decision, category, urgent, 1.0, "triage")
    await outbox.send_record(t.ROUTED, appeal_id, record)
    metrics.ROUTED.labels(category, decision.level).inc()
    metrics.LIFECYCLE.labels("triaged", "applied").inc()
    del pending[key]
