"""A cheaper hand-off from Faust's fetcher to its streams (faust-streaming 0.15).

Why this exists: Faust's ``Consumer._drain_messages`` hands every fetched record to its
stream through ``Service.wait_first(callback(message), suspend_flow.wait())``, which creates
four asyncio tasks and an ``asyncio.wait`` per record so that a delivery blocked on a full
stream buffer can be abandoned when a rebalance suspends the flow. Measured on this machine
(``python -m benchmarks.faust_overhead``) that race costs about a third of Faust's per-record
CPU (49 → 32 µs), although the delivery almost never blocks: it puts the event on a queue
that has room.

The replacement runs the delivery coroutine eagerly, one step, in the fetcher's own task. When
that step finishes the delivery (the common case), nothing else is needed. When it would block
(full buffer, flow control), the rest of the delivery continues exactly as Faust runs it: as a
task raced against ``suspend_flow`` (and the consumer's stop/crash events) by ``wait_first``.
Acks and commits are Faust's own code paths, unchanged. Three things differ: the scheduling
of the hand-off; a record below Faust's read offset is still delivered when it is at or above
the committed offset (:func:`refetched`; Faust would drop it and lose it); and a jump in offsets
becomes a Faust "gap" (offsets the commit may pass without an acknowledgement) only for the
offsets that no longer exist below the partition's log start (:func:`_add_missing_gap`).

The patch is applied by :func:`install` (from :func:`streams.app.create_app`) and can be turned
off with ``APPEALS_FAUST_FASTPATH=0``; it refuses to install on a faust-streaming version whose
``_drain_messages`` it has not been checked against.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource(Consumer._drain_messages)`` of the faust-streaming releases
#: this module was checked against (0.15.3). Another release keeps Faust's own hand-off until
#: someone compares its ``_drain_messages`` with the copy below and adds its digest here.
KNOWN_SOURCES: frozenset[str] = frozenset({
    "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
})

_installed = False


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Continue a coroutine that has already been stepped once and yielded ``yielded``.

    The same delegation ``yield from`` performs, written out because the first step happened
    outside: values and exceptions the event loop sends in go to ``coro``.
    """
    to_yield = yielded
    while True:
        try:
            sent = yield to_yield
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # forwarded to the coroutine, as ``yield from`` does
            try:
                to_yield = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                to_yield = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """A real coroutine around :func:`_resume` (``wait_first`` accepts awaitables only)."""
    return await _resume(coro, yielded)


_faust_original: Any = None


def source_digest() -> str | None:
    """Digest of Faust's own ``_drain_messages`` (also after :func:`install` replaced it); None
    on a release without it."""

    def original() -> Any:
        from faust.transport.consumer import Consumer

        return _faust_original or Consumer._drain_messages

    return faust_sources.digest_or_none(original)


def installed() -> bool:
    """Whether :func:`install` replaced Faust's hand-off in this process."""
    return _installed


def refetched(offset: int, committed: int | None) -> bool:
    """A record below the read offset that must still be delivered: read again after a seek.

    Faust drops every record below its read offset as already delivered. After a seek back to
    the committed offset that is wrong for the records from the committed offset on: the earlier
    delivery went to a stream buffer that the rebalance cleared, or a fetch from before the seek
    moved the read offset past them (see :mod:`streams.resume_order`). Delivering them again
    costs a duplicate, which every agent here absorbs (idempotent per appeal); dropping them
    loses them until the next restart. Records below the committed offset stay dropped.
    """
    return committed is not None and offset >= committed


_redelivered = 0


def _redeliver(offset: int, committed: int | None) -> bool:
    """:func:`refetched`, counted: how often the race it covers really happens."""
    global _redelivered
    if refetched(offset, committed):
        _redelivered += 1
        return True
    return False


async def _add_missing_gap(consumer: Any, tp: Any, first: int) -> None:
    """Let the commit pass offsets from ``first`` on only where they no longer exist.

    Faust marks every jump in offsets as a gap that counts as acknowledged, for compacted
    topics. Our acknowledged topics are never compacted; a jump means either records deleted
    by retention below the log start (a real gap) or a record fetched before a seek arriving
    ahead of the records from the committed offset, which are fetched again and delivered by
    :func:`refetched`. Faust's gap would count those as done, so acknowledging the early record
    let the commit jump past records not yet processed, and a crash then lost them (found in
    review; ``tests/streams/test_fastpath.py``). Only jumps are rare (after seeks), so the one
    broker round trip here is not on the per-record path. When the log start cannot be read,
    no gap: the commit then waits for the records instead of passing them.
    """
    try:
        earliest = (await consumer.earliest_offsets(tp)).get(tp)
    except Exception as exc:  # the safe side is "no gap"
        log.warning("log start of %s unknown (%s): no gap from offset %d", tp,
                    type(exc).__name__, first)
        return
    if earliest is not None and earliest > first:
        await consumer._add_gap(tp, first, earliest - 1)


def take_redelivered() -> int:
    """Records delivered again by :func:`refetched` since the last call (for a metric)."""
    global _redelivered
    n, _redelivered = _redelivered, 0
    return n


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - hot loop
    """Faust's ``Consumer._drain_messages`` with an eager hand-off (see module docstring)."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    suspend_flow = self.suspend_flow
    wait_first = self.wait_first

    get_read_offset = self._read_offset.__getitem__
    committed_offset = self._committed_offset
    set_read_offset = self._read_offset.__setitem__
    from faust.transport.consumer import CONSUMER_FETCHING

    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset or _redeliver(
                            offset, committed_offset.get(tp)):
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await _add_missing_gap(self, tp, r_offset + 1)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        delivery = callback(message)
                        if suspend_flow.is_set():
                            await wait_first(delivery, suspend_flow.wait())
                        else:
                            try:
                                yielded = delivery.send(None)
                            except StopIteration:
                                pass  # delivered without waiting: the common case
                            else:
                                await wait_first(_continue(delivery, yielded),
                                                 suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r", offset)
                unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


def install(enabled: bool = True) -> bool:
    """Patch Faust's consumer once per process; returns whether the fast path is active."""
    global _installed, _faust_original
    if not enabled:
        return False
    if _installed:
        return True
    from faust.transport.consumer import Consumer

    digest = source_digest()
    if digest not in KNOWN_SOURCES:
        log.warning("faust-streaming's Consumer._drain_messages differs from the checked "
                    "versions (sha256 %s); keeping Faust's own hand-off",
                    (digest or "none: absent")[:12])
        return False
    _faust_original = Consumer._drain_messages
    cast(Any, Consumer)._drain_messages = _drain_messages
    _installed = True
    return True
