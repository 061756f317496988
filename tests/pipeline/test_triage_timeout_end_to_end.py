"""An appeal nobody triages, through a real worker on the real broker and Redis.

The appeal is registered by intake and sent to triage (every appeal is, with
``APPEALS_TRIAGE_CONFIDENCE=1``). Nobody decides it. Once the triage agent's clock on its
partition (the decisions topic's message time) is ``APPEALS_TRIAGE_MAX_WAIT`` (here the
minimum, 60 s) past its pending copy, it is routed to the region's triage desk
(``triage_timeout``) with its own ``registered_at``, and the SLA agent tracks it there: the
59-FZ answer deadline counted from registration. The pending copy's text leaves the triage
table (its changelog's last value for the appeal is a marker).
A human decision that comes after that redirects the appeal from the desk to the body the
category routes to, and the SLA agent restarts the answer clock there.

Before, nothing happened to such an appeal: no routed record, no SLA state, no alert.

The wait is counted in the decisions topic's message time (pending appeals arriving do not
move it, so that a decision's effect does not depend on how a fetch interleaves the two
topics), which stood still on a partition where no decision arrived: such an appeal waited for
good. Now the triage agent writes clock ticks to that partition of ``appeals.triage.decisions``
(``APPEALS_TRIAGE_TICK_INTERVAL``), and they end the wait as a decision would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from streams import topics as t
from streams.settings import Settings
from streams.testing import (
    isolated_settings,
    partition_of,
    produce,
    read_topic,
    running_worker,
    wait_for,
)
from workers.deadlines.compute import answer_due
from workers.geo.regions import region_timezone
from workers.intake.core import appeal_id_for
from workers.route.agent import TICK_KEY, TICK_VALUE
from workers.routing import RouteInput, Router, load_rules
from workers.sla.deadline_service import load_book

pytestmark = pytest.mark.integration

MAX_WAIT = 60.0
DESK = "22-cur"
TEXT = "На дороге по улице Ленина в Барнауле яма, машины бьют колёса"


def _intake() -> bytes:
    return orjson.dumps({
        "schema_version": 1, "channel": "web", "external_id": "tt-1",
        "submitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "region": "22",
        "text": TEXT, "municipality": "Барнаул",
    })


def _filler(appeal_id: str) -> bytes:
    """Another appeal's pending copy, on the same partition: it moves the stream time on."""
    return orjson.dumps({
        "appeal_id": appeal_id, "regime": "pos", "region": "22",
        "registered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "channel": "web", "subcategory": None, "municipality": "Барнаул", "text": "Яма",
        "address": None, "complaint_about": None, "urgent": False, "confidence": 0.3,
        "classifier_version": "m", "schema_version": 1})


def _expected_due(router: Router, authority: str, start: dt.datetime) -> dt.datetime:
    book = load_book(router.rules.authorities.values())
    policy = book.resolve("fz59", region="22", authority=authority, category="roads",
                          subcategory=None)
    zone = policy.timezone or router.authority(authority).timezone or region_timezone("22")
    return answer_due("fz59", start, zone, policy).replace(microsecond=0)


def _changelog(settings: Settings, key: bytes) -> list[Any]:
    """The values the triage table's changelog holds for ``key``, oldest first."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            f"{settings.app_id}-triage-pending-changelog",
            bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None)
        await consumer.start()
        out: list[Any] = []
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                if not batches and out:
                    break
                out.extend(r.value for recs in batches.values() for r in recs if r.key == key)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())


def test_an_undecided_appeal_is_routed_to_the_desk_and_tracked(
        broker, redis_server, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=1.0,
                                 triage_max_wait=MAX_WAIT)
    t.ensure_topics(settings)
    appeal_id = appeal_id_for("web", "tt-1")
    n = settings.partitions
    p = partition_of(appeal_id, n)
    filler = next(a for a in (f"{i:024x}" for i in range(500)) if partition_of(a, n) == p)
    router = Router(load_rules())
    client = redis.Redis.from_url(settings.redis)
    state_key = f"{settings.app_id}:appeal:{appeal_id}"

    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, [(t.intake_topic("web"), None, _intake())])
        [copy] = read_topic(settings, t.TRIAGE_PENDING, until=1)
        assert copy.key == appeal_id.encode() and copy.partition == p
        registered = orjson.loads(read_topic(settings, t.REGISTERED, until=1)[0].value)
        assert read_topic(settings, t.ROUTED, timeout=3, idle=1) == [], "waiting for a human"
        assert client.hget(state_key, "authority_id") is None, "no SLA state while it waits"

        # Pending appeals arriving later do not end the wait: it runs on the decisions topic's
        # message time (decisions and the agent's clock ticks).
        produce(settings, [(t.TRIAGE_PENDING, filler.encode(), _filler(filler))],
                timestamp_ms=copy.timestamp + int((MAX_WAIT + 1) * 1000))
        assert read_topic(settings, t.ROUTED, timeout=3, idle=1) == []
        # Once that clock is past the wait, it ends. A tick stamped past the wait rather than
        # waited for (a minute of CI).
        produce(settings, [(t.TRIAGE_DECISIONS, TICK_KEY, TICK_VALUE)], partition=p,
                timestamp_ms=copy.timestamp + int((MAX_WAIT + 1) * 1000))
        [routed] = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=1)]
        assert (routed["appeal_id"], routed["authority_id"], routed["routing_level"]) == (
            appeal_id, DESK, "triage_timeout")
        assert routed["registered_at"] == registered["registered_at"]

        wait_for(lambda: client.hget(state_key, "authority_id") == DESK.encode(), timeout=60,
                 what="SLA state at the triage desk")
        registered_at = dt.datetime.fromisoformat(registered["registered_at"])
        due = dt.datetime.fromisoformat(client.hget(state_key, "due_at").decode())  # type: ignore[union-attr]
        assert due == _expected_due(router, DESK, registered_at), "from registration"

        values = _changelog(settings, appeal_id.encode())
        assert values, "the table wrote the appeal"
        assert TEXT.encode() in values[0], "it waited with its text"
        assert TEXT.encode() not in values[-1] and b"timed_out" in values[-1]

        # A human decides after all: the desk hands the appeal on, the clock restarts there.
        decided_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        decision = {"schema_version": 1, "event_id": f"{appeal_id}:triage",
                    "appeal_id": appeal_id, "event": "triaged",
                    "at": decided_at.isoformat(), "category": "roads"}
        produce(settings, [(t.LIFECYCLE, appeal_id.encode(), orjson.dumps(decision))])
        target = router.route(RouteInput(appeal_id=appeal_id, region_code="22",
                                         category="roads", municipality="Барнаул",
                                         text=TEXT)).authority_id
        assert target != DESK
        wait_for(lambda: client.hget(state_key, "authority_id") == target.encode(),
                 timeout=60, what="the late decision's redirect applied")
        due = dt.datetime.fromisoformat(client.hget(state_key, "due_at").decode())  # type: ignore[union-attr]
        assert due == _expected_due(router, target, decided_at)
        assert read_topic(settings, t.DEADLETTER, timeout=3, idle=1) == []
        assert "Traceback" not in worker.log_text()
        assert TEXT not in worker.log_text()


def _copy(appeal_id: str) -> bytes:
    """An appeal's pending copy as intake writes it when the classifier is unsure."""
    return orjson.dumps({
        "appeal_id": appeal_id, "regime": "fz59", "region": "22",
        "registered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "channel": "web", "subcategory": None, "municipality": "Барнаул", "text": TEXT,
        "address": None, "complaint_about": None, "importance": None, "subject": None,
        "duplicate_of": None, "urgent": False, "confidence": 0.3,
        "classifier_category": "roads", "classifier_version": "m", "schema_version": 1})


def test_an_appeal_on_a_quiet_partition_goes_to_the_desk_on_the_agent_s_ticks(
        broker, redis_server, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, triage_max_wait=MAX_WAIT,
                                 triage_tick_interval=1.0)
    t.ensure_topics(settings)
    appeal_id = "ab" * 12
    p = partition_of(appeal_id, settings.partitions)
    client = redis.Redis.from_url(settings.redis)
    state_key = f"{settings.app_id}:appeal:{appeal_id}"

    with running_worker(settings, tmp_path / "worker.log") as worker:
        # The appeal went to triage a little under the wait ago (stamped so rather than waited
        # for: a minute of CI); nobody decides it, and nothing else ever comes to its partition.
        produce(settings, [(t.TRIAGE_PENDING, appeal_id.encode(), _copy(appeal_id))],
                timestamp_ms=int((time.time() - MAX_WAIT + 5) * 1000))
        # Before, its partition's time stood still at the copy's: this found nothing.
        routed = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=1,
                                                            timeout=60, idle=1)]
        assert [(r["appeal_id"], r["authority_id"], r["routing_level"]) for r in routed] == [
            (appeal_id, DESK, "triage_timeout")]
        wait_for(lambda: client.hget(state_key, "authority_id") == DESK.encode(), timeout=60,
                 what="SLA state at the triage desk")

        ticks = read_topic(settings, t.TRIAGE_DECISIONS, until=1, timeout=10, idle=1)
        assert ticks, "the clock was written into the log"
        assert {(r.key, r.partition) for r in ticks} == {(b"\x00triage-tick", p)}, (
            "to the partition where the appeal waited, nowhere else")
        assert read_topic(settings, t.DEADLETTER, timeout=3, idle=1) == []
        # Nothing waits any more: the ticks stop (two rounds of the timer, then a look).
        count = len(ticks)
        time.sleep(3)
        assert len(read_topic(settings, t.TRIAGE_DECISIONS, timeout=5, idle=1)) <= count + 1
        assert "Traceback" not in worker.log_text()
        assert TEXT not in worker.log_text()
