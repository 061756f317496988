"""``GroupProgress`` end offsets against a fake consumer with the embedded broker's quirk.

The broker reports a partition's end as its last batch's base offset + 1; only a fetch shows
the true end. The bench once took "committed >= end" on such a short end for done (sla.events
69,205 instead of 69,221): the fetch answer had not arrived within the first 30 ms poll, and the
correction gave up on that first empty poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from kafka import TopicPartition

from workers.bench import procstat

TOPIC = "bench-out"
TP = TopicPartition(TOPIC, 0)


@dataclass
class Record:
    offset: int


class SlowBroker:
    """One partition of 100 records, last batch 90-99, reported end 91.

    ``late`` polls after each seek return nothing (the answer is on its way); ``answer`` False:
    none ever comes (a stalled broker).
    """

    def __init__(self, late: int, answer: bool = True) -> None:
        self.late = late
        self.answer = answer
        self.position = 0
        self.polls_since_seek = 0
        self.high: int | None = None

    # -- the KafkaConsumer calls GroupProgress makes --------------------------------------

    def topics(self) -> set[str]:
        return {TOPIC}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def committed(self, tp: Any) -> int | None:
        return None

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {TP: 91}

    def assignment(self) -> set[Any]:
        return {TP}

    def assign(self, tps: list[Any]) -> None:
        pass

    def seek(self, tp: Any, offset: int) -> None:
        self.position = offset
        self.polls_since_seek = 0

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, list[Record]]:
        self.polls_since_seek += 1
        if not self.answer or self.polls_since_seek <= self.late or self.position >= 100:
            return {}
        base = min(self.position, 90) // 90 * 90  # the batch holding the position
        records = [Record(o) for o in range(max(base, self.position), 100)]
        self.position = 100
        self.high = 100
        return {TP: records}

    def highwater(self, tp: Any) -> int | None:
        return self.high

    def close(self) -> None:
        pass


def progress(monkeypatch: pytest.MonkeyPatch, broker: SlowBroker) -> procstat.GroupProgress:
    monkeypatch.setattr("kafka.KafkaConsumer", lambda **kw: broker)
    gp = procstat.GroupProgress("127.0.0.1:1", "group", [TOPIC])
    gp.confirm_timeout = 0.5
    return gp


def test_a_late_fetch_answer_still_corrects_the_short_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    snap = progress(monkeypatch, SlowBroker(late=2)).snapshot()
    assert snap.end == {TOPIC: 100}
    assert snap.confirmed


def test_an_end_never_falls_below_one_seen_before(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = SlowBroker(late=0)
    gp = progress(monkeypatch, broker)
    assert gp.snapshot().end == {TOPIC: 100}
    broker.answer = False  # the broker stalls: only its short figure is left
    snap = gp.snapshot()
    assert snap.end == {TOPIC: 100}
    assert not snap.confirmed, "an end no fetch answered is not confirmed"
