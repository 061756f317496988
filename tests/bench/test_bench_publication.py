"""The pipeline's window ends with the last aggregate published to Redis, not before it.

Issue 7 times the pipeline "from the first event in to the last aggregate updated"; the window
ended when the inputs were all committed, while the SLA agent publishes the figures every 2 s,
so the last update (up to 2 s later) was left out. ``last_publication`` is checked on the real
Redis with the agent's own publish (``partials.publish``), and its use by ``Bench.pipeline`` on
a scripted consumer group.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from streams import topics as t
from streams.testing import isolated_settings
from workers.aggregates.partials import PartitionAggregates, publish
from workers.bench import procstat, runner


def publish_one(settings: Any, partition: int, count: int) -> None:
    agg = PartitionAggregates()
    agg.apply_delta([], [("cat:roads", "", "received")] * count)

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.redis)
        try:
            await publish(client, f"{settings.app_id}:", partition, agg)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_publication_after_the_inputs_ends_the_window(redis_server: Any) -> None:
    settings = isolated_settings("kafka://127.0.0.1:1", redis_server.url)
    publish_one(settings, 0, 5)  # before the inputs were done
    since = time.monotonic()
    published_after = threading.Event()
    moment: dict[str, float] = {}

    def later() -> None:
        time.sleep(0.6)
        moment["before"] = time.monotonic()
        publish_one(settings, 1, 7)  # the last one: the other partition's figures
        published_after.set()

    samples = iter(range(1000))
    thread = threading.Thread(target=later)
    thread.start()
    # quiet: the helper thread must publish within it; wide, for a loaded CI host.
    at, cpu, settled = runner.last_publication(settings, since, lambda: float(next(samples)),
                                               quiet=6.0, cap=30)
    thread.join()
    assert published_after.is_set()
    assert settled is True
    assert at >= moment["before"] > since  # the window now reaches the last publication
    assert cpu == 1.0  # the workers' CPU sampled when it was seen, not at the inputs' end


def test_nothing_published_after_the_inputs_keeps_their_end(redis_server: Any) -> None:
    settings = isolated_settings("kafka://127.0.0.1:1", redis_server.url)
    publish_one(settings, 0, 5)
    since = time.monotonic()
    at, cpu, settled = runner.last_publication(settings, since, lambda: 42.0, quiet=0.6,
                                               cap=30)
    assert (at, cpu, settled) == (since, 42.0, True)


def test_figures_that_never_settle_keep_the_inputs_end(redis_server: Any) -> None:
    settings = isolated_settings("kafka://127.0.0.1:1", redis_server.url)
    stop = threading.Event()

    def churn() -> None:
        i = 1
        while not stop.is_set():
            publish_one(settings, 0, i)
            i += 1
            time.sleep(0.05)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        since = time.monotonic()
        samples = iter(range(1000))
        at, cpu, settled = runner.last_publication(
            settings, since, lambda: float(next(samples)), quiet=2.0, cap=3.0)
    finally:
        stop.set()
        thread.join()
    assert (at, cpu, settled) == (since, 0.0, False)


def test_the_pipeline_window_includes_the_last_publication(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs committed 10 s after the first output, the last publication 1.5 s later: the
    window is 11.5 s, and the CPU is the workers' at the publication."""
    b = runner.Bench(runner.BenchOptions(events=1000, log_dir=tmp_path))
    settings = b.settings("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")
    n = 1000
    base = time.monotonic()
    calls = {"n": 0}
    intake = t.topic_name(settings, t.intake_topic("web"))
    registered = t.topic_name(settings, t.REGISTERED)

    class Worker:
        alive = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.proc = SimpleNamespace(pid=1, poll=lambda: None)

        def start(self) -> Worker:
            return self

        def stop(self) -> None:
            pass

    class Progress:
        def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
            self.topics = topics

        def snapshot(self) -> Any:
            i = calls["n"]
            calls["n"] += 1
            committed = min(n, i * n // 10)
            c = dict.fromkeys(self.topics, 0)
            e = dict.fromkeys(self.topics, 0)
            c[intake], e[intake] = committed, n
            e[registered] = max(1, committed)
            return SimpleNamespace(at=base + i, committed=c, end=e, confirmed=True)

        def close(self) -> None:
            pass

    cpu = {"now": 0.0}

    def cpu_seconds(pid: int) -> float:
        cpu["now"] += 1.0
        return cpu["now"]

    def last_publication(settings: Any, since: float, sample: Any) -> tuple[float, float, bool]:
        assert since == base + 10  # the inputs' end
        return since + 1.5, 100.0, True

    monkeypatch.setattr("streams.testing.WorkerProcess", Worker)
    monkeypatch.setattr(procstat, "GroupProgress", Progress)
    monkeypatch.setattr(procstat, "cpu_seconds", cpu_seconds)
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 0.0)
    monkeypatch.setattr(runner, "verify_effect", lambda *a, **k: {})
    monkeypatch.setattr(runner, "last_publication", last_publication, raising=False)
    monkeypatch.setattr("time.sleep", lambda s: None)
    work = runner.Workload([(t.intake_topic("web"), None, b"{}")] * n, [])
    out = b.pipeline(settings, work, workers=1)
    assert out["elapsed_s"] == 11.5
    assert out["publication_s"] == 1.5
    assert out["cpu_s"] == 100.0 - 1.0  # from the first output's sample to the publication's
