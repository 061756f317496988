"""Whether each stage of this worker gets on with its records: the signal of a hung agent.

Why: a worker whose agents hang (an await that never returns: a broker that stops
acknowledging, a Redis call without a timeout) keeps its process, its timers and ``/metrics``;
``appeals_worker_up`` stays 1 and nothing in Faust tells. Each stage's batch loop
(:func:`workers.runtime.batches`) reports every batch it finishes here, and the lag monitor
reports each stage's backlog: the records of its input partitions not yet processed and
committed (:mod:`workers.lag`).

A stage is *on track* when it finished a batch, when it has nothing waiting, or when it cannot
work (the worker starts, rebalances or recovers its tables: Faust holds every stream then).
``appeals_stage_last_progress_timestamp_seconds{stage}`` is the last moment it was; a stage
that was not for longer than ``APPEALS_STAGE_STALL_TIMEOUT`` is stalled (``/healthz`` 503,
alert ``AppealsStageStalled`` after 10 min). So an idle worker stays healthy, and one that
catches up on a backlog after a restart does too, as long as its batches end.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring import metrics

#: Stages whose records wait on purpose: the retry agent holds a batch until its parked alerts'
#: next attempt (up to APPEALS_NOTIFY_RETRY_BACKOFF_MAX or APPEALS_NOTIFY_RETRY_AFTER_MAX), so
#: a long time without a finished batch is its normal state. Its gauge is exported; parked
#: alerts that wait too long are AppealsSupervisorAlertsStuck's.
WAITS_ON_PURPOSE = frozenset({"notify_retry"})


@dataclass
class _Stage:
    topics: set[str] = field(default_factory=set)
    on_track_at: float = 0.0
    backlog: int = 0


@dataclass(frozen=True)
class Stall:
    stage: str
    seconds: float
    backlog: int


class StageProgress:
    """The stages of one worker process and when each was last on track."""

    def __init__(self, export: bool = True) -> None:
        self._stages: dict[str, _Stage] = {}
        self._export = export

    def register(self, stage: str, topics: Iterable[str], now: float | None = None) -> None:
        """A stage starts reading ``topics``: on track from now (it has done nothing yet)."""
        entry = self._stages.get(stage)
        if entry is None:
            entry = self._stages[stage] = _Stage()
            self._on_track(stage, entry, time.time() if now is None else now)
        entry.topics.update(topics)

    def batch_done(self, stage: str, now: float | None = None) -> None:
        entry = self._stages.get(stage)
        if entry is not None:
            self._on_track(stage, entry, time.time() if now is None else now)

    def observe(self, lags: Mapping[Any, int | None], can_work: bool,
                now: float | None = None) -> None:
        """The lag monitor's figures (partition to records after its committed offset): a
        stage with none waiting, or a worker that cannot work, is on track."""
        now = time.time() if now is None else now
        for stage, entry in self._stages.items():
            entry.backlog = sum(behind or 0 for tp, behind in lags.items()
                                if tp.topic in entry.topics)
            if not can_work or entry.backlog == 0:
                self._on_track(stage, entry, now)

    def stalled(self, threshold: float, now: float | None = None) -> list[Stall]:
        """Stages not on track for longer than ``threshold`` seconds (those that wait on
        purpose left out)."""
        now = time.time() if now is None else now
        return [Stall(stage, now - entry.on_track_at, entry.backlog)
                for stage, entry in sorted(self._stages.items())
                if stage not in WAITS_ON_PURPOSE and now - entry.on_track_at > threshold]

    def stages(self) -> Collection[str]:
        return self._stages.keys()

    def waits_on_purpose(self, topic: str) -> bool:
        """Whether only stages that wait on purpose (:data:`WAITS_ON_PURPOSE`) read ``topic``:
        its records wait with the watermark still as a matter of course, so the lag monitor's
        end probe leaves it alone (it opened a consumer every 20 s for as long as alerts were
        parked)."""
        readers = [stage for stage, entry in self._stages.items() if topic in entry.topics]
        return bool(readers) and all(stage in WAITS_ON_PURPOSE for stage in readers)

    def _on_track(self, stage: str, entry: _Stage, now: float) -> None:
        if now > entry.on_track_at:
            entry.on_track_at = now
            if self._export:
                metrics.child(metrics.STAGE_LAST_PROGRESS, stage).set(now)


#: The worker process's stages (every agent of a worker reports here, as to ``metrics``).
STAGES = StageProgress()


def can_work(app: Any) -> bool:
    """Faust lets the streams run: no rebalance, no table recovery under way."""
    if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
        return False
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    completed = getattr(recovery, "completed", None)
    return completed is None or completed.is_set()
