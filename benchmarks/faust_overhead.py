"""Benchmark: what Faust costs per consumed record, with and without :mod:`streams.fastpath`.

Why: the pipeline's throughput is bounded by CPU per appeal, and a large share of it was
framework time per consumed record, independent of what the record carries (issue #7). This
isolates that share: the same pre-produced topic is read by

* ``aiokafka``: a bare consumer-group loop that decodes every record (the ceiling);
* ``faust``: a Faust agent that reads it with ``take_events`` and decodes every record, doing
  nothing else; Faust's own hand-off from fetcher to stream;
* ``faust+fastpath``: the same agent with the eager hand-off of :mod:`streams.fastpath`.

Each consumer runs in its own process and reports records/s (from its first record to its last)
and CPU microseconds per record. Compare the ratios within one run; the machine is shared.

Run: ``.venv/bin/python -m benchmarks.faust_overhead [--records 100000] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson

TOPIC = "bench-overhead"


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _Meter:
    """Rate and CPU per record from the first batch seen to the last.

    The clock and the CPU baseline start when the first batch has already been fetched and
    decoded, so that batch is counted (``records``, for the stop condition) but not timed: the
    figures are over the records after it, as ``workers.bench.probes.Status`` does. Counting it
    overstated records/s and understated CPU per record by about first batch / records (2x on
    two fetches); a run whose records all came in one fetch has nothing timed and reports None.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.untimed = 0
        self.t0 = 0.0
        self.c0 = 0.0

    def seen(self, n: int) -> bool:
        if self.count == 0:
            self.t0, self.c0 = time.monotonic(), _cpu()
            self.untimed = n
        self.count += n
        return self.count >= self.expected

    def result(self) -> dict[str, float | None]:
        elapsed = time.monotonic() - self.t0
        cpu = _cpu() - self.c0
        timed = self.count - self.untimed
        if timed <= 0 or elapsed <= 0:
            return {"records": self.count, "timed_records": 0, "records_per_s": None,
                    "cpu_us_per_record": None, "cpu_share": None}
        return {"records": self.count, "timed_records": timed,
                "records_per_s": round(timed / elapsed, 1),
                "cpu_us_per_record": round(cpu / timed * 1e6, 1),
                "cpu_share": round(cpu / elapsed, 2)}


def _produce(bootstrap: str, records: int, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, partitions, 1)])
    admin.close()

    async def go() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                    max_batch_size=512 * 1024)
        await producer.start()
        body = orjson.dumps({"text": "x" * 540, "channel": "web"})  # ~600 bytes, as appeals
        pending = []
        for i in range(records):
            pending.append(await producer.send(TOPIC, body, key=str(i).encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        await producer.stop()

    asyncio.run(go())


def _child_aiokafka(bootstrap: str, records: int) -> dict[str, float | None]:
    async def go() -> dict[str, float | None]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="bench-aiokafka",
                                    auto_offset_reset="earliest")
        await consumer.start()
        meter = _Meter(records)
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                n = 0
                for recs in batches.values():
                    for rec in recs:
                        orjson.loads(rec.value)
                    n += len(recs)
                if n and meter.seen(n):
                    return meter.result()
        finally:
            await consumer.stop()

    return asyncio.run(go())


def _child_faust(bootstrap: str, records: int, fast: bool, buffer: int) -> None:
    import faust

    if fast:
        from streams import fastpath

        if not fastpath.install():
            raise SystemExit("fast path refused to install on this faust-streaming version")
    datadir = tempfile.mkdtemp(prefix="appeals-faust-overhead-")  # not the current directory
    app = faust.App(f"bench-faust-{int(fast)}", broker=f"kafka://{bootstrap}", datadir=datadir,
                    store="memory://", value_serializer="raw", key_serializer="raw",
                    autodiscover=False, web_enabled=False, consumer_auto_offset_reset="earliest",
                    broker_session_timeout=6, broker_heartbeat_interval=1.5,
                    stream_buffer_maxsize=buffer, stream_wait_empty=False)
    source = app.topic(TOPIC, value_serializer="raw", key_serializer="raw")
    meter = _Meter(records)

    @app.agent(source)
    async def consume(stream: Any) -> None:
        async for events in stream.take_events(1000, 0.05):
            for event in events:
                orjson.loads(event.value)
            if meter.seen(len(events)):
                sys.stdout.write("RESULT " + orjson.dumps(meter.result()).decode() + "\n")
                sys.stdout.flush()
                shutil.rmtree(datadir, ignore_errors=True)
                os._exit(0)

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.argv = [sys.argv[0], "worker", "-l", "info"]
    app.main()


def _run_child(kind: str, bootstrap: str, records: int,
               buffer: int) -> dict[str, float | None]:
    cmd = [sys.executable, "-m", "benchmarks.faust_overhead", "--child", kind,
           "--bootstrap", bootstrap, "--records", str(records), "--buffer", str(buffer)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    # Faust's worker redirects stdout into its logger, so the line may carry a log prefix and
    # arrive on stderr.
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        at = line.find("RESULT {")
        if at >= 0:
            result: dict[str, float | None] = orjson.loads(line[at + 7:].strip())
            return result
    raise RuntimeError(f"{kind} consumer failed:\n{out.stderr[-2000:]}")


def run(records: int = 100_000, partitions: int = 4, buffer: int = 8192) -> dict[str, Any]:
    from benchmarks.server_logs import server_logs
    from streams.devstack import start_broker

    with server_logs() as logs:
        broker = start_broker(log_dir=logs)
        try:
            _produce(broker.bootstrap, records, partitions)
            results = {kind: _run_child(kind, broker.bootstrap, records, buffer)
                       for kind in ("aiokafka", "faust", "faust+fastpath")}
        finally:
            broker.stop()
    base = results["aiokafka"]["records_per_s"]
    for r in results.values():
        rate = r["records_per_s"]
        r["ratio_to_aiokafka"] = round(rate / base, 3) if rate is not None and base else None
    return {"records": records, "partitions": partitions, "stream_buffer": buffer,
            "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faust_overhead",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--buffer", type=int, default=8192, help="Faust stream_buffer_maxsize")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=("aiokafka", "faust", "faust+fastpath"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "aiokafka":
        print("RESULT " + orjson.dumps(_child_aiokafka(args.bootstrap, args.records)).decode())
        return 0
    if args.child:
        _child_faust(args.bootstrap, args.records, args.child == "faust+fastpath", args.buffer)
        return 0
    doc = run(args.records, args.partitions, args.buffer)
    if args.json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{doc['records']:,} records of ~600 bytes, {doc['partitions']} partitions, "
          f"stream buffer {doc['stream_buffer']}")
    print(f"{'consumer':<16} {'records/s':>10} {'/aiokafka':>10} {'CPU us/rec':>11} {'CPU':>5}")
    for kind, r in doc["results"].items():
        if r["records_per_s"] is None:
            print(f"{kind:<16} {'-':>10} {'-':>10} {'-':>11} {'-':>5}  (every record in the "
                  "first fetch, nothing to time: raise --records)")
            continue
        ratio = r["ratio_to_aiokafka"]
        print(f"{kind:<16} {r['records_per_s']:>10,.0f} "
              f"{f'{ratio:.3f}' if ratio is not None else '-':>10} "
              f"{r['cpu_us_per_record']:>11.1f} {r['cpu_share']:>5.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
