"""A worker whose intake stage hangs shows it: its consumer lag counts every record waiting,
the stage's progress gauge stands still and ``/healthz`` answers 503 naming the stage.

The lag used to be counted from what Faust had read into the stream's buffer, and a partition
Faust stopped fetching (its buffer full) kept its old high watermark: with intake hung the
exported lag stayed at 0, then flat, and ``appeals_worker_up`` 1 and ``/healthz`` 200 told
nothing either (review of the ops session).
The worker here runs every agent; only its intake stage's wait for acknowledgements hangs while
a flag file exists (``stuck_worker.py``). A small stream buffer and batch make Faust stop
fetching after a few dozen records.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams import topics as t
from streams.processes import WorkerProcess
from streams.testing import isolated_settings, produce, wait_for

pytestmark = pytest.mark.integration


def _sample(worker: WorkerProcess, name: str, **labels: str) -> float | None:
    """The value of one sample of the worker's ``/metrics`` (None: not exported, or no answer)."""
    try:
        text = worker.metrics_text()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _lag(worker: WorkerProcess, topic: str) -> float | None:
    return _sample(worker, "appeals_consumer_lag", topic=topic, partition="0")


def _health(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/healthz",
                                    timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def _records(n: int, start: int) -> list[tuple[str, bytes, bytes]]:
    # Not JSON: dead-lettered by intake, which still ends its batch with the wait that hangs.
    return [(t.intake_topic("pos"), b"k%d" % i, b"garbage") for i in range(start, start + n)]


def test_a_hung_stage_shows_every_waiting_record_as_lag(broker, redis_server,
                                                        tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, partitions=1, lag_interval=1.0,
                                 stream_buffer=64, batch_size=50, stage_stall_timeout=5.0)
    t.ensure_topics(settings)
    topic = t.topic_name(settings, t.intake_topic("pos"))
    flag = tmp_path / "hang"
    worker = WorkerProcess(settings, tmp_path / "worker.log",
                           command=[sys.executable, str(Path(__file__).with_name(
                               "stuck_worker.py"))],
                           extra_env={"STUCK_INTAKE_FLAG": str(flag),
                                      "STUCK_PROBE_INTERVAL": "1"}).start()
    try:
        produce(settings, _records(20, 0))
        wait_for(lambda: _lag(worker, topic) == 0 or not worker.alive, 180,
                 what="the worker to process the first records")
        assert worker.alive, worker.log_text()[-3000:]
        time.sleep(8)  # idle for longer than the stall timeout: nothing waits, so healthy
        assert _health(worker) == (200, {"status": "ok"})

        flag.touch()
        produce(settings, _records(400, 20))
        produced_at = time.time()
        # Everything after the last committed record: the hung batch, the stream's buffer and
        # the records Faust no longer fetches.
        wait_for(lambda: _lag(worker, topic) == 400, 60, what="a lag of 400")
        produce(settings, _records(300, 420))
        wait_for(lambda: _lag(worker, topic) == 700, 60, what="a lag of 700")
        # The consumer has these 300 fetched and waiting for Faust, so it fetches that
        # partition no more and its high watermark stays at 720: the probe finds the end.
        produce(settings, _records(300, 720))
        wait_for(lambda: _lag(worker, topic) == 1000, 60, what="a lag of 1000")

        def stalled() -> dict[str, Any] | None:
            code, body = _health(worker)
            return body if code == 503 else None

        body = wait_for(stalled, 60, what="/healthz to answer 503")
        assert body["status"] == "stalled" and list(body["stalled_stages"]) == ["intake"], body
        assert body["stalled_stages"]["intake"]["backlog"] == 1000
        last = _sample(worker, "appeals_stage_last_progress_timestamp_seconds", stage="intake")
        assert last is not None and last <= produced_at  # nothing since the records came
        assert _sample(worker, "appeals_worker_up") == 1  # what used to be all there was

        flag.unlink()
        wait_for(lambda: _lag(worker, topic) == 0, 120, what="the backlog to drain")
        wait_for(lambda: _health(worker)[0] == 200, 30, what="/healthz to answer 200 again")
        last = _sample(worker, "appeals_stage_last_progress_timestamp_seconds", stage="intake")
        assert last is not None and last > produced_at
        assert worker.alive, worker.log_text()[-3000:]
    finally:
        flag.unlink(missing_ok=True)
        worker.stop()
