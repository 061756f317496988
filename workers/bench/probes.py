"""The two reference consumers the pipeline is compared with, each run as its own process.

* ``ceiling``: a bare aiokafka consumer-group loop that reads and orjson-decodes every record:
  what Python can do on this machine and broker before any framework or business logic.
* ``naive``: a plain Faust agent that decodes each event and increments a table counter per
  key, one event at a time: the way Faust tutorials write it. The key is the appeal's
  channel, since an intake record has no category yet (classification is the pipeline's
  work): the issue's "counter per category" with the field the record has.

Each probe measures itself (wall time from its first record to its last, CPU time and peak RSS
of its own process) and writes one JSON status file, rewritten as it goes, so the benchmark
can stop a slow probe after a time cap and still get an honest rate for what it did.
Run as ``python -m workers.bench.probes ceiling|naive ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson


def _usage() -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB) of this process.

    Peak RSS comes from VmHWM, not ``ru_maxrss``: the latter survives ``exec`` and would report
    the benchmark parent's memory at fork time.
    """
    ru = resource.getrusage(resource.RUSAGE_SELF)
    from workers.bench.procstat import peak_rss_mb

    return ru.ru_utime + ru.ru_stime, peak_rss_mb(os.getpid())


class Status:
    """Progress of a probe, written atomically to a JSON file.

    The clock and the CPU baseline both start once the first batch is in, so ``elapsed_s`` and
    ``cpu_s`` cover ``timed_count`` events, not ``count``: a rate or a CPU cost per event must
    divide by ``timed_count`` (``count`` would understate the cost by up to 2x on two batches).
    """

    def __init__(self, path: Path, expected: int) -> None:
        self.path = path
        self.expected = expected
        self.count = 0
        self.untimed = 0  # the first batch: fetched before the clock started
        self.first: float | None = None
        self.last: float | None = None
        self.cpu_at_first = 0.0

    def seen(self, n: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
            self.cpu_at_first = _usage()[0]
            self.untimed = n
        self.count += n
        self.last = now

    def write(self) -> None:
        cpu, rss = _usage()
        doc: dict[str, Any] = {
            "count": self.count,
            "timed_count": self.count - self.untimed,
            "expected": self.expected,
            "elapsed_s": (self.last - self.first) if self.first and self.last else 0.0,
            "cpu_s": cpu - self.cpu_at_first if self.first else 0.0,
            "peak_rss_mb": rss,
            "done": self.count >= self.expected,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.path)


async def ceiling(bootstrap: str, topics: list[str], group: str, expected: int,
                  status_path: Path) -> None:
    from aiokafka import AIOKafkaConsumer

    status = Status(status_path, expected)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    await consumer.start()
    last_write = time.monotonic()
    try:
        while status.count < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            n = 0
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                n += len(records)
            if n:
                status.seen(n)
            if time.monotonic() - last_write > 0.5:
                status.write()
                last_write = time.monotonic()
    finally:
        status.write()
        await consumer.stop()


def naive(bootstrap: str, topics: list[str], app_id: str, expected: int,
          status_path: Path) -> None:
    import faust

    status = Status(status_path, expected)
    # Faust keeps a data directory even for memory tables; by default in the current one.
    datadir = tempfile.mkdtemp(prefix="appeals-bench-naive-")
    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", datadir=datadir,
                    value_serializer="raw", key_serializer="raw", autodiscover=False,
                    topic_partitions=4, web_enabled=False,
                    consumer_auto_offset_reset="earliest")
    counts = app.Table("counts", default=int)
    source = app.topic(*topics, value_serializer="raw")

    @app.agent(source)
    async def count(stream: Any) -> None:
        async for value in stream:
            data = orjson.loads(value)
            # The tutorial way: one table write (and one changelog message) per event.
            counts[data.get("channel", "other")] += 1
            status.seen(1)

    @app.timer(0.5)
    async def report() -> None:
        status.write()

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        pass
    try:
        worker.execute_from_commandline()
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.bench.probes")
    parser.add_argument("kind", choices=("ceiling", "naive"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated topic names")
    parser.add_argument("--group", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--status", required=True, type=Path)
    args = parser.parse_args(argv)
    topics = args.topics.split(",")
    if args.kind == "ceiling":
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        asyncio.run(ceiling(args.bootstrap, topics, args.group, args.expected, args.status))
    else:
        sys.argv = [sys.argv[0], "worker"]
        naive(args.bootstrap, topics, args.group, args.expected, args.status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
