"""A recording stand-in of the worker's Outbox for the routing and triage agents' tests.

The agents send records, dead letters and raw dead letters through the outbox and flush it
once per batch; these tests read back what was sent, decoded, by topic base name. Kept in one
place so that a method the agents start calling is added once, not in each test file."""

from __future__ import annotations

from typing import Any

import orjson

from streams import topics as t


class RecordingOutbox:
    """Every send, decoded, with its topic base name and key.

    ``strict``: a dead letter is a test failure (for tests of inputs that must all route);
    ``fail_flush``: the flush raises as when the broker is gone."""

    def __init__(self, *, strict: bool = False, fail_flush: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []
        #: The partition each send named (None: the key's), in the order of ``sent``.
        self.partitions: list[int | None] = []
        self.dead: list[dict[str, Any]] = []
        self.strict = strict
        self.fail_flush = fail_flush

    async def send(self, base: str, key: bytes | None, value: bytes, *,
                   partition: int | None = None) -> None:
        self.sent.append((base, key, orjson.loads(value)))
        self.partitions.append(partition)

    async def send_record(self, base: str, key: str, record: Any) -> None:
        await self.send(base, key.encode(), record.to_json())

    async def dead_letter(self, event: Any, **kw: Any) -> None:
        if self.strict:
            raise AssertionError(f"unexpected dead letter: {kw}")
        self.dead.append({**kw, "topic": event.message.topic})

    async def dead_letter_raw(self, raw: bytes, key: bytes | None, **kw: Any) -> None:
        if self.strict:
            raise AssertionError(f"unexpected dead letter: {kw}")
        self.dead.append({**kw, "value": orjson.loads(raw)})

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker gone")

    def on(self, base: str) -> list[dict[str, Any]]:
        """The records sent to the topic ``base`` names, in order."""
        return [v for b, _k, v in self.sent if b == base]

    @property
    def routed(self) -> list[dict[str, Any]]:
        return self.on(t.ROUTED)
