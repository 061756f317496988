"""The lifecycle agent: authorities' events validated and re-keyed for the SLA agent.

Authorities' systems publish with whatever client and partitioner they have (librdkafka's
default partitioner is not Java's), so their events cannot be trusted to sit on the partition
that owns the appeal's SLA state. This agent validates each event (bad ones go to the
dead-letter topic with a reason) and republishes it keyed by ``appeal_id`` with our partitioner:
triage decisions to the routing agent, everything else to the SLA agent.
"""

from __future__ import annotations

from typing import Any

import faust

from schemas.records import LifecycleEvent
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.runtime import (
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)

STAGE = "lifecycle"


def install(app: faust.App, ctx: WorkerContext) -> Any:
    settings = ctx.settings

    @app.agent(ctx.topology.topic(t.LIFECYCLE), name="lifecycle")
    async def lifecycle(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings):
            with crash_on_error(STAGE):
                outbox = ctx.outbox()
                for event in events:
                    raw = event.message.value
                    try:
                        data = parse_event(raw, LifecycleEvent.schema)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                        continue
                    target = t.TRIAGE_DECISIONS if data["event"] == "triaged" else t.SLA_LIFECYCLE
                    await outbox.send(target, data["appeal_id"].encode(), raw or b"")
                await outbox.flush()
                observe_stage_latency(STAGE, events)

    return lifecycle
