"""A triage decision for an appeal that never reached triage, on the real broker and a worker.

It waits (the pending copy may simply be behind, on another topic), but only until the pending
topic of its partition is ``EARLY_DECISION_WAIT`` past it in the stream's own time (message
timestamps, here set by the test so the wait does not take an hour); then it is dead-lettered
with reason ``not_triaged``. A decision that overtook its appeal within the wait still routes it.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, partition_of, read_topic, running_worker
from workers.route.agent import EARLY_DECISION_WAIT

pytestmark = pytest.mark.integration


def _pending(appeal_id: str) -> bytes:
    return orjson.dumps({
        "appeal_id": appeal_id, "regime": "pos", "region": "22",
        "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web", "subcategory": None,
        "municipality": "Барнаул", "text": "На дороге по улице Ленина яма", "address": None,
        "complaint_about": None, "urgent": False, "confidence": 0.3, "classifier_version": "m"})


def _decision(appeal_id: str) -> bytes:
    return orjson.dumps({"schema_version": 1, "event_id": f"{appeal_id}:1",
                         "appeal_id": appeal_id, "event": "triaged",
                         "at": "2026-11-24T03:00:00+00:00", "category": "roads"})


def test_unmatched_decision_is_dead_lettered(broker, redis_server, tmp_path: Path) -> None:
    from kafka import KafkaProducer

    settings = isolated_settings(broker.url, redis_server.url)
    t.ensure_topics(settings)
    n = settings.partitions
    unknown = "never-triaged"
    p = partition_of(unknown, n)
    same = [a for a in (f"tr-early-{i}" for i in range(200)) if partition_of(a, n) == p]
    overtaken, later = same[:2]
    now_ms = int(time.time() * 1000)
    wait_ms = int(EARLY_DECISION_WAIT * 1000)

    with running_worker(settings, tmp_path / "worker.log") as worker:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        try:
            def send(base: str, key: str, value: bytes, ts_ms: int) -> None:
                producer.send(t.topic_name(settings, base), key=key.encode(), value=value,
                              partition=p, timestamp_ms=ts_ms).get(30)

            send(t.TRIAGE_DECISIONS, unknown, _decision(unknown), now_ms - wait_ms - 300_000)
            # A decision that overtook its pending copy (written before it, read after it).
            send(t.TRIAGE_DECISIONS, overtaken, _decision(overtaken), now_ms - wait_ms - 200_000)
            send(t.TRIAGE_PENDING, overtaken, _pending(overtaken), now_ms - wait_ms - 250_000)
            # An hour later on the pending topic of that partition: the wait is over.
            send(t.TRIAGE_PENDING, later, _pending(later), now_ms)
        finally:
            producer.close()

        dead = [orjson.loads(r.value) for r in read_topic(settings, t.DEADLETTER, until=1)]
        assert [(d["reason"], d["stage"], d["partition"]) for d in dead] == [
            ("not_triaged", "triage", p)]
        assert orjson.loads(base64.b64decode(dead[0]["value_b64"]))["appeal_id"] == unknown
        routed = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=1)]
        assert [(r["appeal_id"], r["category"]) for r in routed] == [(overtaken, "roads")]
        assert "Traceback" not in worker.log_text()
