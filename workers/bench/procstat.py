"""Process and consumer-group measurements the benchmark takes from outside a worker.

Why from outside: the benchmark must measure the worker exactly as it runs in production, with no
instrumentation of its own inside. CPU time and peak RSS come from ``/proc`` (no extra
dependency); progress comes from the consumer group's committed offsets against the topics' end
offsets, which is what "processed" means for a Kafka consumer (a batch is committed only after
its outputs were acknowledged).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")" the fields start at index 3 of proc(5): utime is 14, stime is 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, MiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Current resident set size (VmRSS) of a live process, MiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine() -> dict[str, Any]:
    """What the figures were measured on, including the load other users put on it."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_mb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem_mb = int(fh.readline().split()[1]) // 1024
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_mb": mem_mb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


@dataclass
class GroupSnapshot:
    at: float
    end: dict[str, int]
    committed: dict[str, int]
    #: Every non-empty partition's end was confirmed by a fetch answer in this snapshot; when
    #: not, ``end`` holds the largest ends known (never below an earlier snapshot's) but may be
    #: short, and "committed >= end" must not be read as "all processed".
    confirmed: bool = True


class GroupProgress:
    """Committed offsets of one consumer group and true end offsets, summed per topic.

    Committed offsets are read *before* end offsets: a topic whose producer committed its own
    input has had its outputs acknowledged before that commit, so they are in the end offsets
    read afterwards; "committed >= end" on every input topic then really means "all processed".

    The embedded broker (Tansu) reports a partition's end offset as the *base* offset of its
    last record batch, i.e. short by up to one batch; a fetch answer's high watermark is right.
    :meth:`snapshot` therefore fetches from each non-empty partition's last known offset until
    every one of them has answered (a few records per partition, cheap), and never reports a
    partition's end below one it reported before: an offset, once written, stays.
    """

    #: Seconds a snapshot waits for every non-empty partition's fetch answer; past it the
    #: snapshot is returned with ``confirmed`` False (a busy machine, a stalled broker).
    confirm_timeout = 10.0

    def __init__(self, bootstrap: str, group: str, topics: Iterable[str]) -> None:
        from kafka import KafkaConsumer

        self.group = group
        self.topics = list(topics)
        # Bound to the group only to read its committed offsets: it never subscribes, so it
        # never joins the group or takes part in its rebalances.
        self._group_reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                           enable_auto_commit=False)
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                       enable_auto_commit=False, fetch_max_wait_ms=20)
        self._tps: list[Any] = []
        #: The largest end seen per partition, across snapshots.
        self._ends: dict[Any, int] = {}

    def _partitions(self) -> list[Any]:
        from kafka import TopicPartition

        if not self._tps:
            self._consumer.topics()  # forces a metadata fetch: partitions_for_topic is cached
            tps: list[Any] = []
            missing = False
            for topic in self.topics:
                parts = self._consumer.partitions_for_topic(topic)
                missing = missing or not parts
                tps.extend(TopicPartition(topic, p) for p in sorted(parts or ()))
            if missing:  # metadata not there yet: use what we have, ask again next time
                return tps
            self._tps = tps
        return self._tps

    def snapshot(self) -> GroupSnapshot:
        committed: dict[str, int] = dict.fromkeys(self.topics, 0)
        for tp in self._partitions():
            try:
                offset = self._group_reader.committed(tp)
            except Exception:  # the group may not exist yet
                offset = None
            if offset:
                committed[tp.topic] += offset
        end: dict[str, int] = dict.fromkeys(self.topics, 0)
        ends, confirmed = self._true_end_offsets()
        for tp, off in ends.items():
            end[tp.topic] += off
        return GroupSnapshot(time.monotonic(), end, committed, confirmed)

    def true_end_offsets(self) -> dict[Any, int]:
        """End offsets, corrected for a broker that reports the last batch's base offset."""
        return self._true_end_offsets()[0]

    def _true_end_offsets(self) -> tuple[dict[Any, int], bool]:
        """End offsets and whether a fetch answer confirmed each non-empty partition's.

        Why not "until a poll comes back empty" (as before): on a loaded machine the first poll
        often returns nothing within its timeout because the answer has not arrived yet, not
        because there is nothing; the broker's short end then stood, and the benchmark took
        the worker for done one batch early. A fetch from a partition's last known offset
        always returns that record, so its arrival proves the answer, whose high watermark is
        the true end. Partitions reported empty are taken as empty (the quirk never reports a
        non-empty partition below 1).
        """
        tps = self._partitions()
        consumer = self._consumer
        ends = {tp: max(int(off or 0), self._ends.get(tp, 0))
                for tp, off in consumer.end_offsets(tps).items()}
        if set(consumer.assignment()) != set(tps):
            consumer.assign(tps)
        pending = set()
        for tp in tps:
            if ends.get(tp, 0) > 0:
                consumer.seek(tp, ends[tp] - 1)
                pending.add(tp)
            else:
                consumer.seek(tp, 0)
        deadline = time.monotonic() + self.confirm_timeout
        while pending and time.monotonic() < deadline:
            got = consumer.poll(timeout_ms=100, max_records=100_000)
            for tp, records in got.items():
                if not records:
                    continue
                high = consumer.highwater(tp)
                ends[tp] = max(ends.get(tp, 0), records[-1].offset + 1, high or 0)
                pending.discard(tp)
        for tp, off in ends.items():
            self._ends[tp] = max(self._ends.get(tp, 0), off)
        return ends, not pending

    def close(self) -> None:
        self._group_reader.close()
        self._consumer.close()
