"""In-memory stand-ins for fast intake tests: no Kafka, no Redis.

* :class:`AgentHarness` runs the real intake agent body (``workers.intake.agent.install``) over
  given batches. Only the stream machinery is replaced: ``batches()`` yields our events, the
  outbox records what is sent, Redis emulates the three Lua scripts, and ``crash_on_error``
  records the exception (the real one calls ``os._exit(70)``, which would end pytest).
* :func:`gateway` serves the real gateway application on loopback with an in-memory producer
  and Redis.

The real broker and Redis are covered by the integration tests next to these.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

import workers.intake.adapters  # registers the adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings
from workers import redis_lua
from workers.intake import agent as intake_agent
from workers.intake import redis_scripts
from workers.intake.gateway import Client, GatewayConfig, create_app, runner_options

# --------------------------------------------------------------------------- the agent


class FakeScriptRedis:
    """Redis as the intake agent uses it: the three Lua scripts, emulated."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.h: dict[str, dict[Any, Any]] = {}

    def register_script(self, source: str) -> Any:
        async def call(keys: list[Any], args: list[Any], client: Any = None) -> Any:
            if source == redis_scripts.FIRST_SEEN:
                out = []
                for i, k in enumerate(keys):
                    mark = args[i + 1]
                    if k not in self.kv:
                        self.kv[k] = mark
                    out.append(1 if self.kv[k] == mark else 0)
                return out
            if source == redis_scripts.HGETALL_MANY:
                return [[x for kv in self.h.get(k, {}).items() for x in kv] for k in keys]
            if source == redis_scripts.HSET_CAPPED_MANY:
                cap = int(args[1])
                for i, k in enumerate(keys):
                    self.h.setdefault(k, {})[args[2 * i + 2]] = args[2 * i + 3]
                dropped = 0
                for k in dict.fromkeys(keys):
                    entries = sorted(self.h[k].items(),
                                     key=lambda kv: (struct.unpack_from(">d", kv[1])[0], kv[0]))
                    for field, _ in entries[: max(0, len(entries) - cap)]:
                        del self.h[k][field]
                        dropped += 1
                return dropped
            raise AssertionError("unknown script")

        return call


class FakeOutbox:
    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    async def send(self, base: str, key: Any, value: bytes) -> None:
        self.log.append((base, key, value))

    async def send_record(self, base: str, key: str | None, record: Any) -> None:
        await self.send(base, key, record.to_json())

    async def dead_letter(self, event: Any, *, stage: str, reason: str,
                          detail: str | None = None) -> None:
        self.log.append((t.DEADLETTER, reason, detail))

    async def flush(self) -> None:
        pass


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: float = 0.0


class FakeClassifier:
    def classify_batch(self, texts: list[str]) -> list[Any]:
        return [SimpleNamespace(category="other", urgent=False, confidence=0.0,
                                top3=[("other", 0.0)], model_version="fake") for _ in texts]


#: The agent's clock in the harness unless a test gives its own: a fortnight after the sample
#: payloads (tests/data/intake, January 2025). Intake registers an appeal at its legal moment,
#: at most when it reads it, and refuses one submitted more than APPEALS_INTAKE_MAX_AGE (a
#: year) before: on the wall clock the samples would age out of the tests that send them.
HARNESS_NOW = datetime(2025, 2, 1, tzinfo=UTC)


class AgentHarness:
    def __init__(self, settings: Settings | None = None,
                 now: datetime = HARNESS_NOW, router: Any = None) -> None:
        self.settings = settings or Settings()
        #: The agent's router; the default has no rules (the classifier sends all to triage).
        self.router = SimpleNamespace() if router is None else router
        #: The SLA clock's now while the agent processes the batches.
        self.now = now
        #: How the agent maps a record's Kafka timestamp (``Msg.timestamp``, wall seconds; 0:
        #: none, the record is read at ``now``) onto the SLA clock.
        self.clock = SlaClock()
        self.sent: list[tuple[Any, ...]] = []
        self.crashes: list[BaseException] = []
        self.redis = FakeScriptRedis()

    def topic(self, channel: str) -> str:
        return t.topic_name(self.settings, t.intake_topic(channel))

    def batch(self, channel: str, values: list[bytes]) -> list[Msg]:
        return [Msg(self.topic(channel), 0, i, v) for i, v in enumerate(values)]

    def run(self, *batches: list[Msg]) -> None:
        asyncio.run(self._run(list(batches)))

    async def _run(self, batches: list[list[Msg]]) -> None:
        events_batches = [[SimpleNamespace(message=m) for m in b] for b in batches]

        async def fake_batches(stream: Any, settings: Any, **_: Any) -> AsyncIterator[list[Any]]:
            for b in events_batches:
                yield b

        @contextlib.contextmanager
        def fake_crash(stage: str) -> Iterator[None]:
            try:
                yield
            except Exception as exc:  # the real one: log.critical + os._exit(70)
                self.crashes.append(exc)

        app = SimpleNamespace(agent=lambda source, name: (lambda fn: fn))
        ctx = SimpleNamespace(
            settings=self.settings,
            topology=SimpleNamespace(channel_of=lambda *a: None),
            outbox=lambda stage: FakeOutbox(self.sent),
            clock=SimpleNamespace(now_dt=lambda: self.now, sla_time_of=self.clock.sla_time_of),
            redis=self.redis,
        )
        orig_b, orig_c = intake_agent.batches, intake_agent.crash_on_error
        intake_agent.batches, intake_agent.crash_on_error = fake_batches, fake_crash
        # redis_lua caches one script object per source for the process: keep the fake's
        # scripts out of that cache, or later tests on the real Redis would run them.
        cached = dict(redis_lua._scripts)
        redis_lua._scripts.clear()
        try:
            fn = intake_agent.install(app, ctx, self.router, FakeClassifier())
            await fn(None)
        finally:
            intake_agent.batches, intake_agent.crash_on_error = orig_b, orig_c
            redis_lua._scripts.clear()
            redis_lua._scripts.update(cached)

    def registered(self) -> list[tuple[Any, ...]]:
        return [s for s in self.sent if s[0] == t.REGISTERED]

    def deadletters(self) -> list[tuple[Any, ...]]:
        return [s for s in self.sent if s[0] == t.DEADLETTER]


# --------------------------------------------------------------------------- the gateway

TOKENS = {"client-a": "tok-a", "client-b": "tok-b"}


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        self.sent.append((topic, key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def stop(self) -> None:
        pass


class _Pipe:
    def __init__(self, r: FakeRedis) -> None:
        self.r = r
        self.ops: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> _Pipe:
        return self

    async def __aexit__(self, *a: Any) -> bool:
        return False

    def set(self, k: str, v: Any, nx: bool = False, ex: int | None = None) -> None:
        self.ops.append(("set", k, v, nx))

    def get(self, k: str) -> None:
        self.ops.append(("get", k))

    def hset(self, k: str, mapping: dict[str, Any]) -> None:
        self.ops.append(("hset", k, mapping))

    def expire(self, k: str, ttl: int) -> None:
        self.ops.append(("expire", k))

    def hgetall(self, k: str) -> None:
        self.ops.append(("hgetall", k))

    async def execute(self) -> list[Any]:
        out: list[Any] = []
        for op in self.ops:
            if op[0] == "set":
                _, k, v, nx = op
                if nx and k in self.r.kv:
                    out.append(None)
                else:
                    self.r.kv[k] = v.encode() if isinstance(v, str) else v
                    out.append(True)
            elif op[0] == "get":
                out.append(self.r.kv.get(op[1]))
            elif op[0] == "hset":
                self.r.h.setdefault(op[1], {}).update(op[2])
                out.append(1)
            elif op[0] == "hgetall":
                out.append(self.r.h.get(op[1], {}))
            else:
                out.append(True)
        self.ops = []
        return out


class FakeRedis:
    """Redis as the gateway uses it (pipelines of SET NX/GET/HSET, DELETE, PING)."""

    def __init__(self) -> None:
        self.kv: dict[str, Any] = {}
        self.h: dict[str, dict[str, Any]] = {}

    def pipeline(self, transaction: bool = False) -> _Pipe:
        return _Pipe(self)

    async def set(self, k: str, v: Any, nx: bool = False, ex: int | None = None) -> bool | None:
        if nx and k in self.kv:
            return None
        self.kv[k] = v.encode() if isinstance(v, str) else v
        return True

    async def get(self, k: str) -> Any:
        return self.kv.get(k)

    async def delete(self, *keys: str) -> None:
        for k in keys:
            self.kv.pop(k, None)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


@contextlib.asynccontextmanager
async def gateway(
    settings: Settings | None = None,
    now: datetime = HARNESS_NOW,
    clients: tuple[Client, ...] | None = None,
) -> AsyncIterator[tuple[TestClient, FakeProducer, FakeRedis]]:
    """The gateway over in-memory Kafka and Redis; ``now`` is its clock (the harness's, so the
    January 2025 samples stay within APPEALS_INTAKE_MAX_AGE); ``clients`` replaces the
    default ones of TOKENS (which own no channel's ids)."""
    settings = settings or Settings()
    if clients is None:
        clients = tuple(Client(id=c, token=tok) for c, tok in TOKENS.items())
    config = GatewayConfig(clients=clients, create_topics=False, rate=1000.0, burst=1000)
    producer, redis = FakeProducer(), FakeRedis()
    app = create_app(settings, config, producer=producer, redis=redis, now=lambda: now)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(**runner_options())
    client = TestClient(server)
    await client.start_server()
    try:
        yield client, producer, redis
    finally:
        await client.close()


def auth(client_id: str = "client-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client_id]}"}
