"""Benchmark: what one fetch at a partition's tail costs as the partition's history grows.

Why: intake -> routed latency (issue #7) grows with the length of the run, also for a fresh
worker on fresh topics, while the worker's event loop is not held. A fetch log of the latency
run showed the worker's fetch requests (one request covers every assigned partition) taking
p50 7 ms in its first seconds and 31 ms in its last, with data waiting in both. This measures
the embedded broker (Tansu) alone: one partition is filled step by step with record batches
(one record each, as a producer at a low per-partition rate sends them, or many records each)
and after every step the latest record is fetched a number of times. Apache Kafka finds a
fetch's position through an offset index, so its cost does not depend on the history; a cost
that grows with the batches already in the partition is the broker's, and it lands on every
fetch of a worker consuming that partition.

The baseline of the same run is the first step (a partition holding one step of history); the
ratio column is each step's median fetch time over it.

Run: ``.venv/bin/python -m benchmarks.broker_fetch [--steps 6] [--step-batches 5000]
[--records-per-batch 1] [--elsewhere] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.server_logs import server_logs
from streams.devstack import start_broker

TOPIC = "broker-fetch"
ELSEWHERE = "broker-fetch-elsewhere"
FETCHES_PER_STEP = 21
# Tansu never returns records to a fetch whose max wait is 0 (seen 2026-11-26): keep it > 0.
# The tail record is always there, so the wait is never served.
FETCH_MAX_WAIT_MS = 100


async def _fill(producer: AIOKafkaProducer, topic: str, batches: int, per_batch: int,
                size: int) -> None:
    """Append ``batches`` record batches of ``per_batch`` records to partition 0 of ``topic``."""
    payload = b"x" * size
    pending = []
    for _ in range(batches):
        batch = producer.create_batch()
        for _ in range(per_batch):
            if batch.append(key=None, value=payload, timestamp=None) is None:
                raise SystemExit(f"{per_batch} records of {size} B do not fit one batch; "
                                 "lower --records-per-batch or --size")
        pending.append(await producer.send_batch(batch, topic, partition=0))
        if len(pending) >= 64:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)


async def _time_tail_fetches(consumer: AIOKafkaConsumer, tp: TopicPartition,
                             last_offset: int) -> list[float]:
    """Milliseconds per fetch of the record at ``last_offset`` (seek, then one getmany)."""
    out = []
    for _ in range(FETCHES_PER_STEP):
        consumer.seek(tp, last_offset)
        started = time.perf_counter()
        got = await consumer.getmany(tp, timeout_ms=5000)
        elapsed = (time.perf_counter() - started) * 1000
        if not got.get(tp):
            raise RuntimeError(f"no record returned at offset {last_offset} within 5 s")
        out.append(elapsed)
    return out


async def measure(bootstrap: str, steps: int, step_batches: int, per_batch: int,
                  size: int, elsewhere: bool = False) -> list[dict[str, Any]]:
    """Fetch times per step; with ``elsewhere`` the history goes to another topic instead."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, 1, 1), NewTopic(ELSEWHERE, 1, 1)])
    finally:
        admin.close()
    tp = TopicPartition(TOPIC, 0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                max_batch_size=1 << 20)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    await producer.start()
    await consumer.start()
    rows: list[dict[str, Any]] = []
    try:
        consumer.assign([tp])
        records = 0
        for step in range(1, steps + 1):
            if elsewhere:
                await _fill(producer, ELSEWHERE, step_batches, per_batch, size)
                await _fill(producer, TOPIC, 1, 1, size)
                records += 1
            else:
                await _fill(producer, TOPIC, step_batches, per_batch, size)
                records += step_batches * per_batch
            times = await _time_tail_fetches(consumer, tp, records - 1)
            rows.append({"batches": step * step_batches, "records": step * step_batches * per_batch,
                         "fetch_p50_ms": round(statistics.median(times), 2),
                         "fetch_max_ms": round(max(times), 2)})
    finally:
        await consumer.stop()
        await producer.stop()
    base = rows[0]["fetch_p50_ms"] or 1e-9
    for row in rows:
        row["ratio_to_first"] = round(row["fetch_p50_ms"] / base, 2)
    return rows


def ms_per_1000_batches(rows: list[dict[str, Any]]) -> float:
    """Least-squares slope of the median fetch time over the batch count, per 1,000 batches."""
    if len(rows) < 2:
        return 0.0
    slope = statistics.linear_regression([float(r["batches"]) for r in rows],
                                         [float(r["fetch_p50_ms"]) for r in rows]).slope
    return round(slope * 1000, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.broker_fetch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6, help="history steps (default 6)")
    p.add_argument("--step-batches", type=int, default=5000,
                   help="record batches added per step (default 5000)")
    p.add_argument("--records-per-batch", type=int, default=1,
                   help="records in each batch (default 1)")
    p.add_argument("--size", type=int, default=600, help="record size in bytes (default 600)")
    p.add_argument("--elsewhere", action="store_true",
                   help="write the history to another topic and fetch from one that holds "
                        "a record per step (does history elsewhere cost?)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.steps < 1 or args.step_batches < 1 or args.records_per_batch < 1:
        p.error("--steps, --step-batches and --records-per-batch must be at least 1")
    with server_logs() as logs:
        broker = start_broker(log_dir=logs)
        try:
            rows = asyncio.run(measure(broker.bootstrap, args.steps, args.step_batches,
                                       args.records_per_batch, args.size, args.elsewhere))
        finally:
            broker.stop()
    slope = ms_per_1000_batches(rows)
    if args.json:
        print(json.dumps({"records_per_batch": args.records_per_batch, "size": args.size,
                          "history_elsewhere": args.elsewhere,
                          "steps": rows, "ms_per_1000_batches": slope}))
    else:
        where = " in another topic" if args.elsewhere else ""
        print(f"tail fetch of one partition, history{where}: {args.records_per_batch} "
              f"record(s) of {args.size} B per batch, {FETCHES_PER_STEP} fetches per step")
        print(f"{'batches':>9} {'records':>9} {'p50 ms':>8} {'max ms':>8} {'x first':>8}")
        for r in rows:
            print(f"{r['batches']:>9,} {r['records']:>9,} {r['fetch_p50_ms']:>8.2f} "
                  f"{r['fetch_max_ms']:>8.2f} {r['ratio_to_first']:>8.2f}")
        print(f"slope: {slope} ms per 1,000 batches of history")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
