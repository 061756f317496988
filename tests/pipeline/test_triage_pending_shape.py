"""Pending copies of the wrong shape, on the real broker and a worker: dead-lettered, not a crash.

``appeals.triage.pending`` is internal, but bad input can reach any topic. A copy without the
fields routing reads (``{"appeal_id": X}``: no region, regime or registration time) used to be
stored as it was; the human decision for X then raised ``KeyError`` inside the batch, the
worker exited (70), and the replayed batch ended every restart the same way, so no appeal
behind it was ever routed. Now the copy is dead-lettered when it arrives, and a decision for a
bad copy already in the table (stored by the old version, restored from the changelog) is
dead-lettered as ``unprocessable``; the good appeal behind both is routed and the worker lives.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, partition_of, read_topic, running_worker

pytestmark = pytest.mark.integration

TEXT = "На дороге по улице Ленина яма"


def _pending(appeal_id: str) -> bytes:
    return orjson.dumps({
        "appeal_id": appeal_id, "regime": "pos", "region": "22",
        "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web", "subcategory": None,
        "municipality": "Барнаул", "text": TEXT, "address": None, "complaint_about": None,
        "urgent": False, "confidence": 0.3, "classifier_version": "m"})


def _decision(appeal_id: str) -> bytes:
    return orjson.dumps({"schema_version": 1, "event_id": f"{appeal_id}:1",
                         "appeal_id": appeal_id, "event": "triaged",
                         "at": "2026-11-24T03:00:00+00:00", "category": "roads"})


def test_pending_copy_of_the_wrong_shape_is_dead_lettered(broker, redis_server,
                                                          tmp_path: Path) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    settings = isolated_settings(broker.url, redis_server.url)
    t.ensure_topics(settings)
    n = settings.partitions
    # All on one partition, so the decisions are applied in the order they are sent.
    p = partition_of("tr-shape-0", n)
    bad, legacy, good = [a for a in (f"tr-shape-{i}" for i in range(200))
                         if partition_of(a, n) == p][:3]
    changelog = f"{settings.app_id}-triage-pending-changelog"

    # What the old version stored for a bad copy, in the table's changelog before the worker
    # starts: it is restored into the table unchecked.
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(changelog, num_partitions=n, replication_factor=1,
                                      topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        def send(topic: str, key: str, value: bytes) -> None:
            producer.send(topic, key=key.encode(), value=value, partition=p).get(30)

        # Registered just now: it waits for its decision (one stored without a registration
        # time, or longer ago than APPEALS_TRIAGE_MAX_WAIT, is dead-lettered at the first
        # batch of its partition instead, tests/route/test_triage_timeout.py).
        now = datetime.now(UTC).isoformat(timespec="seconds")
        send(changelog, legacy, orjson.dumps({"appeal_id": legacy, "registered_at": now}))
        with running_worker(settings, tmp_path / "worker.log") as worker:
            send(t.topic_name(settings, t.TRIAGE_PENDING), good, _pending(good))
            send(t.topic_name(settings, t.TRIAGE_PENDING), bad, orjson.dumps({"appeal_id": bad}))
            # The good copy is in the table (its changelog record) before any decision comes.
            stored = read_topic(settings.replace(topic_prefix=""), changelog, until=2,
                                timeout=45)
            assert good.encode() in [r.key for r in stored]
            for appeal_id in (bad, legacy, good):
                send(t.topic_name(settings, t.TRIAGE_DECISIONS), appeal_id,
                     _decision(appeal_id))

            routed = [orjson.loads(r.value)
                      for r in read_topic(settings, t.ROUTED, until=1, timeout=45)]
            assert [(r["appeal_id"], r["category"]) for r in routed] == [(good, "roads")]
            dead = [orjson.loads(r.value) for r in read_topic(settings, t.DEADLETTER, until=2)]
            got = sorted(
                (orjson.loads(base64.b64decode(d["value_b64"]))["appeal_id"], d["reason"],
                 d["stage"], d["topic"]) for d in dead)
            assert got == sorted([
                (bad, "missing_field", "triage", t.topic_name(settings, t.TRIAGE_PENDING)),
                (legacy, "unprocessable", "triage", t.topic_name(settings, t.TRIAGE_DECISIONS)),
            ])
            assert worker.alive, "the worker did not exit"
            worker.stop()
            log = worker.log_text()
    finally:
        producer.close()
    assert "Traceback" not in log and "exiting so that its offsets" not in log
    assert TEXT not in log
