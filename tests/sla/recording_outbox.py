"""An SLA outbox whose producer only records what it is given (for the agent's unit tests).

Why here: the agent's per-event code is tested without a broker by several files; they must
all record sends the same way, and read dead letters back the same way.
"""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any, cast

import orjson

from streams import topics as t
from workers import runtime


class RecordingOutbox(runtime.Outbox):
    """``records`` holds every send as (topic, key, value)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes]] = []

        async def send(topic: str, key: bytes | None, value: bytes, *_: Any) -> Any:
            self.records.append((topic, key, value))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        topology = SimpleNamespace(app=SimpleNamespace(producer=SimpleNamespace(send=send)),
                                   name=lambda base: base)
        super().__init__(cast(Any, topology), "sla")

    def of(self, topic: str) -> list[dict[str, Any]]:
        """The JSON records sent to ``topic``."""
        return [orjson.loads(value) for name, _key, value in self.records if name == topic]

    @property
    def dead(self) -> list[tuple[str, bytes, str | None]]:
        """Dead letters as (reason, original value, detail)."""
        return [(d["reason"], base64.b64decode(d["value_b64"]), d["detail"])
                for d in self.of(t.DEADLETTER)]
