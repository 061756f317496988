"""Helpers for tests and benchmarks that drive real worker processes on a real broker.

Shipped in the package (like ``faust.testing``) so tests, the benchmark and the chaos suite
share one way to start, kill and read from the system, instead of each growing its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams import topics as t
from streams.processes import WorkerProcess, start_worker, stop_process, worker_env
from streams.settings import Settings

__all__ = [
    "WorkerProcess",
    "isolated_settings",
    "produce",
    "read_topic",
    "running_worker",
    "start_worker",
    "stop_process",
    "wait_for",
    "worker_env",
]


def isolated_settings(kafka: str, redis: str, **changes: Any) -> Settings:
    """Settings with a unique app id and topic prefix, so tests sharing a broker never meet."""
    tag = uuid.uuid4().hex[:8]
    base = Settings.load({}).replace(
        kafka=kafka,
        redis=redis,
        app_id=f"appeals-test-{tag}",
        topic_prefix=f"t{tag}.",
        partitions=4,
        session_timeout=6.0,
        metrics_port=0,
    )
    return base.replace(**changes) if changes else base


@contextmanager
def running_worker(settings: Settings, log_path: Path, **kwargs: Any) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings, log_path, **kwargs).start()
    try:
        yield worker
    finally:
        worker.stop()


def produce(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes]], *,
            timestamp_ms: int | None = None, partition: int | None = None) -> int:
    """Send (topic base name, key, value) with acks=all; returns how many were sent.
    ``timestamp_ms``: the records' message time (None: the producer's clock), for agents that
    judge waits on message time; ``partition``: the partition (None: the key's)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=5, retries=5, max_in_flight_requests_per_connection=1)
    n = 0
    try:
        for base, key, value in messages:
            producer.send(t.topic_name(settings, base), key=key, value=value,
                          timestamp_ms=timestamp_ms, partition=partition)
            n += 1
        producer.flush(60)
    finally:
        producer.close()
    return n


def read_topic(settings: Settings, base: str, *, until: int | None = None,
               timeout: float = 60.0, idle: float = 3.0) -> list[Any]:
    """Every record of a topic from the start: stops at ``until`` records, or when nothing new
    arrived for ``idle`` seconds (after at least ``until`` or the timeout)."""
    return asyncio.run(_read_topic(settings, base, until, timeout, idle))


async def _read_topic(settings: Settings, base: str, until: int | None, timeout: float,
                      idle: float) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        t.topic_name(settings, base), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300, max_records=5000)
            got = sum(len(v) for v in batches.values())
            for recs in batches.values():
                records.extend(recs)
            if got:
                last_new = time.monotonic()
            if until is not None and len(records) >= until and time.monotonic() - last_new > idle:
                break
            if until is None and time.monotonic() - last_new > idle:
                break
    finally:
        await consumer.stop()
    return records


def wait_for(predicate: Any, timeout: float, interval: float = 0.5, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def partition_of(key: str, partitions: int) -> int:
    """The partition the pipeline's partitioner puts ``key`` on (murmur2, as Kafka's clients):
    tests that need records of one partition pick their keys with it."""
    from streams.partitioner import key_hash

    return key_hash(key.encode()) % partitions
