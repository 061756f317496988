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
import hashlib
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
from workers import progress

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


DEADLETTER_MAX_ORIGINAL = 700_000
"""Bytes of an original record (value and key) a dead letter carries at most.

Why: a dead letter holds the original in base64 (4/3 of its size) with an envelope, and
Apache Kafka refuses records over its default ``message.max.bytes`` (1,048,588 bytes). An
intake record of 800 KB, or an ``oversize_message`` one of 1 MB, made a dead letter of
1.07-1.33 MB that the broker refused; the batch's flush then raised, the worker exited and
replayed the same record after every restart, blocking its partition. Tansu has no such
limit, so neither the tests nor the demo showed it (review of session 17). 700,000 bytes
encode to 933,336, which fits with the envelope. A cut record stays in its own topic at the
dead letter's topic, partition and offset until that topic's retention ends."""
_DEADLETTER_MAX_KEY = 4096


def _fit_original(value: bytes, key: bytes | None) -> tuple[bytes, bytes | None, str]:
    """``value`` and ``key`` cut to :data:`DEADLETTER_MAX_ORIGINAL` bytes together, and a
    note saying what was cut ("" when nothing was)."""
    notes = []
    key_len = len(key) if key is not None else 0
    if key is not None and key_len > _DEADLETTER_MAX_KEY:
        # Always, not only over the total: the key travels twice (in key_b64 and as the dead
        # letter's own Kafka key), so a 120 KB key with a 580 KB value made 1.05 MB.
        notes.append(f"key of {key_len} bytes cut to its first {_DEADLETTER_MAX_KEY}")
        key = key[:_DEADLETTER_MAX_KEY]
        key_len = _DEADLETTER_MAX_KEY
    room = DEADLETTER_MAX_ORIGINAL - key_len
    if len(value) > room:
        digest = hashlib.sha256(value).hexdigest()
        notes.append(f"value of {len(value)} bytes (sha256 {digest}) cut to its first {room}")
        value = value[:room]
    return value, key, "original " + " and ".join(notes) if notes else ""


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

    async def send(self, base: str, key: bytes | None, value: bytes, *,
                   partition: int | None = None) -> None:
        """``partition`` None: the one the key hashes to. Set, for a record that must reach one
        partition whatever its key (the triage agent's clock ticks)."""
        fut = await self._producer.send(self._topology.name(base), key, value, partition, None,
                                        None)
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
        waited for its appeal, refused when applied): partition and offset -1 when unknown.

        Originals over :data:`DEADLETTER_MAX_ORIGINAL` bytes are cut (see there); the detail
        then says so, with the original's size and digest."""
        raw_value, raw_key, cut = _fit_original(raw_value, raw_key)
        text = (detail or "")[:500]
        if cut:
            text = f"{cut}; {text}"[:500] if text else cut
        record = DeadLetter(
            reason=reason,
            stage=stage,
            topic=topic,
            partition=partition,
            offset=offset,
            value_b64=base64.b64encode(raw_value).decode("ascii"),
            key_b64=base64.b64encode(raw_key).decode("ascii") if raw_key is not None else None,
            failed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            detail=text or None,
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


def batches(stream: faust.StreamT, settings: Settings, *,
            stage: str | None = None) -> AsyncIterator[Sequence[faust.EventT]]:
    """The stream in batches of events (``take_events``): partition, offset and key included.

    Batches are where the pipeline's speed comes from (one classifier call, one Redis round
    trip, one wait for acknowledgements per batch); ``take_events`` acknowledges a batch's
    offsets only after the loop body for it has finished. A batch is handed over when it is
    full, when the stream has nothing more waiting, or after the linger
    (:mod:`streams.natural_batches`).

    ``stage``: the stage label the loop reports its finished batches under
    (:mod:`workers.progress`, which tells a hung stage); None reports nothing.
    """
    if stage is not None:
        progress.STAGES.register(stage, getattr(stream.channel, "topics", ()))
    return _marked(natural_batches.take_events(stream, settings.batch_size, settings.batch_linger,
                                               natural=settings.natural_batches), stage)


async def _marked(source: Any, stage: str | None) -> AsyncIterator[Sequence[faust.EventT]]:
    """Record each batch as handed to our code: only such records may be acknowledged; and,
    when the loop asks for the next one, the batch as done."""
    async for events in source:
        ack_safety.handed_to_body(events)
        yield events
        if stage is not None:
            progress.STAGES.batch_done(stage)


def observe_stage_latency(stage: str, events: Sequence[faust.EventT]) -> None:
    """Wall time from each event's Kafka timestamp to the end of its batch in ``stage``."""
    now = time.time()
    hist = metrics.STAGE_LATENCY.labels(stage)
    for event in events:
        ts = event.message.timestamp
        if ts:
            hist.observe(max(0.0, now - ts))
    metrics.BATCH_SIZE.labels(stage).observe(len(events))
