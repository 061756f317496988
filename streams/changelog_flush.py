"""A commit waits until every table changelog record is delivered (faust-streaming 0.15).

Why: a table write (``table[key] = value``) cannot await, so Faust queues its changelog record in
a ``ProducerBuffer`` that a background task hands to aiokafka. Before committing offsets Faust
flushes the producer, but the buffer's ``flush`` gives up as soon as no record left the buffer
for 0.1 s (a busy event loop does that easily), and it does not see the record the background
task has taken out of the queue but not yet handed over. The commit then goes ahead while the
newest changelog records are still only in this process's memory; a SIGKILL at that moment
loses them although the events that produced them are committed, so they are never replayed.
Found by ``tests/chaos/test_chaos_kill.py`` (answers applied, state lost: appeals left running).

The patched ``flush`` waits until the queue is empty *and* no hand-over is in flight. aiokafka's
own ``flush``, which Faust awaits next, then covers every record.

A record the broker refuses is a loss of the same kind: aiokafka's ``flush`` waits for the
batches but swallows their errors, and Faust only logs a warning and sets the error on a future
nobody awaits (``Topic._on_published``), so the commit went ahead and the state change was gone
after the next recovery (a batch expired, NOT_ENOUGH_REPLICAS). So every delivery of a buffered
record is watched, and the flush before a commit ends the process with exit code 70 when one
failed (as a failed output flush does, ``workers.runtime.crash_on_error``): nothing is
committed, and the restarted worker replays the events and writes the records again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

_BUFFER = "faust.transport.producer:ProducerBuffer"
#: sha256 of ``inspect.getsource`` of what this module replaces (the buffer's hand-over and
#: flush), wraps (the aiokafka producer's flush) and relies on (``publish_message(wait=False)``
#: returning the delivery), in the checked faust-streaming.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    f"{_BUFFER}._send_pending": frozenset({
        "4a9d5f932b56bc6842151bfc868aec1570d53cab7ff129ece408d966ac7f7da8"}),
    f"{_BUFFER}.flush": frozenset({
        "26fbebb124ad9c9890f19b4615585cf3eda102b61203e6aa885d3fabfda9b157"}),
    "faust.transport.drivers.aiokafka:Producer.flush": frozenset({
        "36d0cb3615f65b01010d1ec8c5b0f6180110e24c486799bc47c0d72be5152270"}),
    "faust.topics:Topic.publish_message": frozenset({
        "4ce1cbc353047a36edfa0ea78ae5c542b660bda6a3a04f5b8f2d1c9919701404"}),
}
#: Faust's functions this module replaced outright (the digests are of these).
_originals: dict[str, Any] = {}

WARN_AFTER_S = 10.0
EXIT_CODE = 70
_INFLIGHT = "_appeals_inflight"
#: Per buffer: deliveries (aiokafka's futures) not known to have succeeded yet.
_UNCONFIRMED = "_appeals_unconfirmed"
#: Per buffer: (topic, error) of the first delivery that failed, and how many failed.
_FAILED = "_appeals_failed"
_ON_DONE = "_appeals_on_delivered"
_installed = False


class ChangelogDeliveryError(RuntimeError):
    """A table changelog record was not delivered: committing offsets now would lose state."""


def _exit(code: int) -> None:
    """Ends the process at once (tests replace it): no cleanup path may commit offsets first."""
    logging.shutdown()
    os._exit(code)


def _failure(delivery: asyncio.Future[Any]) -> BaseException | None:
    if not delivery.done():
        return None
    if delivery.cancelled():
        return asyncio.CancelledError("delivery cancelled")
    return delivery.exception()


def _record_failure(buffer: Any, topic: str, exc: BaseException) -> None:
    first, count = getattr(buffer, _FAILED, (None, 0))
    setattr(buffer, _FAILED, (first or (topic, exc), count + 1))


def _watch(buffer: Any, delivery: asyncio.Future[Any], topic: str) -> None:
    """Remember ``delivery`` until it succeeded; a failure stays recorded on ``buffer``.

    One callback per buffer, made once: this runs for every changelog record."""
    unconfirmed: dict[asyncio.Future[Any], str] | None = getattr(buffer, _UNCONFIRMED, None)
    if unconfirmed is None:
        unconfirmed = {}
        setattr(buffer, _UNCONFIRMED, unconfirmed)
        setattr(buffer, _ON_DONE, functools.partial(_delivered, buffer, unconfirmed))
    unconfirmed[delivery] = topic
    delivery.add_done_callback(getattr(buffer, _ON_DONE))


def _delivered(buffer: Any, unconfirmed: dict[asyncio.Future[Any], str],
               delivery: asyncio.Future[Any]) -> None:
    topic = unconfirmed.pop(delivery, None)
    exc = _failure(delivery)
    if exc is not None:
        _record_failure(buffer, topic or "?", exc)


def check_deliveries(buffer: Any) -> None:
    """Raise :class:`ChangelogDeliveryError` if a record of ``buffer`` failed to be delivered.

    Also looks at deliveries that are done but whose callbacks have not run yet: aiokafka fails
    a batch's future and its records' futures at once, and the flush awaiting the batch can
    resume before the records' callbacks run.
    """
    unconfirmed: dict[asyncio.Future[Any], str] = getattr(buffer, _UNCONFIRMED, {})
    for delivery, topic in list(unconfirmed.items()):
        exc = _failure(delivery)
        if exc is not None:
            unconfirmed.pop(delivery, None)
            _record_failure(buffer, topic, exc)
    first, count = getattr(buffer, _FAILED, (None, 0))
    if first is not None:
        topic, exc = first
        raise ChangelogDeliveryError(
            f"{count} table changelog record(s) not delivered, the first to {topic}: "
            f"{type(exc).__name__}: {exc}")


def all_delivered(buffer: Any) -> bool:
    """Whether every record ``buffer`` was given reached the broker: none queued or being handed
    over, none whose delivery is still open or failed (a stop after which the local table
    state matches the changelog; streams.rocksdb_store)."""
    if not _installed or buffer.size or getattr(buffer, _INFLIGHT, 0):
        return False  # without the patch its deliveries are not watched: cannot tell
    unconfirmed: dict[asyncio.Future[Any], str] = getattr(buffer, _UNCONFIRMED, {})
    if any(not delivery.done() for delivery in unconfirmed):
        return False
    try:
        check_deliveries(buffer)
    except ChangelogDeliveryError:
        return False
    return True


def _exit_if_lost(buffer: Any) -> None:
    try:
        check_deliveries(buffer)
    except ChangelogDeliveryError as exc:
        log.critical("%s; exiting with %d so that no offsets are committed (the events are "
                     "replayed on restart and write the records again)", exc, EXIT_CODE)
        _exit(EXIT_CODE)
        raise  # only reached when a test replaced _exit


def _topic_of(fut: Any) -> str:
    try:
        return str(fut.message.channel.get_topic_name())
    except Exception:  # a channel without a topic name: still a record to watch
        return "?"


def install() -> bool:
    """Replace the buffer's hand-over and flush once per process (idempotent); returns whether
    they are replaced (not on an unchecked Faust)."""
    global _installed
    if _installed:
        return True
    if not source_checked():
        log.warning("faust-streaming's ProducerBuffer/Producer.flush differ from the checked "
                    "version; keeping Faust's own flush (a commit can pass changelog records "
                    "not yet delivered)")
        return False
    from faust.transport.drivers.aiokafka import Producer
    from faust.transport.producer import ProducerBuffer

    async def _send_pending(self: Any, fut: Any) -> None:
        """Faust's hand-over (``channel.publish_message``), counted and its delivery watched."""
        setattr(self, _INFLIGHT, getattr(self, _INFLIGHT, 0) + 1)
        try:
            delivery = await fut.message.channel.publish_message(fut, wait=False)
        except Exception as exc:  # not even handed to aiokafka (e.g. no metadata in time)
            _record_failure(self, _topic_of(fut), exc)
            raise
        finally:
            setattr(self, _INFLIGHT, getattr(self, _INFLIGHT) - 1)
        # aiokafka's future for the record when it is one (set before Faust's callbacks run),
        # else Faust's own future for the record.
        watched = delivery if isinstance(delivery, asyncio.Future) else fut
        if isinstance(watched, asyncio.Future):
            _watch(self, watched, _topic_of(fut))

    async def flush(self: Any) -> None:
        """Wait until the buffer is empty and nothing is being handed to the producer."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        warned = False
        while self.size or getattr(self, _INFLIGHT, 0):
            _exit_if_lost(self)
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            try:
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)
            except TimeoutError:
                if not warned and loop.time() - started > WARN_AFTER_S:
                    warned = True
                    log.warning("Commit waits for %d table changelog records still queued "
                                "for the producer (%.0f s so far)", self.size,
                                loop.time() - started)
        _exit_if_lost(self)

    original_flush = Producer.flush

    @functools.wraps(original_flush)
    async def producer_flush(self: Any) -> None:
        """Faust's flush (the buffer's, then aiokafka's), then no failed changelog delivery."""
        await original_flush(self)
        _exit_if_lost(self.buffer)

    _originals[f"{_BUFFER}._send_pending"] = ProducerBuffer._send_pending
    _originals[f"{_BUFFER}.flush"] = ProducerBuffer.flush
    cast(Any, ProducerBuffer)._send_pending = _send_pending
    cast(Any, ProducerBuffer).flush = flush
    cast(Any, Producer).flush = producer_flush
    _installed = True
    return True


def source_checked() -> bool:
    """Whether the installed Faust code this module replaces or relies on is the checked one."""
    return not faust_sources.mismatched(KNOWN_SOURCES, _originals)


def installed() -> bool:
    """Whether :func:`install` patched Faust in this process."""
    return _installed
