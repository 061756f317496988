"""The eager hand-off that replaces Faust's per-record task race (streams.fastpath).

The pipeline's integration, chaos and scale-out tests run with it on (the default); these tests
pin down the coroutine mechanics it relies on and the version guard.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams import fastpath


async def _step_then_finish(coro: Any) -> tuple[bool, Any]:
    """Drive ``coro`` the way the fast path does; returns (finished eagerly, result)."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, await fastpath._continue(coro, yielded)


def test_delivery_that_does_not_wait_finishes_in_one_step() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10)

        async def deliver() -> str:
            await queue.put(1)  # room in the queue: no suspension
            return "done"

        eager, result = await _step_then_finish(deliver())
        assert (eager, result, queue.qsize()) == (True, "done", 1)

    asyncio.run(scenario())

def test_delivery_that_waits_is_resumed_by_the_event_loop() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)  # full: the delivery must wait for a get

        async def deliver() -> str:
            await queue.put(1)
            await asyncio.sleep(0)
            return "delivered"

        async def consumer() -> list[int]:
            await asyncio.sleep(0.01)
            return [await queue.get(), await queue.get()]

        (eager, result), got = await asyncio.gather(_step_then_finish(deliver()), consumer())
        assert (eager, result, got) == (False, "delivered", [0, 1])

    asyncio.run(scenario())

def test_waiting_delivery_raced_like_faust_and_cancelled_when_flow_suspends() -> None:
    async def scenario() -> None:
        """The slow path is Faust's: ``wait_first`` against suspend_flow, loser cancelled."""
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        cancelled = asyncio.Event()

        async def deliver() -> None:
            try:
                await queue.put(1)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        coro = deliver()
        yielded = coro.send(None)
        suspend = asyncio.Event()
        task = asyncio.ensure_future(fastpath._continue(coro, yielded))
        asyncio.get_running_loop().call_later(0.01, suspend.set)
        _done, pending = await asyncio.wait({task, asyncio.ensure_future(suspend.wait())},
                                           return_when=asyncio.FIRST_COMPLETED)
        assert task in pending
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cancelled.is_set()
        assert queue.qsize() == 1  # the blocked put never happened

    asyncio.run(scenario())

def test_errors_inside_a_resumed_delivery_propagate() -> None:
    async def scenario() -> None:
        async def deliver() -> None:
            await asyncio.sleep(0.001)
            raise LookupError("no callback for this partition")

        with pytest.raises(LookupError):
            await _step_then_finish(deliver())

    asyncio.run(scenario())

def test_install_refuses_an_unchecked_faust_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.consumer import Consumer

    monkeypatch.setattr(fastpath, "_installed", False)
    original = Consumer._drain_messages
    monkeypatch.setattr(fastpath, "source_digest", lambda: "0" * 64)
    if original is fastpath._drain_messages:
        pytest.skip("already installed in this process by an earlier test")
    assert fastpath.install() is False
    assert Consumer._drain_messages is original


def test_installed_faust_is_the_checked_version() -> None:
    """A faust-streaming upgrade must be looked at: this fails until its digest is added."""
    assert fastpath.source_digest() in fastpath.KNOWN_SOURCES


def test_disabled_by_setting() -> None:
    assert fastpath.install(enabled=False) is False


def test_a_record_below_the_read_offset_is_delivered_only_from_the_committed_offset_on() -> None:
    # Re-read after a seek back to the committed offset 100: delivered again.
    assert fastpath.refetched(100, committed=100)
    assert fastpath.refetched(150, committed=100)
    # Already committed: stays dropped, as Faust drops it.
    assert not fastpath.refetched(99, committed=100)
    # Nothing committed yet: Faust's rule alone.
    assert not fastpath.refetched(5, committed=None)


def test_redeliveries_are_counted_for_the_metric() -> None:
    fastpath.take_redelivered()
    assert fastpath._redeliver(100, committed=100)
    assert not fastpath._redeliver(99, committed=100)
    assert fastpath._redeliver(120, committed=100)
    assert fastpath.take_redelivered() == 2
    assert fastpath.take_redelivered() == 0
