"""Which stage of a worker is stalled: records wait and no batch ends (workers.progress).

A worker whose agents hung answered ``/healthz`` 200 and exported ``appeals_worker_up`` 1 for
good; nothing told it from a healthy one (review of the ops session). An idle stage, one that
cannot work (rebalance, table recovery) and the retry agent, whose batches wait on purpose, must
never count as stalled.
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from workers import pipeline
from workers.progress import StageProgress


class TP(NamedTuple):
    topic: str
    partition: int


T0 = 1_000_000.0


def _stages() -> StageProgress:
    stages = StageProgress(export=False)
    stages.register("intake", ["t.appeals.intake.pos", "t.appeals.intake.web"], now=T0)
    stages.register("sla", ["t.appeals.routed"], now=T0)
    stages.register("notify_retry", ["t.appeals.notify.retry"], now=T0)
    return stages


def test_a_stage_with_records_waiting_and_no_batch_is_stalled() -> None:
    stages = _stages()
    lags = {TP("t.appeals.intake.pos", 0): 400, TP("t.appeals.intake.web", 1): 12,
            TP("t.appeals.routed", 0): 0}
    for second in range(0, 700, 5):
        stages.observe(lags, can_work=True, now=T0 + second)
    [stall] = stages.stalled(600, now=T0 + 700)
    assert (stall.stage, stall.backlog) == ("intake", 412)
    assert stall.seconds == 700
    stages.batch_done("intake", now=T0 + 701)  # it got on again
    assert stages.stalled(600, now=T0 + 702) == []


def test_an_idle_worker_stays_on_track() -> None:
    stages = _stages()
    for second in range(0, 7200, 5):
        stages.observe({TP("t.appeals.intake.pos", 0): 0}, can_work=True, now=T0 + second)
    assert stages.stalled(600, now=T0 + 7200) == []


def test_a_busy_stage_is_on_track_while_its_batches_end() -> None:
    stages = _stages()
    for second in range(0, 3600, 5):
        stages.observe({TP("t.appeals.routed", 0): 5000}, can_work=True, now=T0 + second)
        stages.batch_done("sla", now=T0 + second + 1)
    assert stages.stalled(600, now=T0 + 3601) == []


def test_a_rebalance_or_recovery_is_not_a_stall() -> None:
    """Faust holds every stream while it rebalances or recovers tables: a long recovery with a
    backlog waiting must not take the worker for a hung one, nor may its end."""
    stages = _stages()
    lags = {TP("t.appeals.intake.pos", 0): 400}
    for second in range(0, 1800, 5):
        stages.observe(lags, can_work=False, now=T0 + second)
    assert stages.stalled(600, now=T0 + 1800) == []
    stages.observe(lags, can_work=True, now=T0 + 1805)
    assert stages.stalled(600, now=T0 + 1900) == []


def test_the_retry_agent_waits_on_purpose() -> None:
    stages = _stages()
    for second in range(0, 3600, 5):
        stages.observe({TP("t.appeals.notify.retry", 0): 3}, can_work=True, now=T0 + second)
    assert stages.stalled(600, now=T0 + 3600) == []


def test_healthz_answers_503_naming_the_stalled_stage() -> None:
    now = time.time()
    stages = StageProgress(export=False)
    stages.register("intake", ["t.appeals.intake.pos"], now=now - 700)
    stages.register("sla", ["t.appeals.routed"], now=now - 700)
    lags = {TP("t.appeals.intake.pos", 0): 400, TP("t.appeals.routed", 0): 0}
    stages.observe(lags, can_work=True, now=now)
    stalled = pipeline._stall_report(stages, 600)
    body = json.loads(stalled.body)  # type: ignore[arg-type]
    assert stalled.status == 503 and body["status"] == "stalled"
    assert list(body["stalled_stages"]) == ["intake"]
    assert body["stalled_stages"]["intake"]["backlog"] == 400
    assert "stage intake: no batch finished for 70" in body["detail"]
    assert "APPEALS_STAGE_STALL_TIMEOUT 600 s" in body["detail"]
    assert pipeline._stall_report(stages, 900).status == 200  # a longer timeout: not yet

    stages.batch_done("intake")
    healthy = pipeline._stall_report(stages, 600)
    assert healthy.status == 200
    assert json.loads(healthy.body) == {"status": "ok"}  # type: ignore[arg-type]


def test_a_topic_read_only_by_a_stage_that_waits_on_purpose_is_not_probed() -> None:
    """Parked alerts wait on appeals.notify.retry with its watermark still: the lag monitor's
    end probe opened a consumer for it every 20 s for as long as a receiver was down."""
    from workers.progress import StageProgress

    stages = StageProgress(export=False)
    stages.register("notify_retry", ["appeals.notify.retry"], now=0.0)
    stages.register("intake", ["appeals.intake.web"], now=0.0)
    stages.register("sla", ["appeals.routed", "appeals.shared"], now=0.0)
    stages.register("notify", ["appeals.shared"], now=0.0)
    assert stages.waits_on_purpose("appeals.notify.retry")
    assert not stages.waits_on_purpose("appeals.intake.web")
    assert not stages.waits_on_purpose("appeals.shared")  # another stage reads it too
    assert not stages.waits_on_purpose("appeals.unknown")
