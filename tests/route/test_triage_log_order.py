"""What a triage decision does follows from the log alone, not from batches or fetches.

Before, ``process_batch`` applied every decision of a batch and then ran the timeouts, and the
wait was counted on the later message time of both input topics. With a pending copy at T0, a
clock tick at T0 + ``APPEALS_TRIAGE_MAX_WAIT`` and a decision 5 s later, two batches routed the
appeal to the desk and redirected it, one batch routed it directly by the decision. A crash
between the outbox flush and the table write replays the log with other boundaries: the appeal
was routed twice, to two bodies, and the SLA agent kept the first routing and dropped the
second as a duplicate, so the human decision was lost.

Now the timeouts run event by event, on the partition's triage clock (the decisions topic's
own message time: decisions and ticks, in offset order), and a decision that overtook its
pending copy at a clock past that copy's wait is late as well. So every split of a log into
batches gives the same outputs, and so does every merge of the two topics as a fetch may bring
them; a crash replay routes an appeal to one body and keeps its decision.

The same holds with copies of different waits on one partition (an incident's hour,
``APPEALS_TRIAGE_INCIDENT_MAX_WAIT``, beside a letter's day): :func:`incident_log`.

No broker: ``process_batch`` with a recording outbox and a dict for the table.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.clock import SlaClock
from tests.route.test_triage_timeout import (
    DECISIONS,
    DESK,
    MAX_WAIT,
    PENDING,
    SETTINGS,
    T0,
    Outbox,
    decision,
    ids_on,
    pending,
)
from workers.route import agent as A
from workers.routing import Router, load_rules

X, Y, Z, V, W, N, J, K = ids_on(1, 8)
#: The wait of incident copies (``APPEALS_TRIAGE_INCIDENT_MAX_WAIT``'s default).
SHORT = 3600.0
#: The routing time of every record, so that runs can be compared whole.
NOW = datetime(2026, 9, 30, 12, 0, tzinfo=UTC)


class FixedClock(SlaClock):
    def now_dt(self) -> datetime:
        return NOW


def msg(topic: str, value: Any, ts: float, offset: int, key: bytes | None = None) -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=1, offset=offset, timestamp=ts,
        key=value["appeal_id"].encode() if key is None else key, value=raw))


def log() -> tuple[list[Any], list[Any]]:
    """Partition 1 of both topics, each in offset order: (pending, decisions).

    X: timed out by a tick, then decided (late: a redirect). Y: decided in time. V: its
    decision is the record that ends V's wait (late). Z: copy stamped after the first tick,
    timed out by the second, then decided (late). W: decided in time, its decision possibly
    read before its copy."""
    pend = [(X, T0), (Y, T0 + 100), (V, T0 + 200), (Z, T0 + MAX_WAIT + 20),
            (W, T0 + MAX_WAIT + 25)]
    pending_topic = [msg(PENDING, pending(a), ts, i) for i, (a, ts) in enumerate(pend)]
    tick = A.TICK_VALUE
    dec: list[tuple[str | None, str, float]] = [
        (None, "", T0 + MAX_WAIT), (X, "healthcare", T0 + MAX_WAIT + 5),
        (Y, "education", T0 + MAX_WAIT + 10), (W, "healthcare", T0 + MAX_WAIT + 30),
        (V, "healthcare", T0 + MAX_WAIT + 300), (None, "", T0 + 2 * MAX_WAIT + 50),
        (Z, "healthcare", T0 + 2 * MAX_WAIT + 60)]
    decisions_topic = [
        msg(DECISIONS, tick, ts, i, key=A.TICK_KEY) if a is None
        else msg(DECISIONS, decision(a, category), ts, i)
        for i, (a, category, ts) in enumerate(dec)]
    return pending_topic, decisions_topic


def incident_log() -> tuple[list[Any], list[Any]]:
    """Partition 1 of both topics with incident copies waiting :data:`SHORT` beside a letter
    (X) waiting a day, stored before them: (pending, decisions).

    J: decided in time. N: timed out by a tick at its due time while X, older, still waits;
    then decided (late). K: its decision is the record that ends K's wait (late). X: timed out
    by the day's tick, then decided (late)."""
    pend = [(X, "fz59", T0), (N, "incident", T0 + 100), (J, "incident", T0 + 200),
            (K, "incident", T0 + 300)]
    pending_topic = [msg(PENDING, pending(a, regime=regime), ts, i)
                     for i, (a, regime, ts) in enumerate(pend)]
    dec: list[tuple[str | None, str, float]] = [
        (J, "healthcare", T0 + 1000), (None, "", T0 + 100 + SHORT),
        (N, "healthcare", T0 + 100 + SHORT + 5), (K, "healthcare", T0 + 300 + SHORT),
        (None, "", T0 + MAX_WAIT), (X, "healthcare", T0 + MAX_WAIT + 5)]
    decisions_topic = [
        msg(DECISIONS, A.TICK_VALUE, ts, i, key=A.TICK_KEY) if a is None
        else msg(DECISIONS, decision(a, category), ts, i)
        for i, (a, category, ts) in enumerate(dec)]
    return pending_topic, decisions_topic


#: Each log, with the order of a reference run (a merge of its two topics).
LOGS = {
    "letters": (log, lambda p, d: [*p[:3], *d[:5], *p[3:], *d[5:]]),
    "incidents": (incident_log, lambda p, d: [*p, *d]),
}


class Worker:
    """A triage worker over a dict table; ``crash`` drops a batch's table writes after its
    outputs were acknowledged, as a process killed between the flush and the table write."""

    def __init__(self, router: Router, table: dict[bytes, Any] | None = None) -> None:
        self.router = router
        self.table: dict[bytes, Any] = {} if table is None else table
        self.early = A.EarlyDecisions(SETTINGS.partitions, MAX_WAIT, SHORT)
        self.early.rebuild(self.table.items(), set(range(SETTINGS.partitions)))

    def run(self, events: list[Any], outbox: Outbox, crash: bool = False) -> None:
        before = dict(self.table)
        asyncio.run(A.process_batch(outbox, self.table, self.router,  # type: ignore[arg-type]
                                    self.early, events, DECISIONS, clock=FixedClock()))
        if crash:
            self.table.clear()
            self.table.update(before)


def split(events: list[Any], cuts: tuple[int, ...]) -> list[list[Any]]:
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in itertools.pairwise(bounds)]


def run_batches(router: Router, batches: list[list[Any]]) -> tuple[Outbox, dict[bytes, Any]]:
    worker, outbox = Worker(router), Outbox()

    async def main() -> None:
        for batch in batches:
            await A.process_batch(outbox, worker.table, router,  # type: ignore[arg-type]
                                  worker.early, batch, DECISIONS, clock=FixedClock())

    asyncio.run(main())
    return outbox, worker.table


def per_key(outbox: Outbox) -> dict[bytes | None, list[tuple[str, Any]]]:
    """Each appeal's outputs in order (the order Kafka keeps: one key, one partition)."""
    out: dict[bytes | None, list[tuple[str, Any]]] = defaultdict(list)
    for base, key, value in outbox.sent:
        out[key].append((base, value))
    return dict(out)


def merged(pend: list[Any], dec: list[Any], rng: random.Random) -> list[Any]:
    """One interleaving of the two topics that keeps each one's offset order."""
    slots = [0] * len(pend) + [1] * len(dec)
    rng.shuffle(slots)
    it = (iter(pend), iter(dec))
    return [next(it[s]) for s in slots]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def _where(outbox: Outbox) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per appeal: routings (body, level) and redirects (to) in order."""
    out: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
    for base, _key, value in outbox.sent:
        if base == t.ROUTED:
            out[value["appeal_id"]].append(("routed", value["authority_id"],
                                            value["routing_level"]))
        elif base == t.SLA_LIFECYCLE:
            out[value["appeal_id"]].append(("redirected", value["authority_id"],
                                            value["to_authority_id"]))
    return dict(out)


def test_the_log_s_outcome_is_what_the_reference_says(router: Router) -> None:
    pend, dec = log()
    outbox, table = run_batches(router, [[e] for e in [*pend[:3], *dec[:5], *pend[3:],
                                                      *dec[5:]]])
    assert outbox.dead == []
    assert _where(outbox) == {
        X: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
        Y: [("routed", "22-biysk-uobr", "municipality_category")],
        V: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
        W: [("routed", "22-minzdrav", "region_category")],
        Z: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
    }
    assert all(table[a.encode()].get("done") for a in (X, Y, Z, V, W))


def test_the_incident_log_s_outcome_is_what_the_reference_says(router: Router) -> None:
    pend, dec = incident_log()
    for events in ([*pend, *dec], [*dec, *pend]):  # either topic fetched first, one event a batch
        outbox, table = run_batches(router, [[e] for e in events])
        assert outbox.dead == []
        assert _where(outbox) == {
            J: [("routed", "22-minzdrav", "region_category")],
            N: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
            K: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
            X: [("routed", DESK, "triage_timeout"), ("redirected", DESK, "22-minzdrav")],
        }
        assert all(table[a.encode()].get("done") for a in (X, N, J, K))


@pytest.mark.parametrize("name", LOGS)
def test_every_split_of_the_log_into_batches_gives_the_same_outputs(
        router: Router, name: str) -> None:
    make, order = LOGS[name]
    events = order(*make())
    reference, table = run_batches(router, [events])
    assert reference.dead == [] and reference.sent
    for n in range(len(events)):
        for cuts in itertools.combinations(range(1, len(events)), n):
            outbox, got = run_batches(router, split(events, cuts))
            assert (outbox.sent, outbox.dead) == (reference.sent, reference.dead), cuts
            assert got == table, cuts


@pytest.mark.parametrize("name", LOGS)
def test_every_merge_of_the_two_topics_gives_each_appeal_the_same_outputs(
        router: Router, name: str) -> None:
    make, order = LOGS[name]
    pend, dec = make()
    reference, table = run_batches(router, [order(pend, dec)])
    rng = random.Random(20261)
    for _ in range(300):
        events = merged(pend, dec, rng)
        cuts = tuple(sorted(rng.sample(range(1, len(events)), rng.randrange(len(events)))))
        outbox, got = run_batches(router, split(events, cuts))
        assert per_key(outbox) == per_key(reference), [e.message.topic for e in events]
        assert outbox.dead == [] and got == table


def test_a_crash_replay_with_other_batches_routes_once_and_keeps_the_decision(
        router: Router) -> None:
    pend, dec = log()
    copy_x, tick, decide_x = pend[0], dec[0], dec[1]
    for first, replay in (([tick], [[tick, decide_x]]),
                          ([tick, decide_x], [[tick], [decide_x]])):
        worker, outbox = Worker(router), Outbox()
        worker.run([copy_x], outbox)
        worker.run(first, outbox, crash=True)
        again = Worker(router, table=worker.table)
        for batch in replay:
            again.run(batch, outbox)
        where = _where(outbox)[X]
        assert {w for w in where if w[0] == "routed"} == {("routed", DESK, "triage_timeout")}
        assert where[-1] == ("redirected", DESK, "22-minzdrav")
        assert sla_authority(outbox, X) == "22-minzdrav", "the human decision holds"


def test_a_crash_replay_keeps_an_incident_s_own_wait(router: Router) -> None:
    """The replay's worker is rebuilt from the table: the incident's stored hour, not the
    letter's day, still ends its wait, so the replayed tick routes it to the desk once."""
    pend, dec = incident_log()
    copy_x, copy_i, tick, decide_i = pend[0], pend[1], dec[1], dec[2]
    for first, replay in (([tick], [[tick, decide_i]]),
                          ([tick, decide_i], [[tick], [decide_i]])):
        worker, outbox = Worker(router), Outbox()
        worker.run([copy_x, copy_i], outbox)
        worker.run(first, outbox, crash=True)
        again = Worker(router, table=worker.table)
        for batch in replay:
            again.run(batch, outbox)
        where = _where(outbox)
        assert X not in where, "the letter waits its day"
        assert {w for w in where[N] if w[0] == "routed"} == {("routed", DESK, "triage_timeout")}
        assert where[N][-1] == ("redirected", DESK, "22-minzdrav")
        assert sla_authority(outbox, N) == "22-minzdrav", "the human decision holds"


def sla_authority(outbox: Outbox, appeal_id: str) -> str:
    """Where the SLA agent holds the appeal after reading what the triage agent published."""
    from tests.sla.recording_outbox import RecordingOutbox as SlaOutbox
    from tests.sla.test_sla_redirect_outcomes import _runtime
    from workers.sla import agent as sla_agent

    rt = _runtime()
    topics = {t.ROUTED: rt.routed_topic, t.SLA_LIFECYCLE: rt.lifecycle_topic}

    async def main() -> None:
        sla_outbox = SlaOutbox()
        for offset, (base, key, value) in enumerate(outbox.sent):
            if base not in topics:
                continue
            event = SimpleNamespace(message=SimpleNamespace(
                topic=topics[base], partition=0, offset=offset, key=key,
                value=orjson.dumps(value)))
            batch = sla_agent.Batch(now=rt.ctx.clock.now())
            await sla_agent._handle(rt, sla_outbox, event, batch)
            await sla_outbox.flush()
            rt.table.update(batch.changed)
        assert sla_outbox.of(t.DEADLETTER) == []

    asyncio.run(main())
    return str(rt.table[appeal_id.encode()]["auth"])
