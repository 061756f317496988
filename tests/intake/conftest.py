"""Fixtures for intake tests: Settings pointed at the session's real broker and Redis.

Each test module gets its own topic prefix, so topics (and the events a test counts in them)
never leak between tests that share the session broker.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workers.intake.adapters  # registers adapters for every intake test
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.records import CHANNELS
from streams.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data" / "intake"
_counter = itertools.count()


def load_samples(name: str) -> list[dict[str, Any]]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def unique_prefix() -> str:
    return f"t{next(_counter)}{uuid.uuid4().hex[:6]}."


def make_settings(broker: Any, redis_server: Any, prefix: str | None = None) -> Settings:
    return Settings(
        kafka=broker.url,
        redis=redis_server.url,
        topic_prefix=prefix if prefix is not None else unique_prefix(),
        partitions=1,
    )


def create_topics(settings: Settings) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        for channel in CHANNELS:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(f"{settings.topic_prefix}appeals.intake.{channel}",
                                              1, 1)])
    finally:
        admin.close()


def consume_all(settings: Settings, channel: str, expect: int | None = None,
                timeout: float = 15.0) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) on an intake topic: waits for ``expect`` events, then a quiet spell."""
    from kafka import KafkaConsumer

    topic = f"{settings.topic_prefix}appeals.intake.{channel}"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1500,
    )
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            got = False
            for records in batch.values():
                for r in records:
                    out.append((r.key, r.value))
                    got = True
            if expect is not None and len(out) >= expect and not got:
                break
            if expect is None and not got and out:
                break
    finally:
        consumer.close()
    return out


@pytest.fixture
def intake_settings(broker: Any, redis_server: Any) -> Iterator[Settings]:
    settings = make_settings(broker, redis_server)
    create_topics(settings)
    yield settings
