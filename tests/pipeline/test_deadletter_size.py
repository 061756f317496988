"""A dead letter fits the record size Apache Kafka accepts by default, whatever it carries.

A dead letter holds the original in base64 with an envelope: an 800 KB intake record made one of
1.07 MB, over the broker's default ``message.max.bytes`` (1,048,588), and the refused send
crashed the worker, which replayed the same record after every restart. Tansu has no such
limit, so this is checked on the record the outbox builds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from workers.runtime import DEADLETTER_MAX_ORIGINAL, Outbox

KAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> Any:
        self.sent.append((topic, key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _dead_letter(value: bytes, key: bytes | None, detail: str | None = "why") -> dict[str, Any]:
    producer = _Producer()
    topology = SimpleNamespace(app=SimpleNamespace(producer=producer), name=lambda base: base)

    async def run() -> None:
        outbox = Outbox(topology, "intake")  # type: ignore[arg-type]
        await outbox.dead_letter_raw(value, key, topic="appeals.intake.web", partition=3,
                                     offset=17, stage="intake", reason="oversize_message",
                                     detail=detail)
        await outbox.flush()

    asyncio.run(run())
    [(_, _, record)] = producer.sent
    assert len(record) + (len(key) if key else 0) < KAFKA_DEFAULT_MESSAGE_MAX_BYTES
    return dict(orjson.loads(record))


@pytest.mark.parametrize("size", [800_000, 1_000_001, 3_000_000])
def test_a_large_original_is_cut_to_fit_and_the_detail_says_so(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    letter = _dead_letter(value, b"k" * 36)
    kept = base64.b64decode(letter["value_b64"])
    assert value.startswith(kept) and len(kept) == DEADLETTER_MAX_ORIGINAL - 36
    assert f"value of {size} bytes" in letter["detail"]
    assert hashlib.sha256(value).hexdigest() in letter["detail"]
    assert letter["detail"].endswith("; why")
    assert (letter["topic"], letter["partition"], letter["offset"]) == (
        "appeals.intake.web", 3, 17)


@pytest.mark.parametrize(("key_size", "value_size"),
                         [(120_000, 580_000), (200_000, 500_000), (700_000, 0)])
def test_a_large_key_counts_twice(key_size: int, value_size: int) -> None:
    """The key is in ``key_b64`` and is the dead letter's own Kafka key: a total of 700,000
    bytes made a dead letter of 1.05-1.63 MB (review of session 17's diff)."""
    letter = _dead_letter(b"v" * value_size, b"k" * key_size)  # asserts the size
    assert letter["detail"].startswith(f"original key of {key_size} bytes cut")


def test_a_huge_key_is_cut_too() -> None:
    letter = _dead_letter(b"v" * 10, b"k" * 900_000, detail=None)
    assert len(base64.b64decode(letter["key_b64"])) == 4096
    assert letter["detail"].startswith("original key of 900000 bytes cut")


def test_an_original_that_fits_is_kept_whole() -> None:
    value = b"y" * DEADLETTER_MAX_ORIGINAL
    letter = _dead_letter(value, None)
    assert base64.b64decode(letter["value_b64"]) == value
    assert letter["detail"] == "why"
