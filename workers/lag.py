"""Consumer lag as records not yet processed and committed, per partition.

Why not "high watermark minus what Faust has read": Faust reads ahead into each stream's buffer
(``APPEALS_STREAM_BUFFER`` records), so a worker whose agents hang showed a lag of 0 until the
buffer was full, and then a flat figure: Faust stops fetching a partition whose buffer is full,
and a consumer learns a partition's high watermark only from its fetches. The alert on growing
lag never fired and such a worker looked healthy (review of the ops session).

So the figure here is counted from the offset Faust last committed, which under the pipeline's
discipline (``workers.runtime``: a batch's outputs are acknowledged before its offsets, and
``streams.ack_safety``: only records a batch body got may be acknowledged) passes a record only
once a stage processed it. The end is the larger of the consumer's own high watermark and one a
probe fetched for partitions whose watermark stood still while records waited
(:class:`EndProbe`, every :data:`PROBE_INTERVAL_S` at most); the same probe finds their log
start, below which nothing is backlog (:func:`committed_lag`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

#: Seconds between end-offset probes of partitions the worker does not fetch: each probe is a
#: short-lived group-less consumer (ListOffsets and one small fetch per partition).
PROBE_INTERVAL_S = 20.0


def committed_lag(high: int | None, probed: int | None, committed: int | None,
                  start: int | None = None) -> int | None:
    """Records of a partition after its committed offset; None when no end is known yet.

    ``committed`` is Faust's committed offset, the next record to process (None: nothing
    committed yet, so the partition is read from its start). ``high`` is the consumer's high
    watermark, ``probed`` the end a probe found (either may be older than the other).
    ``start`` is the partition's log start a probe found: the group resets to it when it has
    no committed offset or one retention deleted past (the workers' ``auto_offset_reset`` is
    ``earliest``), so records before it are no backlog. Counted from 0 instead, a partition
    whose head retention deleted, never committed by the group (a new group or app id,
    offsets expired), showed its whole end offset as lag for good: the stage was never on
    track, ``/healthz`` answered 503 and ``AppealsStageStalled`` fired with nothing wrong. A
    stage that hangs on its first batch still shows every record from the log start.
    """
    ends = [end for end in (high, probed) if end is not None]
    if not ends:
        return None
    return max(0, max(ends) - max(committed or 0, start or 0))


class EndProbe:
    """The ends and log starts a probe found, and which partitions want one.

    A partition is probed when records wait on it and its high watermark has not moved since
    the previous probe round: a partition Faust fetches has a fresh watermark with each fetch,
    so in a worker that keeps up nothing is probed. So is one whose lag counts records
    retention deleted (nothing committed, the watermark still): its log start corrects it.
    """

    def __init__(self) -> None:
        self.ends: dict[Any, int] = {}
        self.starts: dict[Any, int] = {}
        self._watermarks: dict[Any, int | None] = {}

    def end(self, tp: Any, high: int | None) -> int | None:
        """The probed end of ``tp`` while it is ahead of ``high`` (dropped once it is not)."""
        probed = self.ends.get(tp)
        if probed is not None and high is not None and high >= probed:
            del self.ends[tp]
            return None
        return probed

    def due(self, lags: Mapping[Any, int | None], highs: Mapping[Any, int | None]) -> list[Any]:
        """Partitions to probe now: records wait (or the end is unknown) and the watermark stood
        still since the last call; remembers the watermarks for the next call."""
        due = [tp for tp, lag in lags.items()
               if (lag is None or lag > 0) and tp in self._watermarks
               and self._watermarks[tp] == highs.get(tp)]
        self._watermarks = {tp: highs.get(tp) for tp in lags}
        return due

    def start(self, tp: Any, high: int | None) -> int | None:
        """The probed log start of ``tp`` (dropped when the watermark is below it: the topic
        was deleted and made again, its offsets from 0)."""
        start = self.starts.get(tp)
        if start is not None and high is not None and high < start:
            del self.starts[tp]
            return None
        return start

    def found(self, ends: Mapping[Any, int], starts: Mapping[Any, int] | None = None) -> None:
        """Record a probe's answer; an older answer never lowers an end or a log start
        (retention only moves the start forward)."""
        for tp, end in ends.items():
            if end > self.ends.get(tp, -1):
                self.ends[tp] = end
        for tp, start in (starts or {}).items():
            if start > self.starts.get(tp, -1):
                self.starts[tp] = start

    def keep_only(self, assigned: Collection[Any]) -> None:
        """Forget revoked partitions: their probed end or start would outlive a later
        assignment."""
        for known in (self.ends, self.starts):
            for tp in [tp for tp in known if tp not in assigned]:
                del known[tp]


def committed_offsets(consumer: Any, tps: Iterable[Any]) -> dict[Any, int | None]:
    """Faust's committed offsets (``Consumer._committed_offset``, the offsets it last
    committed or sought to; no public accessor), None where it holds none."""
    table = getattr(consumer, "_committed_offset", {})
    return {tp: table.get(tp) for tp in tps}
