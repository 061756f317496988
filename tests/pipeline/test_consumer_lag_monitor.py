"""``appeals_consumer_lag``: what this worker's partitions hold after the committed offset.

A revoked partition kept exporting its last lag, so after a rebalance the recording rule
``topic:appeals_consumer_lag:sum`` counted it twice (this worker's stale value and the new
owner's). The lag was counted from what Faust had *read*, so records waiting unprocessed in a
stream's buffer did not count, and a partition Faust had stopped fetching kept its old high
watermark: a worker whose agents hung showed no growing lag (review of the ops session).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

from monitoring import metrics
from workers import lag, pipeline, progress


class TP(NamedTuple):
    topic: str
    partition: int


def _exported(topic: str) -> dict[str, float]:
    return {s.labels["partition"]: s.value for m in metrics.REGISTRY.collect()
            if m.name == "appeals_consumer_lag" for s in m.samples
            if s.labels["topic"] == topic}


def _monitor(consumer: Any, timers: list[tuple[float, Callable[[], Any]]] | None = None
             ) -> Callable[[], Any]:
    """The lag monitor's timer body, installed on a stand-in app with ``consumer``;
    ``timers`` gets every timer it installs (the end-offset probe's too)."""
    timers = [] if timers is None else timers

    def timer(interval: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        def register(fn: Callable[[], Any]) -> Callable[[], Any]:
            timers.append((interval, fn))
            return fn
        return register

    app = SimpleNamespace(consumer=consumer, timer=timer)
    pipeline._install_lag_monitor(app, 2.5)  # type: ignore[arg-type]
    (interval, tick), *_ = timers
    assert interval == 2.5  # APPEALS_LAG_INTERVAL
    return tick


def test_a_revoked_partition_stops_exporting_its_lag() -> None:
    topic = f"appeals.routed.{uuid.uuid4().hex[:8]}"
    assignment = [TP(topic, 0), TP(topic, 1), TP(topic, 2)]
    consumer = SimpleNamespace(assignment=lambda: list(assignment), highwater=lambda tp: 5000,
                               _committed_offset={})
    tick = _monitor(consumer)

    asyncio.run(tick())
    assert _exported(topic) == {"0": 5000.0, "1": 5000.0, "2": 5000.0}

    assignment[:] = [TP(topic, 0)]  # rebalance: partitions 1 and 2 go to another worker
    consumer._committed_offset[TP(topic, 0)] = 4900
    asyncio.run(tick())
    assert _exported(topic) == {"0": 100.0}

    assignment.append(TP(topic, 2))  # partition 2 comes back
    asyncio.run(tick())
    assert _exported(topic) == {"0": 100.0, "2": 5000.0}

    assignment.clear()  # everything revoked
    asyncio.run(tick())
    assert _exported(topic) == {}


def test_table_changelogs_are_not_counted_as_lag() -> None:
    """Read only during recovery, then paused: their 'lag' never moves and stayed in the total."""
    topic = f"appeals.routed.{uuid.uuid4().hex[:8]}"
    changelog = f"citizen-appeals-{uuid.uuid4().hex[:6]}-sla-state-changelog"
    consumer = SimpleNamespace(assignment=lambda: [TP(topic, 0), TP(changelog, 0)],
                               highwater=lambda tp: 10, _committed_offset={TP(topic, 0): 10})
    tick = _monitor(consumer)
    asyncio.run(tick())
    assert _exported(topic) == {"0": 0.0}
    assert _exported(changelog) == {}


def test_a_partition_whose_only_record_was_committed_has_no_lag() -> None:
    """Committed offset 1 is the first record processed (offset 0, "nothing committed", and
    a partition never committed count from its start)."""
    topic = f"appeals.routed.{uuid.uuid4().hex[:8]}"
    consumer = SimpleNamespace(assignment=lambda: [TP(topic, 0), TP(topic, 1)],
                               highwater=lambda tp: 1, _committed_offset={TP(topic, 0): 1})
    tick = _monitor(consumer)
    asyncio.run(tick())
    assert _exported(topic) == {"0": 0.0, "1": 1.0}


def test_records_read_but_not_processed_count_as_lag() -> None:
    """A stage that hangs has read up to its stream buffer: those records are not processed."""
    topic = f"appeals.intake.pos.{uuid.uuid4().hex[:8]}"
    tp = TP(topic, 0)
    consumer = SimpleNamespace(assignment=lambda: [tp], highwater=lambda tp: 9000,
                               _read_offset={tp: 8999}, _committed_offset={tp: 50})
    tick = _monitor(consumer)
    asyncio.run(tick())
    assert _exported(topic) == {"0": 8950.0}


def test_a_partition_no_longer_fetched_gets_its_end_from_a_probe(monkeypatch) -> None:
    """Faust stops fetching a partition whose stream buffer is full: its high watermark stands
    still while records keep arriving. A probe finds the end; a partition whose watermark
    moves (or that has nothing waiting) is never probed."""
    from streams import end_offsets

    topic = f"appeals.intake.pos.{uuid.uuid4().hex[:8]}"
    stuck, moving, idle = TP(topic, 0), TP(topic, 1), TP(topic, 2)
    highs = {stuck: 8242, moving: 100, idle: 7}
    consumer = SimpleNamespace(assignment=lambda: [stuck, moving, idle],
                               highwater=lambda tp: highs[tp], transport=None,
                               _committed_offset={stuck: 50, moving: 90, idle: 7})
    probed: list[list[Any]] = []

    async def current_offsets(probe: Any, tps: Any, timeout: float = 0
                              ) -> tuple[dict[Any, int], dict[Any, int]]:
        probed.append(sorted(tps))
        return {tp: 25_000 for tp in tps}, {tp: 0 for tp in tps}

    monkeypatch.setattr(end_offsets, "current_offsets", current_offsets)
    monkeypatch.setattr(end_offsets, "probe_consumer", lambda app, transport: object())
    timers: list[tuple[float, Callable[[], Any]]] = []
    tick = _monitor(consumer, timers)
    ((_, probe_timer),) = [(i, fn) for i, fn in timers if fn is not tick]

    asyncio.run(tick())
    asyncio.run(probe_timer())  # first round: no watermark seen standing still yet
    assert probed == []
    highs[moving] = 160
    asyncio.run(tick())
    asyncio.run(probe_timer())
    assert probed == [[stuck]]
    asyncio.run(tick())
    assert _exported(topic) == {"0": 25_000 - 50.0, "1": 70.0, "2": 0.0}

    highs[stuck] = 30_000  # fetched again: its own watermark is newer than the probe's
    asyncio.run(tick())
    assert _exported(topic)["0"] == 30_000 - 50.0


def test_committed_lag_arithmetic() -> None:
    assert lag.committed_lag(None, None, 5) is None  # no end known yet: not exported
    assert lag.committed_lag(100, None, None) == 100  # nothing committed: from the start
    assert lag.committed_lag(100, None, 0) == 100
    assert lag.committed_lag(100, None, 100) == 0
    assert lag.committed_lag(100, 400, 60) == 340  # the probe saw further
    assert lag.committed_lag(500, 400, 60) == 440  # the consumer's own watermark is newer
    assert lag.committed_lag(None, 400, 60) == 340
    assert lag.committed_lag(10, None, 12) == 0  # never negative (a watermark not yet seen)


def test_an_end_probe_forgets_revoked_partitions_and_ends_overtaken() -> None:
    probe = lag.EndProbe()
    probe.found({"a": 50, "b": 70}, {"a": 20, "b": 30})
    probe.found({"a": 40}, {"a": 10})  # an older answer never lowers an end nor a start
    assert probe.end("a", 10) == 50 and probe.start("a", 30) == 20
    assert probe.end("a", 60) is None and probe.end("a", 10) is None  # overtaken: dropped
    assert probe.start("a", 60) == 20  # a start stays: it only ever moves forward
    probe.keep_only({"a"})
    assert probe.end("b", None) is None and probe.start("b", None) is None
    assert probe.start("a", 5) is None  # below the start: the topic was made again


def test_a_partition_never_committed_counts_from_its_log_start() -> None:
    """Nothing committed used to count from offset 0: a partition whose head retention deleted
    showed its whole end offset as lag for good. The log start is where the group begins."""
    assert lag.committed_lag(120, None, None, start=120) == 0  # head deleted, nothing waits
    assert lag.committed_lag(125, None, None, start=120) == 5  # five wait from the log start
    assert lag.committed_lag(125, None, 50, start=120) == 5  # committed before the deletion
    assert lag.committed_lag(125, None, 122, start=120) == 3  # the committed offset rules
    assert lag.committed_lag(125, None, None, start=None) == 125  # not probed yet


def _stalled_after_probes(monkeypatch: Any, tp: TP, high: int, start: int,
                          committed: dict[Any, int], **consumer: Any) -> list[Any]:
    """The lag monitor and its probe over a stand-in consumer, with a stage reading ``tp``'s
    topic registered 700 s ago: the stalls left after a few rounds (probes find ``start``)."""
    from streams import end_offsets

    async def current_offsets(probe: Any, tps: Any, timeout: float = 0
                              ) -> tuple[dict[Any, int], dict[Any, int]]:
        return {t: high for t in tps}, {t: start for t in tps}

    monkeypatch.setattr(end_offsets, "current_offsets", current_offsets)
    monkeypatch.setattr(end_offsets, "probe_consumer", lambda app, transport: object())
    stages = progress.StageProgress(export=False)
    stages.register("intake", [tp.topic], now=time.time() - 700)
    monkeypatch.setattr(progress, "STAGES", stages)
    timers: list[tuple[float, Callable[[], Any]]] = []
    tick = _monitor(SimpleNamespace(assignment=lambda: [tp], highwater=lambda _: high,
                                    transport=None, _committed_offset=committed, **consumer),
                    timers)
    ((_, probe_timer),) = [(i, fn) for i, fn in timers if fn is not tick]
    for _ in range(3):
        asyncio.run(tick())
        asyncio.run(probe_timer())
    asyncio.run(tick())
    return stages.stalled(600)


def test_a_partition_whose_head_retention_deleted_is_not_a_stall(monkeypatch: Any) -> None:
    """A new group (or expired offsets) on a partition whose records retention deleted: nothing
    to process, so nothing is ever committed; its end offset counted as backlog for good and
    the stage was reported stalled (``/healthz`` 503, AppealsStageStalled)."""
    tp = TP(f"appeals.intake.hotline.{uuid.uuid4().hex[:8]}", 3)
    assert _stalled_after_probes(monkeypatch, tp, high=120, start=120, committed={}) == []
    assert _exported(tp.topic) == {"3": 0.0}


def test_a_fresh_group_hung_on_its_first_batch_is_still_a_stall(monkeypatch: Any) -> None:
    """Read (its position moved) but nothing processed nor committed: every record from the
    log start waits, and the stage is stalled."""
    tp = TP(f"appeals.intake.hotline.{uuid.uuid4().hex[:8]}", 0)
    [stall] = _stalled_after_probes(monkeypatch, tp, high=105, start=100, committed={},
                                    _read_offset={tp: 104})
    assert (stall.stage, stall.backlog) == ("intake", 5)
    assert _exported(tp.topic) == {"0": 5.0}
