"""An appeal nobody triages goes to its region's triage desk after ``APPEALS_TRIAGE_MAX_WAIT``.

Before, an appeal sent to triage and never decided got no routed record: the SLA agent tracked
none of its deadlines (59-FZ's run from registration), nothing alerted, the API did not know it,
and its pending copy (text and address) stayed in the ``triage-pending`` table for good. Now:

- after the wait, counted from its own message time in the partition's triage clock (message
  timestamps of the decisions topic there: decisions and the agent's clock ticks), it is routed
  to the desk (``triage_timeout``) with its own ``registered_at``; the copy is replaced by a
  marker without personal data, written after the routed record is acknowledged;
- a decision that comes after that is a ``redirected`` lifecycle event from the desk to the body
  the decided category routes to (once; a repeat or a second decision sends nothing);
- the gauges count the waiting appeals of the worker's own partitions and the oldest one's age.

No broker: ``process_batch`` with a recording outbox and a dict for the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from monitoring import metrics
from schemas.records import LifecycleEvent, RoutedAppeal
from schemas.validation import validate
from streams import topics as t
from streams.clock import SlaClock
from streams.settings import ConfigError, Settings
from tests.route.route_support import RecordingOutbox
from workers.route import agent as A
from workers.routing import RouteInput, Router, load_rules

SETTINGS = Settings.load({}).replace(topic_prefix="t.", partitions=4)
DECISIONS = t.topic_name(SETTINGS, t.TRIAGE_DECISIONS)
PENDING = t.topic_name(SETTINGS, t.TRIAGE_PENDING)
T0 = 1_790_000_000.0
MAX_WAIT = 86400.0
PART = A.EarlyDecisions(SETTINGS.partitions).partition_of
TEXT = "Иванов И.И., тел. +79130000000: яма на дороге в Бийске"
ADDRESS = "г. Бийск, ул. Ленина, 5, кв. 12"
REGISTERED = "2026-09-21T14:00:00+00:00"
DESK = "22-cur"


def ids_on(partition: int, n: int) -> list[str]:
    out = [a for a in (f"{i:024x}" for i in range(4000)) if PART(a.encode()) == partition]
    return out[:n]


X, Y, Z = ids_on(1, 3)
OTHER = ids_on(2, 1)[0]


class Outbox(RecordingOutbox):
    def __init__(self, fail_flush: bool = False) -> None:
        super().__init__(fail_flush=fail_flush)


def pending(appeal_id: str, **changes: Any) -> dict[str, Any]:
    value = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
             "registered_at": REGISTERED, "channel": "fz59", "subcategory": None,
             "municipality": None, "text": TEXT, "address": ADDRESS, "complaint_about": None,
             "importance": None, "subject": None, "duplicate_of": None, "urgent": False,
             "confidence": 0.31, "classifier_category": "roads", "classifier_version": "m1",
             "schema_version": 1}
    value.update(changes)
    return value


def decision(appeal_id: str, category: str = "healthcare", n: int = 1) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"{appeal_id}:t:{n}", "appeal_id": appeal_id,
            "event": "triaged", "at": "2026-09-23T08:00:00+00:00", "category": category}


_offsets = iter(range(10**6))


def event(topic: str, value: dict[str, Any], ts: float) -> Any:
    key = value["appeal_id"].encode()
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=PART(key), offset=next(_offsets), timestamp=ts, key=key,
        value=orjson.dumps(value)))


class Worker:
    def __init__(self, router: Router, owned: set[int] | None = None,
                 table: dict[bytes, Any] | None = None) -> None:
        self.router = router
        self.owned = set(range(SETTINGS.partitions)) if owned is None else owned
        self.table: dict[bytes, Any] = {} if table is None else table
        self.early = A.EarlyDecisions(SETTINGS.partitions, MAX_WAIT)
        self.early.rebuild(self.table.items(), self.owned)

    def run(self, *events: Any, outbox: Outbox | None = None) -> Outbox:
        outbox = outbox or Outbox()
        asyncio.run(A.process_batch(outbox, self.table, self.router,  # type: ignore[arg-type]
                                    self.early, list(events), DECISIONS, lambda: self.owned))
        return outbox


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def test_an_undecided_appeal_goes_to_the_triage_desk_after_the_wait(router: Router) -> None:
    worker = Worker(router)
    assert worker.run(event(PENDING, pending(X, text=TEXT + " в Бийске"), T0)).sent == []
    # Other appeals keep coming on the partition: the pending topic's time is no clock.
    assert worker.run(event(PENDING, pending(Y), T0 + 2 * MAX_WAIT)).on(t.ROUTED) == []
    # The decisions topic's is: one second short of the wait, nothing.
    assert worker.run(tick(1, T0 + MAX_WAIT - 1)).on(t.ROUTED) == []
    out = worker.run(tick(1, T0 + MAX_WAIT))
    [record] = out.on(t.ROUTED)
    validate(RoutedAppeal.schema, record)
    assert (record["appeal_id"], record["authority_id"], record["routing_level"]) == (
        X, DESK, "triage_timeout")
    assert record["registered_at"] == REGISTERED, "the deadlines run from registration"
    assert (record["category"], record["confidence"], record["classifier_version"]) == (
        "roads", 0.31, "m1"), "the classifier's guess, its low confidence saying so"
    assert record["municipality"] == "biysk"
    assert out.dead == []
    marker = worker.table[X.encode()]
    assert marker["done"] and marker["authority_id"] == DESK
    assert TEXT not in str(marker) and ADDRESS not in str(marker) and "text" not in marker
    assert datetime.fromisoformat(marker["timed_out"]) == datetime.fromisoformat(
        record["routed_at"])
    # Y still waits; a replay of X's copy does not bring it back.
    assert worker.run(event(PENDING, pending(X), T0)).sent == []
    assert worker.table[X.encode()] == marker


def test_the_wait_is_in_stream_time_of_the_appeal_s_partition(router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    # Another partition's time ends no wait.
    assert worker.run(event(PENDING, pending(OTHER), T0 + 10 * MAX_WAIT)).on(t.ROUTED) == []
    # The decisions topic of the appeal's own partition does: a decision is keyed like its
    # appeal, so every decision stamped within the wait has been read.
    out = worker.run(event(DECISIONS, decision(Y), T0 + MAX_WAIT))
    assert [r["appeal_id"] for r in out.on(t.ROUTED)] == [X]


def test_a_decision_within_the_wait_routes_as_before(router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    out = worker.run(event(DECISIONS, decision(X), T0 + MAX_WAIT - 1),
                     event(PENDING, pending(Y), T0 + 2 * MAX_WAIT))
    assert [(r["appeal_id"], r["authority_id"]) for r in out.on(t.ROUTED)] == [
        (X, "22-minzdrav")]
    assert worker.table[X.encode()] == {"done": True, "decided": "healthcare",
                                       "decided_urgent": None}


def test_a_failed_flush_leaves_the_appeal_waiting_and_the_replay_routes_it_once(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0), event(PENDING, pending(Y), T0 + 10))
    before = dict(worker.table)
    later = tick(1, T0 + MAX_WAIT)
    broken = Outbox(fail_flush=True)
    with pytest.raises(ConnectionError):
        worker.run(later, outbox=broken)
    assert len(broken.on(t.ROUTED)) == 1, "sent, never acknowledged"
    assert worker.table == before, "no marker for a routing the broker did not take"
    # A restarted worker (the index rebuilt from the table) replays the batch.
    again = Worker(router, table=worker.table)
    assert [r["appeal_id"] for r in again.run(later).on(t.ROUTED)] == [X]
    # Once acknowledged and marked, X is not routed again; Y is, later.
    assert [r["appeal_id"] for r in again.run(
        tick(1, T0 + 5 * MAX_WAIT)).on(t.ROUTED)] == [Y]


def test_the_wait_survives_a_restart_and_copies_stored_before_it_count_from_registration(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    # Stored by a version without the limit: no message time, partition or offset.
    worker.table[Y.encode()] = pending(Y, registered_at="2026-09-21T02:00:00+00:00")
    registered_y = datetime.fromisoformat("2026-09-21T02:00:00+00:00").timestamp()
    restarted = Worker(router, table=worker.table)
    assert restarted.early.copies_waiting({1}) == (2, registered_y)
    out = restarted.run(event(PENDING, pending(Z), T0 + 10),
                        tick(1, registered_y + MAX_WAIT))
    assert [r["appeal_id"] for r in out.on(t.ROUTED)] == [Y]
    # X's wait ends at the decision's clock, before the decision routes Z.
    out = restarted.run(event(PENDING, pending(OTHER), T0 + MAX_WAIT),
                        event(DECISIONS, decision(Z), T0 + MAX_WAIT))
    assert [(r["appeal_id"], r["routing_level"]) for r in out.on(t.ROUTED)] == [
        (X, "triage_timeout"), (Z, "region_category")]


def test_a_stored_copy_that_cannot_be_routed_is_dead_lettered_without_personal_data(
        router: Router) -> None:
    table: dict[bytes, Any] = {X.encode(): {"appeal_id": X, "text": TEXT, "address": ADDRESS,
                                            "since": T0, "p": 1, "offset": 7}}
    worker = Worker(router, table=table)
    out = worker.run(tick(1, T0 + MAX_WAIT))
    assert [(d["reason"], d["topic"], d["partition"], d["offset"]) for d in out.dead] == [
        ("unprocessable", PENDING, 1, 7)]
    assert TEXT not in out.dead[0]["detail"] and ADDRESS not in out.dead[0]["detail"]
    assert "APPEALS_TRIAGE_MAX_WAIT" in out.dead[0]["detail"]
    assert out.on(t.ROUTED) == [] and X.encode() not in worker.table


def _timed_out(router: Router, **changes: Any) -> Worker:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X, **changes), T0))
    worker.run(tick(1, T0 + MAX_WAIT))
    assert worker.table[X.encode()]["timed_out"]
    return worker


def test_a_late_decision_redirects_the_appeal_from_the_desk(router: Router) -> None:
    worker = _timed_out(router, municipality="Бийск")
    out = worker.run(event(DECISIONS, decision(X, "roads"), T0 + MAX_WAIT + 60))
    assert out.on(t.ROUTED) == [] and out.on(t.TRIAGE_FEEDBACK) == [] and out.dead == []
    [(base, key, redirect)] = out.sent
    assert (base, key) == (t.SLA_LIFECYCLE, X.encode())
    validate(LifecycleEvent.schema, redirect)
    assert (redirect["event"], redirect["authority_id"], redirect["to_authority_id"]) == (
        "redirected", DESK, "22-biysk-ugh"), "the municipality found at the timeout counts"
    assert redirect["at"] == decision(X)["at"]
    assert redirect["event_id"] == f"{X}:triage-redirect"
    assert TEXT not in redirect["reason"]
    # The first decision wins: a repeat or another decision sends nothing (another one is
    # dead-lettered: tests/route/test_triage_repeat_decisions.py).
    again = worker.run(event(DECISIONS, decision(X, "roads"), T0 + MAX_WAIT + 70),
                       event(DECISIONS, decision(X, "education", 2), T0 + MAX_WAIT + 80))
    assert again.sent == [] and [d["reason"] for d in again.dead] == ["already_triaged"]


def test_a_late_decision_for_the_desk_itself_sends_nothing(router: Router) -> None:
    worker = _timed_out(router, text="Прошу разобраться", address=None)
    # "other" with no municipality is the region's triage desk: already there.
    out = worker.run(event(DECISIONS, decision(X, "other"), T0 + MAX_WAIT + 60))
    assert out.sent == [] and out.dead == []
    assert worker.table[X.encode()]["decided"] == "other"


def test_a_late_decision_keeps_the_complaint_rule(router: Router) -> None:
    # A complaint nobody could identify stays at the desk, as routing keeps it there.
    worker = _timed_out(router, complaint_about="наша контора")
    assert worker.run(event(DECISIONS, decision(X, "healthcare"), T0 + MAX_WAIT + 60)).sent == []
    # A complaint about the body the category routes to goes to its parent.
    worker = _timed_out(router, complaint_about="22-minzdrav")
    [(_b, _k, redirect)] = worker.run(
        event(DECISIONS, decision(X, "healthcare"), T0 + MAX_WAIT + 60)).sent
    expected = router.route(RouteInput(appeal_id=X, region_code="22", category="healthcare",
                                       complaint_about="22-minzdrav")).authority_id
    assert redirect["to_authority_id"] == expected != "22-minzdrav"


def test_the_gauges_count_the_worker_s_own_partitions(router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0), event(PENDING, pending(Y), T0 + 10),
               event(PENDING, pending(OTHER), T0 + 20))
    assert worker.early.copies_waiting({0, 1, 2, 3}) == (3, T0)
    assert worker.early.copies_waiting({2}) == (1, T0 + 20), "partition 1 revoked"
    assert worker.early.copies_waiting(set()) == (0, None)
    worker.run(event(DECISIONS, decision(X), T0 + 30))
    assert worker.early.copies_waiting({0, 1, 2, 3}) == (2, T0 + 10)
    assert A._age(None, T0) == 0.0 and A._age(T0, T0 + 5) == 5.0


def test_the_gauges_of_the_installed_agent_follow_the_assignment(
        router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real ones exit the process on an error (os._exit) and time the batch.
    monkeypatch.setattr(A, "batches", lambda stream, settings, **_: stream(None, None))
    monkeypatch.setattr(A, "crash_on_error", lambda stage: contextlib.nullcontext())
    monkeypatch.setattr(A, "observe_stage_latency", lambda stage, events: None)
    owned = {1, 2}
    now = time.time()
    # What a changelog brought back: three appeals waiting, on partitions 1 and 2, one an
    # incident.
    table: dict[bytes, Any] = {
        X.encode(): {**pending(X), "since": now - 7200, "p": 1, "offset": 0},
        Z.encode(): {**pending(Z, regime="incident"), "since": now - 1800, "p": 1,
                     "offset": 1, "wait": 3600.0},
        OTHER.encode(): {**pending(OTHER), "since": now - 60, "p": 2, "offset": 0}}
    app = SimpleNamespace(
        Table=lambda *a, **k: table, agent=lambda source, name: lambda fun: fun,
        timer=lambda interval: lambda fun: fun,
        on_partitions_assigned=SimpleNamespace(connect=lambda fun: fun),
        consumer=SimpleNamespace(assignment=lambda: [
            SimpleNamespace(topic=topic, partition=p)
            for topic in (DECISIONS, PENDING) for p in owned]))
    ctx = SimpleNamespace(settings=SETTINGS, outbox=lambda stage: Outbox(), clock=SlaClock(),
                          topology=SimpleNamespace(channel_of=lambda *bases: None))
    agent = A.install_triage(app, ctx, router)  # type: ignore[arg-type]

    async def stream(_: Any, __: Any) -> AsyncIterator[list[Any]]:
        yield [event(PENDING, pending(Y), now)]  # the first batch rebuilds the index

    asyncio.run(agent(stream))

    def gauge(name: str, regime: str = "fz59") -> float:
        value = metrics.REGISTRY.get_sample_value(name, {"regime": regime})
        assert value is not None
        return value

    # By regime, each of the four exported (bounded): an incident's wait is told apart.
    assert gauge("appeals_triage_waiting") == 3
    assert 7190 <= gauge("appeals_triage_oldest_wait_seconds") <= 7300
    assert gauge("appeals_triage_waiting", "incident") == 1
    assert 1790 <= gauge("appeals_triage_oldest_wait_seconds", "incident") <= 1900
    assert gauge("appeals_triage_waiting", "pos") == gauge("appeals_triage_waiting",
                                                           "hotline") == 0
    assert gauge("appeals_triage_oldest_wait_seconds", "hotline") == 0
    owned.discard(1)  # revoked, and no batch since
    assert gauge("appeals_triage_waiting") == 1
    assert gauge("appeals_triage_oldest_wait_seconds") < 120
    assert gauge("appeals_triage_waiting", "incident") == 0
    assert gauge("appeals_triage_oldest_wait_seconds", "incident") == 0
    owned.clear()
    assert gauge("appeals_triage_waiting") == 0
    assert gauge("appeals_triage_oldest_wait_seconds") == 0


def test_the_setting_has_no_off_and_at_most_seven_days() -> None:
    assert Settings.load({}).triage_max_wait == 86400
    assert Settings.load({"APPEALS_TRIAGE_MAX_WAIT": "3600"}).triage_max_wait == 3600
    for bad in ("0", "59", "604801", "-1"):
        with pytest.raises(ConfigError, match="APPEALS_TRIAGE_MAX_WAIT must be"):
            Settings.load({"APPEALS_TRIAGE_MAX_WAIT": bad})


def test_the_triage_desk_route(router: Router) -> None:
    desk = router.triage_desk(RouteInput(appeal_id=X, region_code="22", category="roads",
                                         text="Яма на дороге в Бийске"))
    assert (desk.authority_id, desk.level, desk.municipality) == (DESK, "triage_timeout", "biysk")
    unidentified = router.triage_desk(RouteInput(appeal_id=X, region_code="22", category="roads",
                                                 complaint_about="наша контора"))
    assert (unidentified.authority_id, unidentified.level) == (DESK, "triage_timeout")
    about_desk = router.triage_desk(RouteInput(appeal_id=X, region_code="22", category="roads",
                                               complaint_about=DESK))
    assert about_desk.authority_id != DESK and about_desk.level == "complaint_parent"
    nowhere = router.triage_desk(RouteInput(appeal_id=X, region_code="xx", category="roads"))
    assert (nowhere.authority_id, nowhere.level) == (DESK, "unroutable")


# Clock ticks. Message time stands still on a partition where nothing more arrives, and the
# appeals waiting there were never routed to the desk (nor tracked by the SLA agent). A timer
# writes a tick record to such a partition of the decisions topic; the agent reads its
# timestamp like any record's and routes what is due.

TICK_KEY = b"\x00triage-tick"  # a wire format: ticks already in the log must stay ticks


def tick(partition: int, ts: float, value: bytes = b'{"tick":"triage clock"}') -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic=DECISIONS, partition=partition, offset=next(_offsets), timestamp=ts,
        key=TICK_KEY, value=value))


def test_a_tick_moves_the_time_on_and_the_waiting_appeal_goes_to_the_desk(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    before = dict(worker.table)
    # Nothing else arrives on the partition: only ticks. One short of the wait routes nothing.
    out = worker.run(tick(1, T0 + MAX_WAIT - 1))
    assert out.sent == [] and out.dead == [], "a tick is neither a decision nor a bad record"
    assert worker.table == before, "a tick stores nothing"
    out = worker.run(tick(1, T0 + MAX_WAIT))
    assert out.dead == []
    [record] = out.on(t.ROUTED)
    assert (record["appeal_id"], record["authority_id"], record["routing_level"]) == (
        X, DESK, "triage_timeout")
    assert worker.table[X.encode()]["timed_out"]
    assert worker.early.copies_waiting({1}) == (0, None)
    assert A.TICK_VALUE == b'{"tick":"triage clock"}'  # a wire format too


@pytest.mark.parametrize("value", [
    b"",
    b'{"tick": "triage clock"}',
    orjson.dumps({**decision("\x00triage-tick"), "category": "roads"}),
])
def test_a_record_under_the_tick_key_that_is_not_a_tick_is_dead_lettered(
        router: Router, value: bytes) -> None:
    """A ``triaged`` event whose appeal id was the tick key was forwarded here keyed so and
    dropped as a tick without a trace. Only the tick's exact value is a tick now."""
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0))
    before = dict(worker.table)
    out = worker.run(tick(1, T0 + 10, value))
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("reserved_key", DECISIONS)]
    assert "tick" in out.dead[0]["detail"]
    assert out.sent == [] and worker.table == before


def test_the_tick_key_on_the_pending_topic_is_not_a_tick(router: Router) -> None:
    worker = Worker(router)
    msg = tick(1, T0)
    msg.message.topic = PENDING
    out = worker.run(msg)
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("reserved_key", PENDING)]


def test_a_tick_is_not_pending_time_for_early_decisions(router: Router) -> None:
    # A decision that overtook its appeal waits an hour of the pending topic's time: a tick
    # says nothing about pending copies, so it ends that wait only at the seven days' backstop.
    worker = Worker(router)
    worker.run(event(DECISIONS, decision(X), T0))
    assert worker.run(tick(1, T0 + A.EARLY_DECISION_WAIT)).dead == []
    out = worker.run(tick(1, T0 + A.EARLY_DECISION_MAX_WAIT))
    assert [(d["reason"], d["topic"]) for d in out.dead] == [("not_triaged", DECISIONS)]


def test_ticks_go_to_owned_partitions_where_something_waits_and_time_stands_still(
        router: Router) -> None:
    worker = Worker(router)
    early = worker.early
    owned = {0, 1, 2, 3}
    now = time.monotonic  # the rounds of the timer, as it reads them
    assert early.due_ticks(owned, now()) == [], "nothing waits: no ticks (bench, demo)"
    worker.run(event(PENDING, pending(X), T0), event(DECISIONS, decision(OTHER), T0))
    # A copy waits on 1, an early decision on 2; the decision moved 2 on since the last
    # round, the copy moved no triage clock.
    assert early.due_ticks(owned, now()) == [1]
    # Neither has moved since the previous round: a tick each.
    assert early.due_ticks(owned, now()) == [1, 2]
    assert early.due_ticks({1}, now()) == [1], "one a round, read or not"
    worker.run(tick(1, T0 + 10))
    assert early.due_ticks({1}, now()) == [1], "a tick read is not traffic"
    worker.run(event(PENDING, pending(Y), T0 + 20))
    assert early.due_ticks({1}, now()) == [1], "a pending copy moves no triage clock"
    worker.run(event(DECISIONS, decision(Y), T0 + 30))  # a decision moves partition 1 on
    assert early.due_ticks({0, 1, 3}, now()) == [], "moved since the previous round, or idle"
    # A restarted worker has seen no record of any partition yet: due in its first round.
    restarted = Worker(router, table=worker.table, owned={1, 3})
    assert restarted.early.due_ticks({1, 3}, now()) == [1]


def _installed(router: Router, table: dict[bytes, Any], owned: set[int],
               monkeypatch: pytest.MonkeyPatch, *, ready: bool = True,
               **changes: Any) -> tuple[Any, Any, Outbox]:
    """install_triage on a stand-in app: (its agent, its timer, the outbox they send to);
    ``changes``: settings other than the tests' own."""
    monkeypatch.setattr(A, "batches", lambda stream, settings, **_: stream(None, None))
    monkeypatch.setattr(A, "crash_on_error", lambda stage: contextlib.nullcontext())
    monkeypatch.setattr(A, "observe_stage_latency", lambda stage, events: None)
    timers: list[tuple[float, Any]] = []

    def timer(interval: float) -> Any:
        def add(fun: Any) -> Any:
            timers.append((interval, fun))
            return fun
        return add

    outbox = Outbox()
    app = SimpleNamespace(
        Table=lambda *a, **k: table, agent=lambda source, name: lambda fun: fun, timer=timer,
        on_partitions_assigned=SimpleNamespace(connect=lambda fun: fun),
        consumer=SimpleNamespace(assignment=lambda: [
            SimpleNamespace(topic=topic, partition=p)
            for topic in (DECISIONS, PENDING) for p in owned]),
        rebalancing=False, in_recovery=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(
            completed=SimpleNamespace(is_set=lambda: ready))))
    settings = SETTINGS.replace(triage_tick_interval=7.0, **changes)
    ctx = SimpleNamespace(settings=settings, outbox=lambda stage: outbox, clock=SlaClock(),
                          topology=SimpleNamespace(channel_of=lambda *bases: None))
    agent = A.install_triage(app, ctx, router)  # type: ignore[arg-type]
    [(interval, clock)] = timers
    assert interval == 7.0
    return agent, clock, outbox


def test_the_installed_timer_ticks_quiet_partitions_after_a_restart(
        router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a changelog brought back: appeals waiting on 1 and 2; no record arrives anywhere,
    # so no batch rebuilds the index: the timer does.
    table: dict[bytes, Any] = {
        X.encode(): {**pending(X), "since": T0, "p": 1, "offset": 0},
        OTHER.encode(): {**pending(OTHER), "since": T0, "p": 2, "offset": 0}}
    agent, clock, outbox = _installed(router, table, {0, 1}, monkeypatch)
    asyncio.run(clock())
    assert [(b, k) for b, k, _v in outbox.sent] == [(t.TRIAGE_DECISIONS, TICK_KEY)]
    assert outbox.partitions == [1], "to the partition itself, only one this worker owns"

    async def stream(_: Any, __: Any) -> AsyncIterator[list[Any]]:
        yield [tick(1, T0 + MAX_WAIT)]  # the tick, as the agent reads it

    asyncio.run(agent(stream))
    routed = outbox.on(t.ROUTED)
    assert [(r["appeal_id"], r["routing_level"]) for r in routed] == [(X, "triage_timeout")]
    assert outbox.dead == []
    outbox.sent.clear()
    asyncio.run(clock())
    assert outbox.sent == [], "nothing waits on 1 any more; 2 is not this worker's"


def test_the_timer_waits_for_the_tables(router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    table: dict[bytes, Any] = {X.encode(): {**pending(X), "since": T0, "p": 1, "offset": 0}}
    _agent, clock, outbox = _installed(router, table, {1}, monkeypatch, ready=False)
    asyncio.run(clock())
    assert outbox.sent == [], "an index rebuilt from a table still recovering could be wrong"


def test_the_tick_interval_setting() -> None:
    assert Settings.load({}).triage_tick_interval == 60
    assert Settings.load({"APPEALS_TRIAGE_TICK_INTERVAL": "5"}).triage_tick_interval == 5
    assert Settings.load({"APPEALS_TRIAGE_MAX_WAIT": "60",
                          "APPEALS_TRIAGE_TICK_INTERVAL": "60"}).triage_tick_interval == 60
    for bad in ({"APPEALS_TRIAGE_TICK_INTERVAL": "0"}, {"APPEALS_TRIAGE_TICK_INTERVAL": "-1"},
                {"APPEALS_TRIAGE_TICK_INTERVAL": "0.5"},
                {"APPEALS_TRIAGE_MAX_WAIT": "120", "APPEALS_TRIAGE_TICK_INTERVAL": "121"}):
        with pytest.raises(ConfigError, match="APPEALS_TRIAGE_TICK_INTERVAL must be"):
            Settings.load(bad)
