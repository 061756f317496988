"""Acknowledgements of skipped records are forgotten when Faust seeks (streams.ack_safety).

The end-to-end proof is ``tests/chaos/test_chaos_kill.py``, which lost ~100 records per
partition per kill without this fix; these tests pin down the mechanism on Faust's own consumer
bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from faust.types import TP

from streams import ack_safety


class _Consumer:
    """The slice of ``faust.transport.consumer.Consumer`` that the fix touches."""

    def __init__(self) -> None:
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)


def test_forget_acks_drops_every_pending_acknowledgement() -> None:
    consumer = _Consumer()
    a, b = TP("appeals.intake.web", 0), TP("appeals.intake.web", 1)
    consumer._acked[a] = list(range(86, 186))
    consumer._acked_index[a] = set(range(86, 186))
    consumer._acked[b] = [7]
    consumer._acked_index[b] = {7}
    assert ack_safety.forget_acks(consumer) == 101
    assert consumer._acked[a] == [] and consumer._acked[b] == []
    assert consumer._acked_index[a] == set() and consumer._acked_index[b] == set()


def test_faust_new_offset_no_longer_jumps_over_skipped_records() -> None:
    """With the skipped records' acks forgotten, the commit only covers processed ones."""
    from faust.transport.consumer import Consumer

    consumer: Any = _Consumer()
    consumer._committed_offset = {}
    consumer._gap = defaultdict(list)
    tp = TP("appeals.intake.web", 0)
    consumer._committed_offset[tp] = None
    # Skipped while flow was suspended (and acknowledged by Faust): 0..185.
    consumer._acked[tp] = list(range(0, 186))
    consumer._acked_index[tp] = set(range(0, 186))
    assert Consumer._new_offset(consumer, tp) == 186  # Faust alone: commit past all of them
    consumer._acked[tp] = list(range(0, 186))
    consumer._acked_index[tp] = set(range(0, 186))
    ack_safety.forget_acks(consumer)
    # After the seek the stream processes 0..85 and acknowledges them for real.
    consumer._acked[tp] = list(range(0, 86))
    consumer._acked_index[tp] = set(range(0, 86))
    assert Consumer._new_offset(consumer, tp) == 86


def test_install_wraps_perform_seek_once() -> None:
    from faust.transport.consumer import Consumer

    ack_safety.install()
    wrapped = Consumer.perform_seek
    ack_safety.install()
    assert Consumer.perform_seek is wrapped
    assert wrapped.__wrapped__ is not None  # type: ignore[attr-defined]

    class _Seeking(_Consumer):
        def __init__(self) -> None:
            super().__init__()
            self._read_offset: dict[TP, Any] = {}
            self._committed_offset: dict[TP, Any] = {}

        async def seek_to_committed(self) -> dict[TP, int]:
            return {}

    consumer = _Seeking()
    consumer._acked[TP("t", 0)] = [1, 2]
    consumer._acked_index[TP("t", 0)] = {1, 2}
    asyncio.run(wrapped(consumer))  # type: ignore[arg-type]
    assert consumer._acked[TP("t", 0)] == []



def test_consumer_ignores_acks_of_records_never_handed_to_a_batch() -> None:
    """A record a stream skipped is not acknowledged; a processed one is, once."""
    from types import SimpleNamespace

    from faust.transport.consumer import Consumer

    ack_safety.install()
    tp = TP("appeals.intake.web", 0)

    class _Message:
        def __init__(self, offset: int) -> None:
            self.topic, self.partition, self.offset, self.tp = tp.topic, 0, offset, tp
            self.acked = False

    def message(offset: int) -> Any:
        return _Message(offset)

    consumer = _ack_consumer(tp)
    skipped, processed = message(5), message(6)
    ack_safety.handed_to_body([SimpleNamespace(message=processed)])
    assert Consumer.ack(consumer, skipped) is False
    assert Consumer.ack(consumer, processed) is True
    assert consumer._acked[tp] == [6]
    again = message(6)  # the same offset acknowledged twice (a replayed copy) counts once
    assert Consumer.ack(consumer, again) is False


def _ack_consumer(tp: TP) -> Any:
    from types import SimpleNamespace

    consumer: Any = _Consumer()
    consumer.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda _t: True))
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._unacked_messages = set()
    consumer._n_acked = 0
    consumer._waiting_for_ack = None
    return consumer


class _Msg:
    def __init__(self, tp: TP, offset: int) -> None:
        self.topic, self.partition, self.offset, self.tp = tp.topic, tp.partition, offset, tp
        self.acked = False


def test_a_skipped_copy_of_a_record_in_a_batch_is_not_acknowledged_for_it() -> None:
    """While a batch still works on offset 7, a stream skips another copy of offset 7 (a
    redelivery) and acknowledges it: by (topic, partition, offset) that acknowledgement was
    taken in the batch's place, and the commit could pass 7 before the batch's effects were
    stored (review of session 16). Only the very message handed to the batch counts."""
    from types import SimpleNamespace

    from faust.transport.consumer import Consumer

    ack_safety.install()
    tp = TP("appeals.routed", 0)
    consumer = _ack_consumer(tp)
    in_batch, copy = _Msg(tp, 7), _Msg(tp, 7)
    ack_safety.handed_to_body([SimpleNamespace(message=in_batch)])
    assert Consumer.ack(consumer, copy) is False
    assert consumer._acked[tp] == []
    assert Consumer.ack(consumer, in_batch) is True
    assert consumer._acked[tp] == [7]


def test_a_seek_drops_the_batches_in_flight() -> None:
    """After a seek to the committed offsets a batch from before it is read again: its late
    acknowledgements must not move the commit (its writes for a revoked partition may have
    been skipped), and batches that never acknowledged are not kept for good."""
    from types import SimpleNamespace

    from faust.transport.consumer import Consumer

    ack_safety.install()
    tp = TP("appeals.routed", 1)

    class _Seeking(_Consumer):
        def __init__(self) -> None:
            super().__init__()
            self._read_offset: dict[TP, Any] = {}
            self._committed_offset: dict[TP, Any] = defaultdict(lambda: None)
            self.app = SimpleNamespace(
                topics=SimpleNamespace(acks_enabled_for=lambda _t: True))
            self._unacked_messages: set[Any] = set()
            self._n_acked = 0
            self._waiting_for_ack = None

        async def seek_to_committed(self) -> dict[TP, int]:
            return {}

    consumer = _Seeking()
    old = _Msg(tp, 3)
    ack_safety.handed_to_body([SimpleNamespace(message=old)])
    asyncio.run(Consumer.perform_seek(consumer))  # type: ignore[arg-type]
    assert Consumer.ack(consumer, old) is False
    assert not ack_safety._handed
