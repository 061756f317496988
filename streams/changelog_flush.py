"""A commit waits until every table changelog record is with the producer (faust-streaming 0.15).

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
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, cast

log = logging.getLogger(__name__)

WARN_AFTER_S = 10.0
_INFLIGHT = "_appeals_inflight"
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from faust.transport.producer import ProducerBuffer

    original_send = ProducerBuffer._send_pending

    @functools.wraps(original_send)
    async def _send_pending(self: Any, fut: Any) -> None:
        setattr(self, _INFLIGHT, getattr(self, _INFLIGHT, 0) + 1)
        try:
            await original_send(self, fut)
        finally:
            setattr(self, _INFLIGHT, getattr(self, _INFLIGHT) - 1)

    async def flush(self: Any) -> None:
        """Wait until the buffer is empty and nothing is being handed to the producer."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        warned = False
        while self.size or getattr(self, _INFLIGHT, 0):
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

    cast(Any, ProducerBuffer)._send_pending = _send_pending
    cast(Any, ProducerBuffer).flush = flush
    _installed = True
