"""The triage agent's loop (``install_triage``) on a fake app, stream and outbox: no broker.

- A decision that overtook its pending appeal waits, but only until the pending topic's own
  time (message timestamps) is ``EARLY_DECISION_WAIT`` past it; then it is dead-lettered as
  ``not_triaged`` and leaves the table. The wait is kept in the table, so it survives a restart.
- The table (changelog-backed) is written only after the outbox flush acknowledged the batch:
  a flush that fails leaves it untouched, so the replayed decision still routes the appeal.
  (A process killed between the flush and the table write cannot be staged deterministically;
  a flush that raises is the same window seen from the table.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings
from workers.route import agent as A
from workers.routing import Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
T0 = 1_790_000_000.0
WAIT = getattr(A, "EARLY_DECISION_WAIT", 3600.0)
MAX_WAIT = getattr(A, "EARLY_DECISION_MAX_WAIT", 7 * 86400.0)


class Outbox:
    def __init__(self, fail_flush: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []
        self.fail_flush = fail_flush
        self.unacked = 0  # sent since the last successful flush

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        self.unacked += 1

    async def send_record(self, base: str, key: str, record: Any) -> None:
        self.unacked += 1
        self.sent.append(orjson.loads(record.to_json()))

    async def dead_letter(self, event: Any, **kw: Any) -> None:
        self.unacked += 1
        self.dead.append(kw)

    async def dead_letter_raw(self, raw: bytes, key: bytes | None, **kw: Any) -> None:
        self.unacked += 1
        self.dead.append({**kw, "value": orjson.loads(raw)})

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker gone")
        self.unacked = 0


class Table(dict[bytes, Any]):
    """Counts writes made while the outbox held sends the broker had not acknowledged."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox
        self.writes_before_flush = 0

    def __setitem__(self, key: bytes, value: Any) -> None:
        if self.outbox.unacked:
            self.writes_before_flush += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.outbox.unacked:
            self.writes_before_flush += 1
        super().__delitem__(key)


class Worker:
    """One worker process: the agent installed on a fake app around ``table``."""

    def __init__(self, table: Any, outbox: Outbox, router: Router) -> None:
        self.outbox = outbox
        app = SimpleNamespace(
            Table=lambda *a, **k: table,
            agent=lambda source, name: lambda fun: fun,
            timer=lambda interval: lambda fun: fun,  # the clock ticks: tests of their own
            on_partitions_assigned=SimpleNamespace(connect=lambda fun: fun),
            consumer=SimpleNamespace(assignment=lambda: [
                SimpleNamespace(topic=topic, partition=p)
                for topic in (DECISIONS, PENDING) for p in range(SETTINGS.partitions)]),
        )
        ctx = SimpleNamespace(settings=SETTINGS, outbox=lambda stage: self.outbox,
                              clock=SlaClock(),
                              topology=SimpleNamespace(channel_of=lambda *bases: None))
        self.agent = A.install_triage(app, ctx, router)  # type: ignore[arg-type]

    def run(self, *steps: list[Any] | Callable[[], None]) -> None:
        """Batches of events, with checks run between them."""

        async def stream(_: Any, __: Any) -> AsyncIterator[list[Any]]:
            for step in steps:
                if callable(step):
                    step()
                else:
                    yield step

        asyncio.run(self.agent(stream))


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real ones exit the process on an error (os._exit) and time the batch.
    monkeypatch.setattr(A, "batches", lambda stream, settings, **_: stream(None, None))
    monkeypatch.setattr(A, "crash_on_error", lambda stage: contextlib.nullcontext())
    monkeypatch.setattr(A, "observe_stage_latency", lambda stage, events: None)


def pending_msg(appeal_id: str, ts: float, partition: int = 0) -> Any:
    value = {"appeal_id": appeal_id, "regime": "pos", "region": "22",
             "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web",
             "subcategory": None, "municipality": "Барнаул", "text": "Яма на дороге",
             "address": None, "complaint_about": None, "urgent": True, "confidence": 0.3,
             "classifier_version": "m"}
    return _event(PENDING, value, ts, partition)


def decision_msg(appeal_id: str, ts: float, partition: int = 0, **extra: Any) -> Any:
    value = {"schema_version": 1, "event_id": f"{appeal_id}:t", "appeal_id": appeal_id,
             "event": "triaged", "at": "2026-11-24T03:00:00+00:00", "category": "roads",
             **extra}
    return _event(DECISIONS, value, ts, partition)


_offsets = iter(range(10**6))


def _event(topic: str, value: dict[str, Any], ts: float, partition: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=partition, offset=next(_offsets), timestamp=ts,
        value=orjson.dumps(value), key=value["appeal_id"].encode()))


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def dead_ids(outbox: Outbox) -> list[str]:
    return sorted(d["value"]["appeal_id"] for d in outbox.dead)


def test_unknown_decision_is_dead_lettered_after_the_wait(router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]

    def waiting() -> None:
        assert b"nobody" in table and outbox.dead == [], "an early decision waits"

    Worker(table, outbox, router).run(
        [decision_msg("nobody", T0)], waiting,
        # Pending appeals keep coming on the partition; still inside the wait.
        [pending_msg("other-1", T0 + WAIT - 1)], waiting,
        [pending_msg("other-2", T0 + WAIT)])
    assert [(d["reason"], d["value"]["appeal_id"], d["topic"]) for d in outbox.dead] == [
        ("not_triaged", "nobody", DECISIONS)]
    assert b"nobody" not in table, "the table no longer holds it"
    assert outbox.sent == []


def test_the_wait_is_in_stream_time_of_the_partition(router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]

    def not_yet() -> None:
        assert outbox.dead == [] and b"nobody" in table

    Worker(table, outbox, router).run(
        [decision_msg("nobody", T0, partition=1)],
        # Another partition's time, or decisions running ahead (a backlog), end no wait.
        [pending_msg("x", T0 + 10 * WAIT, 2), decision_msg("d2", T0 + 10 * WAIT, 1)], not_yet,
        # A partition with no pending traffic at all still has a limit.
        [decision_msg("d3", T0 + MAX_WAIT, 1)])
    assert dead_ids(outbox) == ["nobody"]
    assert b"nobody" not in table and b"d2" in table and b"d3" in table


def test_a_decision_that_overtook_its_appeal_still_routes_it(router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    Worker(table, outbox, router).run(
        [decision_msg("a1", T0, urgent=None)],
        [pending_msg("a1", T0 - 5), pending_msg("later", T0 + WAIT + 1)])
    assert [(r["appeal_id"], r["category"], r["urgent"]) for r in outbox.sent] == [
        ("a1", "roads", True)]
    assert outbox.dead == [] and table[b"a1"] == {"done": True, "decided": "roads",
                                                "decided_urgent": None}


def test_the_wait_survives_a_restart(router: Router) -> None:
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    Worker(table, outbox, router).run([decision_msg("nobody", T0)])
    # Written by a version without the limit: no arrival time, no partition.
    legacy = {"schema_version": 1, "event_id": "e", "appeal_id": "legacy", "event": "triaged",
              "at": "2026-11-24T03:00:00+00:00", "category": "roads"}
    table[b"legacy"] = {"decision": legacy}
    from aiokafka.partitioner import murmur2

    p_legacy = (murmur2(b"legacy") & 0x7FFFFFFF) % SETTINGS.partitions
    at_legacy = A.datetime.fromisoformat(str(legacy["at"])).timestamp()
    # A new process: the table came back from its changelog, the in-memory state did not.
    Worker(table, outbox, router).run(
        [pending_msg("x", T0 + WAIT), pending_msg("y", at_legacy + WAIT, p_legacy)])
    assert dead_ids(outbox) == ["legacy", "nobody"]
    assert sorted(table) == [b"x", b"y"]


def test_table_is_written_only_after_the_flush(router: Router) -> None:
    outbox = Outbox()
    table = Table(outbox)
    Worker(table, outbox, router).run(
        [pending_msg("a1", T0)], [decision_msg("a1", T0 + 1)],
        [decision_msg("a2", T0 + 2)], [decision_msg("a3", T0 + 2), pending_msg("a2", T0 + 3)],
        [pending_msg("a4", T0 + WAIT + 2)])  # a3 is dead-lettered and removed
    assert table.writes_before_flush == 0
    assert table[b"a1"]["done"] and table[b"a2"]["done"] and len(outbox.sent) == 2
    assert b"a3" not in table and dead_ids(outbox) == ["a3"]


def test_a_failed_flush_leaves_no_done_marker(router: Router) -> None:
    table: dict[bytes, Any] = {}
    Worker(table, Outbox(), router).run([pending_msg("a1", T0)])
    before = dict(table)
    broken = Outbox(fail_flush=True)
    with pytest.raises(ConnectionError):
        Worker(table, broken, router).run([decision_msg("a1", T0 + 1)])
    assert len(broken.sent) == 1, "the routed record was sent but never acknowledged"
    assert table == before, "no done marker: the replayed decision routes the appeal again"
    replay = Outbox()
    Worker(table, replay, router).run([decision_msg("a1", T0 + 1)])
    assert [r["appeal_id"] for r in replay.sent] == ["a1"]


def test_writes_of_partitions_revoked_during_the_flush_are_left_to_the_new_owner(
        router: Router) -> None:
    early = A.EarlyDecisions(SETTINGS.partitions)
    lost = early.partition_of(b"a1")
    table: dict[bytes, Any] = {}

    async def run() -> None:
        await A.process_batch(Outbox(), table, router, early,  # type: ignore[arg-type]
                              [pending_msg("a1", T0)],
                              DECISIONS, lambda: set(range(SETTINGS.partitions)) - {lost})
        await A.process_batch(Outbox(), table, router, early,  # type: ignore[arg-type]
                              [pending_msg("a2", T0)],
                              DECISIONS, lambda: set(range(SETTINGS.partitions)))

    asyncio.run(run())
    assert b"a1" not in table  # its partition moved away while the batch awaited its acks
    assert b"a2" in table
