"""Bad input at the SLA stage of a running worker (real broker, real Redis, worker subprocess).

The standard: bad input never crashes a worker and is never dropped silently; it goes to the
dead-letter topic with its reason, is counted in a metric, and the rest of the stream goes on.
Each case feeds one kind of bad input next to a good appeal, then checks the dead letters, the
bad appeal's read model, the metric, and that the good appeal's next event is still applied by
the same, living worker. The inputs are those of the review that found each fault; on the old
code the far-off dates ended the worker (exit 70, again on every restart), and the rest were
dropped or applied without a trace.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from streams import topics as t
from streams.settings import Settings
from streams.testing import isolated_settings, produce, read_topic, running_worker, wait_for
from workers.aggregates.partials import counters_key

pytestmark = pytest.mark.integration

Message = tuple[str, bytes | None, bytes]


def _now(days: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(timespec="seconds")


def _routed(appeal_id: str | None, key: str | None = None, **extra: Any) -> Message:
    doc = {"schema_version": 1, "appeal_id": appeal_id, "regime": "fz59", "region": "22",
           "registered_at": _now(-1), "category": "roads", "urgent": False, "confidence": 0.9,
           "authority_id": "22-mintrans", "routing_level": "region_category",
           "rule_version": "x", "routed_at": _now(), "channel": "web", **extra}
    return (t.ROUTED, (key or appeal_id or "").encode(), orjson.dumps(doc))


def _event(appeal_id: str, event: str, n: int, at: str | None = None, **extra: Any) -> Message:
    doc = {"schema_version": 1, "event_id": f"{appeal_id}:{n}", "appeal_id": appeal_id,
           "event": event, "at": at or _now(), **extra}
    return (t.LIFECYCLE, appeal_id.encode(), orjson.dumps(doc))


def _id() -> str:
    return uuid.uuid4().hex


@dataclass
class Seen:
    settings: Settings
    dead: list[dict[str, Any]]  # dead letters: reason, stage, and the original value
    alive: bool
    metrics: str
    client: redis.Redis

    def status(self, appeal_id: str) -> str | None:
        value: Any = self.client.hget(f"{self.settings.app_id}:appeal:{appeal_id}", "status")
        return value.decode() if value is not None else None

    def reasons(self) -> list[tuple[str, str]]:
        return sorted((d["stage"], d["reason"]) for d in self.dead)


def _run(broker: Any, redis_server: Any, log: Path, *, routed: list[str],
         before: list[Message], bad: list[Message], dead: int, after: Sequence[Message] = (),
         then: Callable[[Seen], None] | None = None) -> Seen:
    """Route ``routed`` and a good appeal, send ``before`` (and wait for the read model of the
    routed ones), then ``bad``; wait for ``dead`` dead letters, send ``after``, then answer the
    good appeal: its answer must be applied by the same worker."""
    # Events are stamped up to days after now (a held answer, a late one): the agent is told to
    # accept them (tests/sla/test_sla_future_stamps.py checks the refusal of future stamps).
    settings = isolated_settings(broker.url, redis_server.url,
                                 sla_future_tolerance=30 * 86400.0)
    t.ensure_topics(settings)
    good = _id()
    client = redis.Redis.from_url(settings.redis)
    prefix = f"{settings.app_id}:appeal:"
    with running_worker(settings, log) as worker:
        produce(settings, [_routed(a) for a in [*routed, good]] + before)
        wait_for(lambda: all(client.exists(prefix + a) for a in [*routed, good]), 60,
                 what="the routed appeals in the read model")
        produce(settings, bad)
        letters = read_topic(settings, t.DEADLETTER, until=dead, timeout=45, idle=2)
        produce(settings, [*after, _event(good, "answered", 1)])
        answered = wait_for(lambda: client.hget(prefix + good, "status") == b"answered"
                            or not worker.alive, 45, what="the good appeal answered")
        seen = Seen(settings, [_letter(r.value) for r in letters], worker.alive,
                    worker.metrics_text() if worker.alive else "", client)
        assert answered and seen.alive, "the worker goes on: " + worker.log_text()[-2000:]
        assert seen.status(good) == "answered"
        if then is not None:
            then(seen)
    return seen


def _letter(raw: bytes) -> dict[str, Any]:
    import base64

    doc: dict[str, Any] = orjson.loads(raw)
    doc["value"] = orjson.loads(base64.b64decode(doc.pop("value_b64")) or b"null")
    return doc


def _metric(seen: Seen, series: str) -> float:
    """The value of one series of the worker's metrics (0 if it was never touched)."""
    return sum(float(row[len(series) + 1:]) for row in seen.metrics.splitlines()
               if row.startswith(series + " "))


def _counted(seen: Seen, stage: str, reason: str) -> float:
    return _metric(seen, f'appeals_deadletter_total{{reason="{reason}",stage="{stage}"}}')


def test_dates_of_year_9999_are_dead_lettered(broker, redis_server, tmp_path: Path) -> None:
    """A redirect or a reopen dated 9999 overflowed the deadline arithmetic; so did a routed
    appeal registered then. Each ended the worker, and every restart after it."""
    redirected, reopened, registered = _id(), _id(), _id()
    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[redirected, reopened],
                before=[_event(reopened, "closed", 1)],
                bad=[_event(redirected, "redirected", 1, at="9999-12-20T00:00:00+00:00",
                            to_authority_id="22-minstroy"),
                     _event(reopened, "reopened", 2, at="9999-12-20T00:00:00+00:00"),
                     _routed(registered, registered_at="9999-12-20T00:00:00+00:00")],
                dead=3)
    assert seen.reasons() == [("lifecycle", "bad_timestamp"), ("lifecycle", "bad_timestamp"),
                              ("sla", "bad_timestamp")]
    assert _counted(seen, "lifecycle", "bad_timestamp") == 2
    assert _counted(seen, "sla", "bad_timestamp") == 1
    assert (seen.status(redirected), seen.status(reopened)) == ("running", "closed")
    assert seen.status(registered) is None


def test_a_bad_event_held_for_its_routing_does_not_take_the_routing_down(
        broker, redis_server, tmp_path: Path) -> None:
    """It waited unchecked and failed inside the routing's transition: the routed record was
    dead-lettered in its place and the appeal never got SLA state."""
    held = _id()
    bad = _event(held, "answered", 1, at="9999-12-31T23:00:00-05:00")

    def routed(seen: Seen) -> None:
        # While the worker runs (``then``): waited for after _run, the worker had stopped, and
        # a routing on another partition than the good appeal's answer could be left unread.
        wait_for(lambda: seen.status(held) == "running", 30, what="the held appeal's routing")

    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[],
                before=[], bad=[bad], dead=1, after=[_routed(held)], then=routed)
    [letter] = seen.dead
    assert (letter["stage"], letter["reason"], letter["value"]) == (
        "lifecycle", "bad_timestamp", orjson.loads(bad[2]))
    assert seen.status(held) == "running"


def test_a_failed_event_leaves_no_half_applied_state_behind(
        broker, redis_server, tmp_path: Path) -> None:
    """``accepted`` and an ``answered`` of year 10000 (UTC) in one batch: the answer was
    dead-lettered after it had marked the batch's state answered; that state was stored, its
    read model could not be written, and the worker ended on every start."""
    appeal = _id()
    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[appeal], before=[],
                bad=[_event(appeal, "accepted", 1),
                     _event(appeal, "answered", 2, at="9999-12-31T23:00:00-05:00")],
                dead=1)
    assert seen.reasons() == [("lifecycle", "bad_timestamp")]
    assert seen.status(appeal) == "running"


def test_events_beyond_the_held_limit_are_dead_lettered(
        broker, redis_server, tmp_path: Path) -> None:
    """An answer and 32 more events before the routing: the held list kept only the last 32,
    so the answer vanished without a dead letter and the appeal stayed open."""
    appeal = _id()
    events = [_event(appeal, "answered", 0)]
    events += [_event(appeal, "accepted", i) for i in range(1, 33)]
    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[], before=[],
                bad=events, dead=1, after=[_routed(appeal)])
    [letter] = seen.dead
    assert (letter["stage"], letter["reason"], letter["value"]) == (
        "sla", "pending_overflow", orjson.loads(events[-1][2]))
    assert _counted(seen, "sla", "pending_overflow") == 1
    wait_for(lambda: seen.status(appeal) == "answered", 30, what="the held answer applied")


def test_a_routed_record_without_an_appeal_id_is_dead_lettered(
        broker, redis_server, tmp_path: Path) -> None:
    """It was stored with id None; Redis refused it on every write, which was taken for an
    outage: the rebuild failed every 2 s and no partition's figures were published."""
    def figures(seen: Seen) -> None:
        prefix = f"{seen.settings.app_id}:"
        wait_for(lambda: seen.client.scard(f"{prefix}agg:partitions")
                 == seen.settings.partitions, 30, what="the figures of every partition")
        assert any(seen.client.exists(counters_key(prefix, p))
                   for p in range(seen.settings.partitions))
        assert _metric(seen, 'appeals_redis_errors_total{operation="sla_maintain"}') == 0
        assert _metric(seen, 'appeals_redis_errors_total{operation="sla_index"}') == 0

    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[], before=[],
                bad=[_routed(None, key="nullid")], dead=1, then=figures)
    assert seen.reasons() == [("sla", "wrong_type")]


def test_an_answer_dated_year_1_is_dead_lettered(broker, redis_server, tmp_path: Path) -> None:
    """It was applied, and counted the appeal as answered on time."""
    appeal = _id()
    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[appeal], before=[],
                bad=[_event(appeal, "answered", 1, at="0001-01-01T00:00:00+00:00")], dead=1)
    assert seen.reasons() == [("lifecycle", "bad_timestamp")]
    assert "0001-01-01T00:00:00+00:00" in (seen.dead[0]["detail"] or "")
    assert seen.status(appeal) == "running"


def test_a_tick_of_an_unknown_kind_is_dead_lettered(
        broker, redis_server, tmp_path: Path) -> None:
    """It was built without validation and skipped as "ignored": no dead letter, no count."""
    appeal = _id()
    tick = {"schema_version": 1, "appeal_id": appeal, "kind": "boom", "due_ts": 1e308,
            "cycle": 0}
    seen = _run(broker, redis_server, tmp_path / "worker.log", routed=[appeal], before=[],
                bad=[(t.SLA_TICKS, appeal.encode(), orjson.dumps(tick))], dead=1)
    assert seen.reasons() == [("sla", "invalid_value")]
    assert _counted(seen, "sla", "invalid_value") == 1
