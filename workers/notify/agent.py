"""The notify agent: SLA alerts to supervisors, each delivered once in effect.

An alert id is derived (appeal, level, cycle), so a replayed alert carries the id of the one
already delivered; a Redis marker, written only after a successful delivery, turns the replay
into a no-op. A lost marker at worst re-delivers with the same idempotency key, which receivers
(webhooks with Idempotency-Key, Alertmanager by label set) absorb.
Alert texts and labels carry ids, levels and deadlines only: never the citizen's data.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import redis.exceptions

from monitoring import metrics
from schemas.records import SlaAlert
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.runtime import (
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)

log = logging.getLogger("appeals.alerts")

STAGE = "notify"
SENT_TTL = 90 * 86400


def install(app: faust.App, ctx: WorkerContext, deliver: Any = None) -> Any:
    """``deliver(alert) -> bool`` is an async callable for external channels (webhook, ...)."""
    settings = ctx.settings
    prefix = f"{settings.app_id}:"

    @app.agent(ctx.topology.topic(t.SLA_ALERTS), name="notify")
    async def notify(stream: faust.StreamT) -> None:
        limit = asyncio.Semaphore(settings.notify_concurrency)

        async def deliver_one(alert: SlaAlert) -> bool:
            async with limit:
                return bool(await deliver(alert))

        async for events in batches(stream, settings):
            with crash_on_error(STAGE):
                outbox = ctx.outbox(STAGE)
                todo: dict[str, tuple[Any, SlaAlert]] = {}
                for event in events:
                    try:
                        data = parse_event(event.message.value, SlaAlert.schema)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                        continue
                    alert = SlaAlert.from_dict(data)
                    if alert.alert_id in todo:
                        metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
                        continue
                    todo[alert.alert_id] = (event, alert)
                pending = await _not_yet_sent(ctx, prefix, todo)
                for _, alert in pending:
                    log.warning(
                        "SLA %s: appeal %s, authority %s (notify %s), regime %s, due %s",
                        alert.level.upper(), alert.appeal_id, alert.authority_id,
                        alert.notify_authority_id, alert.regime, alert.due_at,
                    )
                    metrics.NOTIFICATIONS.labels("log", "sent").inc()
                # Deliveries run side by side: one slow or failing webhook must not hold
                # back every other supervisor's alerts behind its retries.
                if deliver is not None:
                    results = await asyncio.gather(*(deliver_one(a) for _, a in pending))
                else:
                    results = [True] * len(pending)
                delivered = []
                for (event, alert), ok in zip(pending, results, strict=True):
                    if ok:
                        delivered.append(alert.alert_id)
                    else:
                        await outbox.dead_letter(event, stage=STAGE, reason="delivery_failed")
                await outbox.flush()
                await _mark_sent(ctx, prefix, delivered)
                observe_stage_latency(STAGE, events)

    return notify


async def _not_yet_sent(ctx: WorkerContext, prefix: str,
                        todo: dict[str, tuple[Any, SlaAlert]]) -> list[tuple[Any, SlaAlert]]:
    """Alerts whose sent-marker is absent (one round trip); all of them if Redis is down."""
    items = list(todo.values())
    if not items:
        return []
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for _, alert in items:
                pipe.exists(f"{prefix}alert:sent:{alert.alert_id}")
            seen = await pipe.execute()
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
        return items
    out = []
    for item, was_sent in zip(items, seen, strict=True):
        if was_sent:
            metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
        else:
            out.append(item)
    return out


async def _mark_sent(ctx: WorkerContext, prefix: str, alert_ids: list[str]) -> None:
    if not alert_ids:
        return
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for alert_id in alert_ids:
                pipe.set(f"{prefix}alert:sent:{alert_id}", "1", ex=SENT_TTL)
            await pipe.execute()
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
