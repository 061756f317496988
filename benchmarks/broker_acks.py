"""Benchmark: how long the embedded broker takes to acknowledge a steady stream of records.

Why: intake -> routed latency (issue #7) has a tail that grows with the length of the run
(30 s at 1,000 appeals/s: p99 93-115 ms; 60 s: 122-140 ms) while the worker's event loop is
not held (``appeals_event_loop_lag_seconds``). Every agent waits for the broker's
acknowledgements before its next batch, so a broker that stalls now and then shows up there.
This produces records of realistic size at a fixed rate to a fresh embedded broker (Tansu) with
``acks=all`` and prints the acknowledgement latency per 10 s window: a flat p99 with rare long
maxima points at broker stalls rather than at our code.

Run: ``.venv/bin/python -m benchmarks.broker_acks [--rate 1000] [--seconds 60] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.server_logs import server_logs
from streams.devstack import start_broker

TOPIC = "broker-acks"
WINDOW_S = 10


async def _measure(bootstrap: str, rate: int, seconds: int,
                   size: int) -> list[tuple[float, float]]:
    """(send time since start, ack latency) per record, both in seconds."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, 4, 1)])
    finally:
        admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    payload = b"x" * size

    async def one(i: int) -> None:
        sent = time.monotonic()
        ack = await producer.send(TOPIC, payload, key=b"%d" % i)
        await ack
        samples.append((sent - start, time.monotonic() - sent))

    pending = []
    try:
        for i in range(rate * seconds):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return samples


def windows(samples: list[tuple[float, float]], width: float) -> list[dict[str, float]]:
    """Per window of send time: count, p50, p99 and max acknowledgement latency in ms."""
    out = []
    last = max((t for t, _ in samples), default=0.0)
    w = 0
    while w * width <= last:
        xs = sorted(lat for t, lat in samples if w * width <= t < (w + 1) * width)
        if xs:
            out.append({"from_s": w * width, "n": len(xs),
                        "p50_ms": round(xs[len(xs) // 2] * 1000, 1),
                        "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000, 1),
                        "max_ms": round(xs[-1] * 1000, 1)})
        w += 1
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.broker_acks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=1000, help="records per second (default 1000)")
    p.add_argument("--seconds", type=int, default=60, help="length of the run (default 60)")
    p.add_argument("--size", type=int, default=600, help="record size in bytes (default 600)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    with server_logs() as logs:
        broker = start_broker(log_dir=logs)
        try:
            samples = asyncio.run(_measure(broker.bootstrap, args.rate, args.seconds, args.size))
        finally:
            broker.stop()
    rows = windows(samples, WINDOW_S)
    if args.json:
        print(json.dumps({"rate": args.rate, "seconds": args.seconds, "windows": rows}))
    else:
        for r in rows:
            print(f"{r['from_s']:4.0f}-{r['from_s'] + WINDOW_S:.0f} s: {r['n']:,} acks, p50 "
                  f"{r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
