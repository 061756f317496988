"""A lifecycle event stamped ahead of the SLA clock is dead-lettered (``future_timestamp``).

The engine judges an answer by its ``at`` against the deadline. An authority's system that
writes local time with a UTC offset stamps its events hours ahead in Altai (UTC+7): an
incident registered at 09:00 local, due 17:00, answered at 12:00 local and stamped
``12:00+00:00`` (19:00 local) was recorded as answered late, its breach alert went out five
hours before the deadline, and the warning never followed (review of the demo's warnings).
Now such an event is refused where the SLA agent first sees it (``agent._check_not_ahead``),
applied or held; one within ``APPEALS_SLA_FUTURE_TOLERANCE`` (clock skew) still applies.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams import topics as t
from streams.clock import SlaClock
from streams.settings import ConfigError, Settings
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import (
    EXTERNAL,
    INTERNAL,
    ROUTED,
    TICKS,
    dead_count,
    fixed_clock,
    message,
    routed_record,
    run_one_batch,
    stand_in_runtime,
)
from workers.sla import agent as sla_agent
from workers.sla import timers
from workers.sla.deadline_service import DeadlineService

BARNAUL = ZoneInfo("Asia/Barnaul")
DAY = dt.date(2027, 2, 10)  # a Wednesday, a working day
APPEAL = "a" * 24
KEY = APPEAL.encode()


def _local(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), BARNAUL)


def _runtime(now: dt.datetime | None = None, clock: Any = None, **settings: Any) -> Any:
    """A stand-in SLA runtime with the packaged deadline rules and an SLA clock at ``now``."""
    if clock is None:
        assert now is not None
        clock = fixed_clock(now.timestamp())
    return stand_in_runtime(clock=clock, rules=DeadlineService().rules(),
                            settings=Settings(**settings))


def _event(topic: str, value: dict[str, Any], offset: int = 0) -> Any:
    return message(topic, value, offset, key=KEY)


def _routed(registered: dt.datetime) -> dict[str, Any]:
    return routed_record(registered, appeal_id=APPEAL, regime="incident",
                         category="housing_utilities", authority_id="22-minzhkh",
                         routed_at=registered.isoformat())


def _answer(at: str, n: int = 1) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"{APPEAL}:{n}", "appeal_id": APPEAL,
            "event": "answered", "at": at}


def _run(rt: Any, *events: Any) -> tuple[RecordingOutbox, sla_agent.Batch]:
    return run_one_batch(rt, *events)


def _dead_count() -> float:
    return dead_count(sla_agent.FUTURE_TIMESTAMP)


def test_an_answer_stamped_local_time_as_utc_is_refused_and_the_warning_still_comes() -> None:
    rt = _runtime(now=_local(12))  # the SLA clock: 12:00 in Barnaul
    _run(rt, _event(ROUTED, _routed(_local(9))))
    before = rt.table[KEY]
    assert dt.datetime.fromtimestamp(before["warn"], BARNAUL).time() == dt.time(15)
    assert dt.datetime.fromtimestamp(before["due"], BARNAUL).time() == dt.time(17)
    counted = _dead_count()

    answer = _answer("2027-02-10T12:00:00+00:00")  # 19:00 in Barnaul, seven hours ahead
    outbox, batch = _run(rt, _event(EXTERNAL, answer, 1))

    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("future_timestamp", answer)
    assert detail is not None and "7.0 h ahead of the SLA clock" in detail
    assert "APPEALS_SLA_FUTURE_TOLERANCE" in detail
    assert _dead_count() == counted + 1
    assert outbox.of(t.SLA_ALERTS) == [], "no breach reported before the deadline"
    assert batch.changed == {} and batch.schedule == {}, "no state change, no timer cancelled"
    state = rt.table[KEY]
    assert state is before and state["status"] == "running" and state["breached"] is None
    assert answer["event_id"] not in state["events"]  # the corrected answer can come
    pending = timers.pending_timers(state, 3600.0)
    assert ("warning", state["warn"]) in [(p.kind, p.due_ts) for p in pending]

    # 15:00: the warning tick finds the appeal running and warns.
    tick = {"schema_version": 1, "appeal_id": APPEAL, "kind": "warning",
            "due_ts": state["warn"], "cycle": state["cycle"]}
    outbox, _ = _run(rt, _event(TICKS, tick, 2))
    assert [a["level"] for a in outbox.of(t.SLA_ALERTS)] == ["warning"]

    # The body's corrected answer, stamped 12:00 local, is applied: on time.
    _run(rt, _event(EXTERNAL, _answer(_local(12).isoformat(), 3), 3))
    state = rt.table[KEY]
    assert state["status"] == "answered" and state["on_time"] is True


def test_an_event_within_the_tolerance_is_applied() -> None:
    """Clock skew between systems: an answer stamped four minutes ahead (the default allows
    300 s) is applied, on the re-keyed internal topic too."""
    rt = _runtime(now=_local(12))
    _run(rt, _event(ROUTED, _routed(_local(9))))
    outbox, _ = _run(rt, _event(INTERNAL, _answer(_local(12, 4).isoformat()), 1))
    assert outbox.dead == []
    state = rt.table[KEY]
    assert state["status"] == "answered" and state["on_time"] is True
    assert state["answered"] == _local(12, 4).timestamp()


def test_the_tolerance_is_the_setting() -> None:
    stamped = _answer(_local(12, 10).isoformat())  # ten minutes ahead
    strict = _runtime(now=_local(12), sla_future_tolerance=60.0)
    _run(strict, _event(ROUTED, _routed(_local(9))))
    outbox, _ = _run(strict, _event(EXTERNAL, stamped, 1))
    assert [reason for reason, _v, _d in outbox.dead] == ["future_timestamp"]
    loose = _runtime(now=_local(12), sla_future_tolerance=3600.0)
    _run(loose, _event(ROUTED, _routed(_local(9))))
    outbox, _ = _run(loose, _event(EXTERNAL, stamped, 1))
    assert outbox.dead == [] and loose.table[KEY]["status"] == "answered"


def test_an_event_from_the_future_is_not_held_for_its_routing() -> None:
    """Refused before it is held: applied with the routing, it would have been judged then,
    unchecked (held events are not checked again)."""
    rt = _runtime(now=_local(12))
    ahead = _answer("2027-02-10T12:00:00+00:00")
    outbox, batch = _run(rt, _event(EXTERNAL, ahead, 1))
    assert [reason for reason, _v, _d in outbox.dead] == ["future_timestamp"]
    assert batch.changed == {} and KEY not in rt.table
    outbox, _ = _run(rt, _event(ROUTED, _routed(_local(9)), 2))
    assert outbox.dead == [] and outbox.of(t.SLA_ALERTS) == []
    assert rt.table[KEY]["status"] == "running"


def test_on_a_sped_up_clock_the_tolerance_is_wall_clock_seconds() -> None:
    """The demo's clock runs a day per second, and its events are stamped on that clock: the
    lag between its producer and a worker is hours of SLA time, and must not refuse them.
    300 wall-clock seconds are 300 days on that clock."""
    clock = SlaClock(scale=86400.0, epoch=time.time())
    rt = _runtime(clock=clock)
    registered = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    _run(rt, _event(ROUTED, _routed(registered)))
    soon = dt.datetime.fromtimestamp(clock.now() + 3 * 3600, dt.UTC)  # 1/8 s of wall time
    outbox, _ = _run(rt, _event(EXTERNAL, _answer(soon.isoformat()), 1))
    assert outbox.dead == [] and rt.table[KEY]["status"] == "answered"
    later = dt.datetime.fromtimestamp(clock.now() + 400 * 86400, dt.UTC)  # 400 s of wall time
    outbox, _ = _run(rt, _event(EXTERNAL, {**_answer(later.isoformat(), 2),
                                           "event": "closed"}, 2))
    assert [reason for reason, _v, _d in outbox.dead] == ["future_timestamp"]


def test_the_tolerance_is_a_validated_setting() -> None:
    assert Settings.load({}).sla_future_tolerance == 300.0
    assert Settings.load({"APPEALS_SLA_FUTURE_TOLERANCE": "0"}).sla_future_tolerance == 0.0
    for bad in ("-1", "nan", "5m", str(3661 * 86400)):
        with pytest.raises(ConfigError, match="APPEALS_SLA_FUTURE_TOLERANCE"):
            Settings.load({"APPEALS_SLA_FUTURE_TOLERANCE": bad})


def _triaged(at: str, n: int = 1) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": f"{APPEAL}:t:{n}", "appeal_id": APPEAL,
            "event": "triaged", "at": at, "category": "roads"}


def test_a_triage_decision_from_the_future_is_refused_before_it_is_forwarded() -> None:
    """A ``triaged`` event was forwarded to the triage agent before the check: stamped 2099,
    it routed the appeal (or redirected it from the desk with ``at`` 2099, a redirect this
    agent then refused), the triage table marked the appeal decided, and the operator's
    corrected decision was ignored. Now it is dead-lettered like any other event, and the
    corrected one goes through."""
    rt = _runtime(now=_local(12))
    counted = _dead_count()
    ahead = _triaged("2099-01-01T00:00:00+00:00")
    outbox, batch = _run(rt, _event(EXTERNAL, ahead, 1))
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == ("future_timestamp", ahead)
    assert detail is not None and "APPEALS_SLA_FUTURE_TOLERANCE" in detail
    assert _dead_count() == counted + 1
    assert outbox.of(t.TRIAGE_DECISIONS) == [] and batch.changed == {}
    # Within the tolerance (clock skew), and the corrected decision: forwarded.
    for n, at in ((2, _local(12, 4)), (3, _local(11))):
        decided = _triaged(at.isoformat(), n)
        outbox, _ = _run(rt, _event(EXTERNAL, decided, n))
        assert outbox.dead == [] and outbox.of(t.TRIAGE_DECISIONS) == [decided]
