"""Batches that end when the stream has nothing more waiting (natural batching).

Why: Faust's ``Stream.take_events(max_, within)`` hands a batch to the agent when it holds
``max_`` events or when ``within`` seconds passed, whichever comes first. Under load the first
bound applies and batches are large (what the pipeline's throughput rests on). At a steady
moderate rate only the second one does, and every event waits up to ``within`` (20 ms by default)
for companions that are not coming: part of the intake -> routed latency of issue 7.

:func:`take_events` here is Faust's ``take_events`` (faust-streaming 0.15.3) with one more
reason to hand over a batch: the stream's buffer is empty, so nothing else is waiting right now.
An event then goes on at once when the agent is idle, and a busy stream still fills its batches
to ``max_`` because its buffer is not empty while it is busy. ``within`` stays as the upper
bound. A batch's events are acknowledged after the agent's loop body for the batch has
finished, and only then: Faust's version acknowledges them in a ``finally``, so also when the
generator is closed under a body still at work (``Stream.on_stop`` closes it on SIGTERM, and the
consumer then commits on stop). A notify-retry batch waiting for its retry moment was lost that
way (review of session 14), as was any batch a stop caught before its outputs were sent.
``natural=False`` keeps Faust's batching, with this acknowledgement. Checked against the source
it was copied from, like :mod:`streams.fastpath`; on another release :func:`take_events` falls
back to Faust's own (and its acknowledgement on close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from mode.utils.futures import notify

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource(Stream.take_events)`` of faust-streaming 0.15.3.
KNOWN_SOURCES: frozenset[str] = frozenset({
    "607d48aead118ba8ea868718a0df87de1c5fcecd10ec542c659b448796728e08",
})


def source_digest() -> str | None:
    """Digest of Faust's ``Stream.take_events``; None on a release without it."""

    def original() -> Any:
        from faust.streams import Stream

        return Stream.take_events

    return faust_sources.digest_or_none(original)


def take_events(stream: Any, max_: int, within: float,
                natural: bool = True) -> AsyncIterator[Sequence[Any]]:
    """Batches of events from ``stream``; see the module docstring."""
    if source_digest() not in KNOWN_SOURCES:
        log.warning("faust-streaming's Stream.take_events differs from the checked version; "
                    "using it as it is (batches wait out the %.3f s linger, and a batch a "
                    "stop interrupts is acknowledged)", within)
        return cast(AsyncIterator[Sequence[Any]], stream.take_events(max_, within))
    agen = _take_events(stream, max_, within, natural)
    stream._active_agens.add(agen)  # closed by Stream.on_stop, as Faust's own generators are
    return agen


async def _take_events(self: Any, max_: int, within: float,
                       natural: bool = True) -> AsyncIterator[Sequence[Any]]:
    buffer: list[Any] = []
    events: list[Any] = []
    buffer_add = buffer.append
    event_add = events.append
    buffer_size = buffer.__len__
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    timeout = within if within else None
    stream_enable_acks: bool = self.enable_acks

    buffer_consuming: asyncio.Future[Any] | None = None

    channel_it = aiter(self.channel)
    queue_empty = channel_it.queue.empty

    async def add_to_buffer(value: Any) -> Any:
        try:
            nonlocal buffer_consuming
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer_add(value)
            event = self.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            event_add(event)
            if buffer_size() >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await self.wait(buffer_consumed)
            elif natural and queue_empty():
                # The change: nothing else is waiting, so this batch is as big as it gets now.
                buffer_full.set()
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            self.log.exception("Error adding to take buffer: %r", exc)
            await self.crash(exc)
        return value

    self.enable_acks = False
    self.add_processor(add_to_buffer)
    self._enable_passive(channel_it)
    try:
        while not self.should_stop:
            await self.wait_for_stopped(buffer_full, timeout=timeout)
            if buffer:
                buffer_consuming = self.loop.create_future()
                finished = False
                try:
                    yield list(events)
                    finished = True  # the agent asked for the next batch: this one is done
                finally:
                    buffer.clear()
                    if finished:
                        for event in events:
                            await self.ack(event)
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
            else:
                buffer_full.clear()
    finally:
        self.enable_acks = stream_enable_acks
        self._processors.remove(add_to_buffer)
