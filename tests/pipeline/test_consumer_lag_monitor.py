"""``appeals_consumer_lag`` exports only the partitions assigned to this worker.

A revoked partition kept exporting its last lag, so after a rebalance the recording rule
``topic:appeals_consumer_lag:sum`` counted it twice (this worker's stale value and the new
owner's).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

from monitoring import metrics
from workers import pipeline


class TP(NamedTuple):
    topic: str
    partition: int


def _exported(topic: str) -> dict[str, float]:
    return {s.labels["partition"]: s.value for m in metrics.REGISTRY.collect()
            if m.name == "appeals_consumer_lag" for s in m.samples
            if s.labels["topic"] == topic}


def _monitor(consumer: Any) -> Callable[[], Any]:
    """The lag monitor's timer body, installed on a stand-in app with ``consumer``."""
    timers: list[tuple[float, Callable[[], Any]]] = []

    def timer(interval: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        def register(fn: Callable[[], Any]) -> Callable[[], Any]:
            timers.append((interval, fn))
            return fn
        return register

    app = SimpleNamespace(consumer=consumer, timer=timer)
    pipeline._install_lag_monitor(app, 2.5)  # type: ignore[arg-type]
    ((interval, tick),) = timers
    assert interval == 2.5  # APPEALS_LAG_INTERVAL
    return tick


def test_a_revoked_partition_stops_exporting_its_lag() -> None:
    topic = f"appeals.routed.{uuid.uuid4().hex[:8]}"
    assignment = [TP(topic, 0), TP(topic, 1), TP(topic, 2)]
    consumer = SimpleNamespace(assignment=lambda: list(assignment), highwater=lambda tp: 5000,
                               _read_offset={})
    tick = _monitor(consumer)

    asyncio.run(tick())
    assert _exported(topic) == {"0": 5000.0, "1": 5000.0, "2": 5000.0}

    assignment[:] = [TP(topic, 0)]  # rebalance: partitions 1 and 2 go to another worker
    consumer._read_offset[TP(topic, 0)] = 4899
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
                               highwater=lambda tp: 10, _read_offset={TP(topic, 0): 9})
    tick = _monitor(consumer)
    asyncio.run(tick())
    assert _exported(topic) == {"0": 0.0}
    assert _exported(changelog) == {}


def test_a_partition_whose_only_record_was_read_has_no_lag() -> None:
    """Read offset 0 is the first record read, not "nothing read" (was lag 1 for good on a
    partition with one record; review of session 16)."""
    topic = f"appeals.routed.{uuid.uuid4().hex[:8]}"
    consumer = SimpleNamespace(assignment=lambda: [TP(topic, 0), TP(topic, 1)],
                               highwater=lambda tp: 1, _read_offset={TP(topic, 0): 0})
    tick = _monitor(consumer)
    asyncio.run(tick())
    assert _exported(topic) == {"0": 0.0, "1": 1.0}
