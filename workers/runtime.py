"""What every agent shares: topics, the SLA clock, Redis, and the outbox discipline.

The outbox is how the pipeline keeps "nothing lost": an agent sends a batch's outputs, then
awaits their acknowledgements before the batch ends; Faust acknowledges (and later commits) the
batch's input offsets only after that. A crash anywhere before the end replays the batch, and
because every output is keyed by a derived ``appeal_id`` and every consumer is idempotent per
appeal, the replay changes nothing that was already done.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis

from monitoring import metrics
from schemas.records import DeadLetter, Record
from schemas.validation import InvalidEvent, validate_incoming
from streams import ack_safety, natural_batches
from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Topology:
    """Faust topic objects by their base name (without the deployment prefix)."""

    app: faust.App
    settings: Settings
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def topic(self, base: str) -> faust.TopicT:
        topic = self.topics.get(base)
        if topic is None:
            spec = next((s for s in t.SPECS if s.name == base), None)
            topic = self.app.topic(
                t.topic_name(self.settings, base),
                partitions=self.settings.partitions,
                replicas=self.settings.replication,
                config=dict(spec.config) if spec else None,
                key_serializer="raw",
                value_serializer="raw",
            )
            self.topics[base] = topic
        return topic

    def name(self, base: str) -> str:
        """The deployment's topic name for a base name (prefix applied), cached."""
        name = self.names.get(base)
        if name is None:
            name = self.names[base] = t.topic_name(self.settings, base)
        return name

    def channel_of(self, *bases: str) -> faust.TopicT:
        """One Faust channel over several topics (same partition count: co-partitioned)."""
        return self.app.topic(
            *(t.topic_name(self.settings, b) for b in bases),
            key_serializer="raw",
            value_serializer="raw",
        )


@dataclass
class WorkerContext:
    settings: Settings
    topology: Topology
    clock: SlaClock
    redis: aioredis.Redis

    @classmethod
    def create(cls, app: faust.App, settings: Settings) -> WorkerContext:
        return cls(
            settings=settings,
            topology=Topology(app, settings),
            clock=SlaClock(settings.time_scale, settings.clock_epoch),
            redis=aioredis.Redis.from_url(
                settings.redis, socket_timeout=5, socket_connect_timeout=5
            ),
        )

    def outbox(self, stage: str) -> Outbox:
        return Outbox(self.topology, stage)


class Outbox:
    """Collects a batch's sends; :meth:`flush` waits until the broker acknowledged all of them.

    Sends go straight to the app's producer rather than through ``Topic.send``: Faust's
    channel machinery (a ``FutureMessage``, a callback chain and a producer buffer per
    message) cost ~40 µs a record here (issue #7), while the outbox already does what it is
    for, keeping every send's acknowledgement until the batch ends. Topics are created at
    start-up (:func:`streams.topics.ensure_topics`), not declared on first send.
    """

    __slots__ = ("_ack_wait", "_pending", "_producer", "_topology")

    def __init__(self, topology: Topology, stage: str) -> None:
        self._topology = topology
        self._producer = topology.app.producer
        self._pending: list[Awaitable[Any]] = []
        self._ack_wait = metrics.child(metrics.BROKER_ACK_WAIT, stage)  # one Outbox per batch

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        fut = await self._producer.send(self._topology.name(base), key, value, None, None, None)
        self._pending.append(fut)

    async def send_record(self, base: str, key: str | None, record: Record) -> None:
        await self.send(base, key.encode() if key is not None else None, record.to_json())

    async def dead_letter(
        self,
        event: faust.EventT,
        *,
        stage: str,
        reason: str,
        detail: str | None = None,
    ) -> None:
        """Keep the original bytes with the reason; count it; never log the payload."""
        message = event.message
        await self.dead_letter_raw(
            message.value if isinstance(message.value, bytes) else b"",
            message.key if isinstance(message.key, bytes) else None,
            topic=message.topic, partition=message.partition, offset=message.offset,
            stage=stage, reason=reason, detail=detail)

    async def dead_letter_raw(
        self,
        raw_value: bytes,
        raw_key: bytes | None,
        *,
        topic: str,
        partition: int,
        offset: int,
        stage: str,
        reason: str,
        detail: str | None = None,
    ) -> None:
        """Dead-letter bytes that are no longer the message in hand (an event held while it
        waited for its appeal, refused when applied): partition and offset -1 when unknown."""
        record = DeadLetter(
            reason=reason,
            stage=stage,
            topic=topic,
            partition=partition,
            offset=offset,
            value_b64=base64.b64encode(raw_value).decode("ascii"),
            key_b64=base64.b64encode(raw_key).decode("ascii") if raw_key is not None else None,
            failed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            detail=(detail or "")[:500] or None,
        )
        metrics.DEADLETTER.labels(stage, reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d at stage %s: %s", topic, partition, offset, stage, reason,
        )
        await self.send(t.DEADLETTER, raw_key, record.to_json())

    async def flush(self) -> None:
        """Wait for the broker's acknowledgements; the wait is observed per stage because a
        slow broker shows up here first (and holds the stage's next batch)."""
        if self._pending:
            pending, self._pending = self._pending, []
            started = time.perf_counter()
            await asyncio.gather(*pending)
            self._ack_wait.observe(time.perf_counter() - started)

    def __len__(self) -> int:
        return len(self._pending)


@contextlib.contextmanager
def crash_on_error(stage: str) -> Iterator[None]:
    """Wrap one batch: an unexpected error ends the process at once, with exit code 70.

    Why not let Faust handle it: ``take_events`` acknowledges a batch's offsets when the
    generator is closed, also when the body raised, so an exception escaping the batch would
    let the next commit skip those events. Dying before that commit keeps them: the restarted
    worker replays the batch, which every stage absorbs (derived ids, idempotent state).
    Errors of single events never get here: they go to the dead-letter topic.
    """
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception:
        log.critical("stage %s: unexpected error in a batch; exiting so that its offsets are "
                     "not committed (the batch is replayed on restart)", stage, exc_info=True)
        logging.shutdown()
        os._exit(70)


def parse_event(raw: bytes | None, schema: str | None = None) -> dict[str, Any]:
    """Bytes of a pipeline topic to a dict, validated against ``schema`` when given.

    Raises :class:`InvalidEvent` with a reason code, the one exception agents catch to send an
    event to the dead-letter topic.
    """
    if not raw:
        raise InvalidEvent("empty", "message has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise InvalidEvent("not_object", "expected a JSON object")
    if schema is not None:
        validate_incoming(schema, data)
    return data


def batches(stream: faust.StreamT, settings: Settings) -> AsyncIterator[Sequence[faust.EventT]]:
    """The stream in batches of events (``take_events``): partition, offset and key included.

    Batches are where the pipeline's speed comes from (one classifier call, one Redis round
    trip, one wait for acknowledgements per batch); ``take_events`` acknowledges a batch's
    offsets only after the loop body for it has finished. A batch is handed over when it is
    full, when the stream has nothing more waiting, or after the linger
    (:mod:`streams.natural_batches`).
    """
    return _marked(natural_batches.take_events(stream, settings.batch_size, settings.batch_linger,
                                               natural=settings.natural_batches))


async def _marked(source: Any) -> AsyncIterator[Sequence[faust.EventT]]:
    """Record each batch as handed to our code: only such records may be acknowledged."""
    async for events in source:
        ack_safety.handed_to_body(events)
        yield events


def observe_stage_latency(stage: str, events: Sequence[faust.EventT]) -> None:
    """Wall time from each event's Kafka timestamp to the end of its batch in ``stage``."""
    now = time.time()
    hist = metrics.STAGE_LATENCY.labels(stage)
    for event in events:
        ts = event.message.timestamp
        if ts:
            hist.observe(max(0.0, now - ts))
    metrics.BATCH_SIZE.labels(stage).observe(len(events))
