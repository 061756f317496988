"""Why ``APPEALS_FETCH_MAX_WAIT`` refuses 0: the embedded broker then returns no records at all.

Tansu reads partitions only inside ``while elapsed < max_wait and bytes < min_bytes``, so a
fetch with a zero wait is answered without reading (README, "The embedded broker"). This keeps
the claim checked against the broker the tests run, and tells when a new build changes it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.settings import ConfigError, Settings

pytestmark = pytest.mark.integration


async def _records_fetched(bootstrap: str, topic: str, wait_ms: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=wait_ms)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = await consumer.getmany(tp, timeout_ms=1500)
        return len(got.get(tp, []))
    finally:
        await consumer.stop()


async def _zero_and_one_ms(bootstrap: str) -> tuple[int, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("fetch-wait-probe", b"x", partition=0)
    finally:
        await producer.stop()
    return (await _records_fetched(bootstrap, "fetch-wait-probe", 0),
            await _records_fetched(bootstrap, "fetch-wait-probe", 1))


def test_a_zero_fetch_wait_returns_nothing_from_the_embedded_broker(broker) -> None:  # type: ignore[no-untyped-def]
    zero, one = asyncio.run(_zero_and_one_ms(broker.bootstrap))
    assert (zero, one) == (0, 1)


def test_settings_refuse_a_zero_fetch_wait() -> None:
    with pytest.raises(ConfigError, match="APPEALS_FETCH_MAX_WAIT"):
        Settings.load({"APPEALS_FETCH_MAX_WAIT": "0"})
    assert Settings.load({}).fetch_max_wait == 0.05
