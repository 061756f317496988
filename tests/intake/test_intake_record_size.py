"""An intake record is measured as intake writes it again, not only as it was sent.

orjson writes ``1e15`` as ``1000000000000000.0`` and unknown fields are carried on in ``extra``,
so a record of 1 MB as sent became a registered appeal of 3.8 MB. The worker's producer (or
the broker) refused it, the worker exited with status 70 on every restart and the partition
stood still; the record was never dead-lettered, while the gateway and the producer SDK,
which measure the record re-encoded, refused it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

import workers.intake.adapters  # registers the adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.validation import InvalidEvent
from streams import topics as t
from streams.app import (
    MIN_PRODUCER_REQUEST_BYTES,
    max_registered_bytes,
    producer_max_request_size,
)
from streams.settings import Settings
from streams.testing import isolated_settings, read_topic, running_worker
from tests.intake.fakes import AgentHarness
from workers.intake import agent as intake_agent
from workers.intake.core import decode_intake
from workers.intake.producer import IntakeProducer
from workers.runtime import DEADLETTER_MAX_ORIGINAL

BASE = {"schema_version": 1, "channel": "pos", "external_id": "big-1",
        "submitted_at": "2025-01-20T10:00:00+07:00", "region": "22", "text": "Нет отопления"}
#: Apache Kafka's default ``message.max.bytes``: what a dead letter must stay under.
KAFKA_MESSAGE_MAX_BYTES = 1_048_588


def swelling(limit: int, base: dict[str, object] = BASE) -> bytes:
    """An intake record just under ``limit`` bytes that is over four times that re-encoded."""
    head = orjson.dumps(base)[:-1] + b',"extra":{"n":['
    n = (limit - len(head) - 3) // 5
    return head + b",".join([b"1e15"] * n) + b"]}}"


def test_decode_refuses_a_record_over_the_limit_as_written_again() -> None:
    raw = swelling(20_000)
    assert len(raw) <= 20_000
    with pytest.raises(InvalidEvent) as info:
        decode_intake(raw, channel_hint="pos", max_message_bytes=20_000)
    assert info.value.reason == "oversize_message"
    # Under a limit that the re-encoded record fits, it is accepted.
    assert decode_intake(raw, channel_hint="pos", max_message_bytes=100_000).extra


def test_decode_and_the_sdk_reach_the_same_verdict() -> None:
    raw = swelling(20_000)
    sdk = IntakeProducer.__new__(IntakeProducer)  # _encoded needs no broker
    sdk.max_text_length, sdk.max_message_bytes, sdk.max_age = 20_000, 20_000, 3660 * 86400.0
    sdk.now = lambda: AgentHarness().now
    with pytest.raises(InvalidEvent) as info:
        sdk.prepare(orjson.loads(raw), "pos")
    assert info.value.reason == "oversize_message"


def test_the_agent_dead_letters_the_swollen_record_and_registers_the_next() -> None:
    h = AgentHarness(settings=Settings(max_message_bytes=20_000))
    good = orjson.dumps({**BASE, "external_id": "good-after"})
    h.run(h.batch("pos", [swelling(20_000), good]))
    assert h.crashes == []
    assert [orjson.loads(v)["external_id"] for _, _, v in h.registered()] == ["good-after"]
    assert [(reason, "as intake writes it" in detail)
            for _, reason, detail in h.deadletters()] == [("oversize_message", True)]


def test_a_registered_appeal_over_the_send_bound_is_dead_lettered_not_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: should a registered appeal still come out over the bound (it cannot
    through decode_intake), it is dead-lettered; sent, the producer would refuse it and end
    the worker."""
    monkeypatch.setattr(intake_agent, "max_registered_bytes", lambda settings: 400)
    h = AgentHarness()
    h.run(h.batch("pos", [orjson.dumps(BASE)]))
    assert h.crashes == []
    assert h.registered() == []
    assert [reason for _, reason, _ in h.deadletters()] == ["oversize_message"]


def test_the_producer_request_size_follows_the_message_limit() -> None:
    assert producer_max_request_size(Settings()) == MIN_PRODUCER_REQUEST_BYTES
    big = Settings(max_message_bytes=8_000_000)
    assert max_registered_bytes(big) > 8_000_000
    assert producer_max_request_size(big) > max_registered_bytes(big)


@pytest.mark.integration
def test_a_swelling_record_is_dead_lettered_and_the_partition_moves_on(
        broker, redis_server, tmp_path: Path) -> None:
    """The reviewer's scenario on the real broker: a 1.2 MB record (allowed by
    APPEALS_MAX_MESSAGE_BYTES=1200000) that re-encodes to 4.5 MB, over the worker producer's
    request size, then a valid appeal on the same partition."""
    from kafka import KafkaProducer

    limit = 1_200_000
    settings = isolated_settings(broker.url, redis_server.url, max_message_bytes=limit,
                                 partitions=1, intake_max_age=3660 * 86400.0)
    t.ensure_topics(settings)
    base = {**BASE, "submitted_at": "2026-11-27T10:00:00+07:00"}
    poison = swelling(limit, base)
    good = orjson.dumps({**base, "external_id": "good-after"})
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             max_request_size=8_000_000)
    try:
        for value in (poison, good):
            producer.send(t.topic_name(settings, t.intake_topic("pos")), value=value)
        producer.flush(60)
    finally:
        producer.close()
    with running_worker(settings, tmp_path / "worker.log") as worker:
        registered = read_topic(settings, t.REGISTERED, until=1, timeout=120)
        dead = read_topic(settings, t.DEADLETTER, until=1, timeout=30)
        assert worker.alive, worker.log_text()[-2000:]
    assert [orjson.loads(r.value)["external_id"] for r in registered] == ["good-after"]
    assert len(dead) == 1
    letter = orjson.loads(dead[0].value)
    assert letter["reason"] == "oversize_message"
    # The dead letter carries the original, cut to fit (streams: DEADLETTER_MAX_ORIGINAL).
    assert base64.b64decode(letter["value_b64"]) == poison[:DEADLETTER_MAX_ORIGINAL]
    assert len(dead[0].value) < KAFKA_MESSAGE_MAX_BYTES
