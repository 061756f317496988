"""Faust's producer-buffer flush waits for every queued table changelog record (changelog_flush).

Faust commits offsets right after this flush; a record still in the buffer then is lost with the
process although the event that wrote it is committed. The tests use Faust's own
``ProducerBuffer`` with a channel whose hand-over to the producer is slow, as when the event
loop is busy with a batch.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from streams import changelog_flush


class _SlowChannel:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.handed_over: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(self.delay)
        self.handed_over.append(fut.n)


def _flush_with(n: int, delay: float) -> list[int]:
    async def main() -> list[int]:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        channel = _SlowChannel(delay)
        try:
            for i in range(n):
                buffer.put(SimpleNamespace(n=i, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
            await asyncio.sleep(0)  # the sender takes the first record out of the queue
            await buffer.flush()
            return list(channel.handed_over)
        finally:
            await buffer.stop()

    return asyncio.run(main())


def test_flush_returns_only_when_every_record_is_handed_over() -> None:
    changelog_flush.install()
    # Each hand-over takes 0.25 s: Faust's own flush gives up after 0.1 s without progress.
    assert _flush_with(3, 0.25) == [0, 1, 2]


def test_flush_of_an_empty_buffer_returns_at_once() -> None:
    changelog_flush.install()
    assert _flush_with(0, 0.25) == []
