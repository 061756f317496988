"""A backlog waiting for a slow (here: not yet started) consumer: memory bounded, backlog drains.

The issue asks for 500,000 appeals; CI uses 30,000 (CHAOS_BACKLOG to change) to stay within its
time budget. What is checked is that the worker does not pull the backlog into memory ahead of
processing (Faust's flow control pauses fetching when its stream buffers are full): its RSS
while it is a quarter through must not exceed its RSS at the start by more than a fixed buffer
allowance, and at the end by more than that allowance plus a per-appeal state budget (the
memory:// table holds one SLA state per appeal). Then every appeal is routed and tracked. Runs
once per store. ``CHAOS_BACKLOG=500000`` passed on 2026-11-26, about 4 min 45 s per store:
RSS at first commit / a quarter through / peak 232 / 463 / 1,259 MB with memory://, 259 / 458 /
655 MB with rocksdb:// (production's store: the states are on disk, so the ~400 MB it still
grows over the run is something else, growing more slowly in the second half; which caches, I
have not measured).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from streams import topics as t
from streams.testing import WorkerProcess, isolated_settings, produce, read_topic, wait_for
from tests.chaos import support as s
from workers.bench import procstat

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

B = int(os.environ.get("CHAOS_BACKLOG", "30000"))
BUFFER_MB = 200.0  # stream buffers, fetch buffers, producer batches, caches
STATE_KB = 6.0  # one SLA state + triage-free routing, in the memory:// table


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_backlog_drains_with_bounded_memory(broker, redis_server, tmp_path: Path,
                                            store: str) -> None:
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=0.0,
                                 store=f"{store}://", data_dir=str(tmp_path / "state"))
    t.ensure_topics(settings)
    work = s.workload(B, 61, fates=(("open", 1),))
    produce(settings, work.intake_messages())
    intake_topics = [t.topic_name(settings, t.intake_topic(c)) for c in
                     ("pos", "incident", "fz59", "hotline", "email", "web")]
    progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id, intake_topics)
    worker = WorkerProcess(settings, s.log_path("backlog")).start()
    assert worker.proc is not None
    pid = worker.proc.pid
    samples: list[tuple[int, float]] = []
    try:
        # 400 s covers CI's size on a busy machine; a full-size run gets ~400 appeals/s at worst.
        deadline = time.monotonic() + max(400.0, B / 400)
        while time.monotonic() < deadline:
            done = sum(progress.snapshot().committed.values())
            samples.append((done, procstat.rss_mb(pid)))
            if done >= B:
                break
            assert worker.alive, worker.log_text()[-2000:]
            time.sleep(0.5)
        assert samples[-1][0] >= B, "the backlog drained"
        wait_for(lambda: len(s.read_model(settings, work.ids)) == B, timeout=120, interval=2,
                 what="every appeal tracked")
        peak = procstat.peak_rss_mb(pid)
        routed = s.by_appeal(read_topic(settings, t.ROUTED, until=B, timeout=60, idle=1))
    finally:
        worker.stop()
        progress.close()
    assert set(routed) == work.ids
    started = next(rss for done, rss in samples if done > 0)
    quarter = max(rss for done, rss in samples if done <= B // 4)
    print(f"backlog {B}, store {store}: RSS at first commit {started:.0f} MB, up to a quarter "
          f"{quarter:.0f} MB, peak {peak:.0f} MB")
    assert quarter - started <= BUFFER_MB + STATE_KB * B / 4 / 1024
    assert peak - started <= BUFFER_MB + STATE_KB * B / 1024
