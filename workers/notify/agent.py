"""The notify agent: SLA alerts to supervisors, each delivered once in effect.

An alert id is derived (appeal, level, cycle), so a replayed alert carries the id of the one
already delivered; a Redis marker, written only after a successful delivery, turns the replay
into a no-op. A lost marker at worst re-delivers with the same idempotency key, which receivers
(webhooks with Idempotency-Key, Alertmanager by label set) absorb.
Alert texts and labels carry ids, levels and deadlines only: never the citizen's data.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import redis.exceptions

from monitoring import metrics
from schemas.records import SlaAlert
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.runtime import WorkerContext, crash_on_error, parse_event

log = logging.getLogger("appeals.alerts")

STAGE = "notify"
SENT_TTL = 90 * 86400


def install(app: faust.App, ctx: WorkerContext, deliver: Any = None) -> Any:
    """``deliver(alert) -> bool`` is an async callable for external channels (webhook, ...)."""
    settings = ctx.settings
    prefix = f"{settings.app_id}:"

    @app.agent(ctx.topology.topic(t.SLA_ALERTS), name="notify")
    async def notify(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, settings.batch_linger):
            with crash_on_error(STAGE):
                outbox = ctx.outbox()
                for event in events:
                    try:
                        data = parse_event(event.message.value, SlaAlert.schema)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                        continue
                    alert = SlaAlert.from_dict(data)
                    marker = f"{prefix}alert:sent:{alert.alert_id}"
                    try:
                        if await ctx.redis.exists(marker):
                            metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
                            continue
                    except (redis.exceptions.RedisError, OSError):
                        metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
                    log.warning(
                        "SLA %s: appeal %s, authority %s (notify %s), regime %s, due %s",
                        alert.level.upper(), alert.appeal_id, alert.authority_id,
                        alert.notify_authority_id, alert.regime, alert.due_at,
                    )
                    metrics.NOTIFICATIONS.labels("log", "sent").inc()
                    if deliver is not None and not await deliver(alert):
                        await outbox.dead_letter(event, stage=STAGE, reason="delivery_failed")
                        continue
                    try:
                        await ctx.redis.set(marker, "1", ex=SENT_TTL)
                    except (redis.exceptions.RedisError, OSError):
                        metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
                await outbox.flush()

    return notify
