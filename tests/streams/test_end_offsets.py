"""Table recovery reads the changelog to its true end (streams.end_offsets).

The embedded broker reports a partition's end offset as its last batch's base offset + 1; Faust
then stops recovery after the first record of that batch and the rest never reach the table.
These tests write changelogs in multi-record batches, as a worker's producer does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP
from kafka.admin import KafkaAdminClient, NewTopic

from streams import end_offsets
from streams.processes import WorkerProcess
from streams.testing import isolated_settings, wait_for

pytestmark = pytest.mark.integration


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


async def _produce_batches(bootstrap: str, topic: str,
                           batches: dict[int, list[int]]) -> dict[int, int]:
    """Each partition gets its batches (sizes) in order; returns the true end per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    ends = {}
    try:
        for partition, sizes in batches.items():
            n = 0
            for size in sizes:
                futures = [await producer.send(topic, b"%d" % (n + i), key=b"k%d-%d" % (
                    partition, n + i), partition=partition) for i in range(size)]
                await asyncio.gather(*futures)
                n += size
            ends[partition] = n
    finally:
        await producer.stop()
    return ends


def test_true_end_offsets_match_the_records_written(broker, tmp_path: Path) -> None:
    topic = f"eo-{time.time_ns()}"
    _create(broker.bootstrap, topic, 4)
    batches = {0: [50, 30], 1: [1], 2: [200, 1, 7], 3: []}

    async def run() -> tuple[dict[TP, int | None], dict[TP, int | None]]:
        truth = await _produce_batches(broker.bootstrap, topic, batches)
        tps = [TP(topic, p) for p in batches]
        reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await reader.start()
        try:
            reported = await reader.end_offsets([TopicPartition(topic, p) for p in batches])
        finally:
            await reader.stop()
        reported_by_tp: dict[TP, int | None] = {
            tp: reported[TopicPartition(tp.topic, tp.partition)] for tp in tps}
        probe = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        fixed = await end_offsets.true_end_offsets(probe, reported_by_tp)
        assert {tp.partition: fixed[tp] for tp in tps} == {p: truth.get(p, 0) for p in batches}
        return reported_by_tp, fixed

    reported, fixed = asyncio.run(run())
    # Never lowered, and the keys are the caller's own TP objects.
    assert all((fixed[tp] or 0) >= (reported[tp] or 0) for tp in reported)
    assert set(fixed) == set(reported)


def test_current_end_offsets_match_the_records_written(broker) -> None:
    """The lag monitor's probe (partitions the worker no longer fetches): the true ends,
    keyed by the caller's own TPs, empty partitions included."""
    topic = f"eo-now-{time.time_ns()}"
    _create(broker.bootstrap, topic, 3)
    batches = {0: [40, 25], 1: [], 2: [1, 9]}

    async def run() -> tuple[dict[TP, int], tuple[dict[TP, int], dict[TP, int]]]:
        await _produce_batches(broker.bootstrap, topic, batches)
        tps = [TP(topic, p) for p in batches]
        ends = await end_offsets.current_end_offsets(
            AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False), tps)
        both = await end_offsets.current_offsets(
            AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False), tps)
        return ends, both

    ends, (again, starts) = asyncio.run(run())
    assert ends == again == {TP(topic, 0): 65, TP(topic, 1): 0, TP(topic, 2): 10}
    # The log starts the lag monitor counts a never-committed partition from: nothing deleted.
    assert starts == {TP(topic, 0): 0, TP(topic, 1): 0, TP(topic, 2): 0}


def test_a_table_recovers_every_changelog_record(broker, redis_server, tmp_path: Path) -> None:
    """A worker starting on a changelog written in batches holds every key after recovery."""
    settings = isolated_settings(broker.url, redis_server.url, partitions=2)
    changelog = f"{settings.app_id}-recovered-changelog"
    _create(broker.bootstrap, changelog, 2)
    _create(broker.bootstrap, f"{settings.topic_prefix}recovery-source", 2)
    truth = asyncio.run(_produce_batches(broker.bootstrap, changelog, {0: [300, 120], 1: [5, 80]}))
    report = tmp_path / "report"
    script = str(Path(__file__).with_name("recovery_worker.py"))
    worker = WorkerProcess(settings, tmp_path / "worker.log", extra_env={
        "RECOVERY_REPORT": str(report)}, command=[sys.executable, script]).start()
    try:
        wait_for(lambda: (report.exists() and report.read_text() != "") or not worker.alive,
                 timeout=90, what="recovery report")
        assert worker.alive, worker.log_text()[-3000:]
        assert int(report.read_text()) == sum(truth.values()), worker.log_text()[-3000:]
    finally:
        worker.stop()


def test_a_recovery_whose_end_offsets_cannot_be_verified_fails_loudly(
        broker, redis_server, tmp_path: Path) -> None:
    """A probe that never answers used to hand recovery the broker's (short) figures: the
    table recovered without its newest states and nothing said so. Now the worker stops with
    one error naming the cause and the way out, and never reports a recovered table."""
    settings = isolated_settings(broker.url, redis_server.url, partitions=1)
    changelog = f"{settings.app_id}-recovered-changelog"
    _create(broker.bootstrap, changelog, 1)
    _create(broker.bootstrap, f"{settings.topic_prefix}recovery-source", 1)
    asyncio.run(_produce_batches(broker.bootstrap, changelog, {0: [20]}))
    report = tmp_path / "report"
    script = str(Path(__file__).with_name("recovery_worker.py"))
    worker = WorkerProcess(settings, tmp_path / "worker.log", extra_env={
        "RECOVERY_REPORT": str(report), "RECOVERY_PROBE_FAILS": "1"},
        command=[sys.executable, script]).start()
    try:
        wait_for(lambda: "table recovery stopped" in worker.log_text() or report.exists(),
                 timeout=90, what="the recovery error")
        text = worker.log_text()
        assert not report.exists(), text[-3000:]
        assert f"in {end_offsets.PROBE_ATTEMPTS} attempts" in text, text[-3000:]
        assert "APPEALS_VERIFY_END_OFFSETS=0" in text
        assert text.count("trying again in") == end_offsets.PROBE_ATTEMPTS - 1
        wait_for(lambda: not worker.alive, timeout=60, what="the worker to stop")
    finally:
        worker.stop()
