"""The eager hand-off that replaces Faust's per-record task race (streams.fastpath).

The pipeline's integration, chaos and scale-out tests run with it on (the default); these tests
pin down the coroutine mechanics it relies on and the version guard.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams import fastpath

REPO = Path(__file__).resolve().parents[2]


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

def test_install_refuses_an_unchecked_faust_version() -> None:
    """In a fresh interpreter: in this one an earlier test (any that builds the app) may have
    installed the patch already, and the check was then skipped (CI of c204720)."""
    code = (
        "from faust.transport.consumer import Consumer\n"
        "from streams import fastpath\n"
        "original = Consumer._drain_messages\n"
        "fastpath.source_digest = lambda: '0' * 64\n"
        "assert fastpath.install() is False\n"
        "assert Consumer._drain_messages is original\n"
        "assert not fastpath.installed()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


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


class _Consumer:
    """The parts of Faust's Consumer that ``_drain_messages`` and the commit arithmetic use;
    ``_add_gap`` and ``_new_offset`` are Faust's own methods."""

    from faust.transport.consumer import Consumer as _Faust

    _add_gap = _Faust._add_gap
    _new_offset = _Faust._new_offset

    def __init__(self, tp: Any, committed: int, earliest: int, batches: list[list[int]]) -> None:
        from collections import defaultdict
        from types import SimpleNamespace

        from intervaltree import IntervalTree

        self.tp = tp
        self._committed_offset = {tp: committed}
        self._read_offset = {tp: committed}
        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._gap: dict[Any, Any] = defaultdict(IntervalTree)
        self._commit_every = None
        self._n_acked = 0
        self._stopped = asyncio.Event()
        self.suspend_flow = asyncio.Event()
        self.diag = SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None)
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda t: True))
        self.should_stop = False
        self.delivered: list[int] = []
        self._earliest = earliest
        self._batches = batches

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_first(self, *coros: Any) -> None:  # only when a delivery would block
        raise AssertionError("deliveries here never block")

    async def callback(self, message: Any) -> None:
        self.delivered.append(message.offset)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return {tp: self._earliest for tp in tps}

    def getmany(self, timeout: float) -> Any:
        from faust.types.tuples import Message

        async def records() -> Any:
            if not self._batches:
                self._stopped.set()
                return
            for offset in self._batches.pop(0):
                yield self.tp, Message(self.tp.topic, self.tp.partition, offset, 0.0, 0, [],
                                       b"k", b"v", None, tp=self.tp)
        return records()

    def ack(self, offset: int) -> None:
        self._acked[self.tp].append(offset)
        self._acked[self.tp].sort()
        self._acked_index[self.tp].add(offset)


def _drain(consumer: _Consumer) -> None:
    from types import SimpleNamespace

    asyncio.run(fastpath._drain_messages(consumer, SimpleNamespace(_stopped=asyncio.Event())))


def test_an_early_record_after_a_seek_cannot_carry_the_commit_past_records_not_processed() -> None:
    from faust.types import TP

    tp = TP("appeals.intake.web", 0)
    # Seek back to the committed offset 100; a record fetched before the seek (150) arrives
    # ahead of the records read again from 100.
    consumer = _Consumer(tp, committed=100, earliest=0, batches=[[150, 151], [100, 101, 102]])
    _drain(consumer)
    assert consumer.delivered == [150, 151, 100, 101, 102]
    assert not consumer._gap[tp]  # 101..149 exist: they are not "done"
    consumer.ack(150)  # the early record is processed first
    assert consumer._new_offset(tp) is None  # the commit stays at 100
    for offset in range(101, 150):
        consumer.ack(offset)
    assert consumer._new_offset(tp) == 151


def test_records_deleted_by_retention_are_a_gap_the_commit_may_pass() -> None:
    from faust.types import TP

    tp = TP("appeals.intake.web", 0)
    # Down for longer than the retention: the log now starts at 150.
    consumer = _Consumer(tp, committed=100, earliest=150, batches=[[150, 151]])
    _drain(consumer)
    assert sorted((iv.begin, iv.end) for iv in consumer._gap[tp]) == [(101, 150)]
    consumer.ack(150)
    assert consumer._new_offset(tp) == 151


def test_a_seek_forgets_gaps_with_the_acknowledgements() -> None:
    from faust.types import TP

    from streams import ack_safety

    tp = TP("appeals.intake.web", 0)
    consumer = _Consumer(tp, committed=100, earliest=150, batches=[[150]])
    _drain(consumer)
    assert consumer._gap[tp]
    ack_safety.forget_acks(consumer)
    assert not consumer._gap[tp]
