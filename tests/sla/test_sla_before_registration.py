"""An event stamped before its appeal's registration, by more than clock skew, is dead-lettered
(``before_period``), applied at once or held for its routing.

A review found an answer dated 2016 (a mistyped year) to an appeal registered on 25 November
2026 applied in the first answer period as given on time in 0 s: it raised the body's on-time
share and pulled its median response time down, and nobody learnt of the typo. A pause so
dated was already refused; the engine takes answers, closes and extensions of the first period
whatever their stamp, so that a sender's clock a little behind the intake's loses no answer.
Now the agent refuses any event stamped before registration by more than
``APPEALS_SLA_FUTURE_TOLERANCE`` (``agent._check_not_before_registration``); one within it
still applies as before.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from monitoring import metrics
from streams import topics as t
from streams.clock import SlaClock
from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import (
    EXTERNAL,
    INTERNAL,
    ROUTED,
    dead_count,
    fixed_clock,
    lifecycle,
    message,
    routed_record,
    run_one_batch,
    stand_in_runtime,
)
from workers.sla import agent as sla_agent
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import BEFORE_PERIOD

BARNAUL = ZoneInfo("Asia/Barnaul")
REGISTERED = dt.datetime(2026, 11, 25, 10, 0, tzinfo=BARNAUL)
NOW = REGISTERED + dt.timedelta(days=2)  # the SLA clock when the authority's events come
APPEAL = "b" * 24
KEY = APPEAL.encode()
MISTYPED = REGISTERED.replace(year=2016) + dt.timedelta(days=1)  # 26 Nov 2016


def _runtime(clock: Any = None, **settings: Any) -> Any:
    return stand_in_runtime(clock=clock or fixed_clock(NOW.timestamp()),
                            rules=DeadlineService().rules(), settings=Settings(**settings))


def _event(topic: str, value: dict[str, Any], offset: int = 0) -> Any:
    return message(topic, value, offset, key=KEY)


def _routed(registered: dt.datetime = REGISTERED) -> dict[str, Any]:
    return routed_record(registered, appeal_id=APPEAL, regime="pos", rule_version="v1",
                         routed_at=registered.isoformat())


def _lifecycle(kind: str, at: dt.datetime, n: int = 1, **extra: Any) -> dict[str, Any]:
    return lifecycle(kind, n, at, appeal_id=APPEAL, **extra)


def _run(rt: Any, *events: Any) -> tuple[RecordingOutbox, sla_agent.Batch]:
    return run_one_batch(rt, *events)


def _dead_count() -> float:
    return dead_count(BEFORE_PERIOD)


def test_an_answer_with_a_mistyped_year_is_dead_lettered_not_counted_on_time() -> None:
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()))
    before = rt.table[KEY]
    counted = _dead_count()
    rejected = metrics.child(metrics.LIFECYCLE, "answered", "rejected")._value.get()

    answer = _lifecycle("answered", MISTYPED)
    outbox, batch = _run(rt, _event(EXTERNAL, answer, 1))

    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (BEFORE_PERIOD, answer)
    assert detail is not None and "\n" not in detail
    assert "3651.0 days before the appeal was registered" in detail
    assert "2026-11-25T03:00:00+00:00" in detail and "APPEALS_SLA_PAST_TOLERANCE" in detail
    assert _dead_count() == counted + 1
    assert metrics.child(metrics.LIFECYCLE, "answered", "rejected")._value.get() == rejected + 1
    assert batch.changed == {} and batch.schedule == {}, "no state change, no timer cancelled"
    state = rt.table[KEY]
    assert state is before and state["status"] == "running" and not state.get("resp")
    assert answer["event_id"] not in state["events"]  # the corrected answer can come

    # The body's corrected answer, under the same id, is applied and timed from registration.
    corrected = _lifecycle("answered", REGISTERED + dt.timedelta(days=1))
    outbox, _ = _run(rt, _event(EXTERNAL, corrected, 2))
    assert outbox.dead == []
    state = rt.table[KEY]
    assert state["status"] == "answered" and state["on_time"] is True
    assert state["resp"][-1][2] == 86400.0


@pytest.mark.parametrize("kind, extra", [
    ("closed", {}),
    ("extended", {"extension_days": 30}),
    ("redirected", {"to_authority_id": "22-minzdrav"}),
    ("accepted", {}),
])
def test_a_close_extension_or_redirect_with_a_mistyped_year_is_dead_lettered(
        kind: str, extra: dict[str, Any]) -> None:
    """A close so dated closed the appeal before it existed; an extension was refused as
    declared after the deadline (the wrong reason for the operator); a redirect started the
    receiving body's period ten years overdue."""
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()))
    before = rt.table[KEY]
    event = _lifecycle(kind, MISTYPED, **extra)
    outbox, batch = _run(rt, _event(INTERNAL, event, 1))
    assert [(reason, orjson.loads(v)) for reason, v, _d in outbox.dead] == [
        (BEFORE_PERIOD, event)]
    assert batch.changed == {} and outbox.of(t.SLA_ALERTS) == []
    assert rt.table[KEY] is before


def test_an_event_a_little_before_registration_still_applies() -> None:
    """An intake backlog of two days (the default allows three): a hotline's answer given on
    the call, stamped before the intake read the appeal, is applied, on time, in 0 s, as
    before. A tolerance of the future check's 300 s would have dead-lettered it."""
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()))
    early = REGISTERED - dt.timedelta(days=2)
    outbox, _ = _run(rt, _event(EXTERNAL, _lifecycle("answered", early), 1))
    assert outbox.dead == []
    state = rt.table[KEY]
    assert state["status"] == "answered" and state["on_time"] is True
    assert state["answered"] == early.timestamp() and state["resp"][-1][2] == 0.0


def test_the_tolerance_is_the_past_tolerance_setting() -> None:
    stamped = _lifecycle("closed", REGISTERED - dt.timedelta(minutes=10))
    strict = _runtime(sla_past_tolerance=60.0, sla_future_tolerance=3600.0)
    _run(strict, _event(ROUTED, _routed()))
    outbox, _ = _run(strict, _event(EXTERNAL, stamped, 1))
    assert [reason for reason, _v, _d in outbox.dead] == [BEFORE_PERIOD]
    loose = _runtime(sla_past_tolerance=3600.0, sla_future_tolerance=60.0)
    _run(loose, _event(ROUTED, _routed()))
    outbox, _ = _run(loose, _event(EXTERNAL, stamped, 1))
    assert outbox.dead == [] and loose.table[KEY]["status"] == "closed"


def test_a_held_event_with_a_mistyped_year_is_dead_lettered_when_its_routing_comes() -> None:
    """The answer overtook the routing and was held; when the routing comes it is judged
    against the registration, refused, and the routing and the other held events apply."""
    rt = _runtime()
    wrong = _lifecycle("answered", MISTYPED, 1)
    accepted = _lifecycle("accepted", REGISTERED + dt.timedelta(hours=1), 2)
    outbox, _ = _run(rt, _event(EXTERNAL, wrong, 1), _event(EXTERNAL, accepted, 2))
    assert outbox.dead == [] and len(rt.table[KEY]["pending"]) == 2  # held, registration unknown

    counted = _dead_count()
    outbox, _ = _run(rt, _event(ROUTED, _routed(), 3))
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (BEFORE_PERIOD, wrong)
    assert detail is not None and "before the appeal was registered" in detail
    assert _dead_count() == counted + 1
    state = rt.table[KEY]
    assert state["status"] == "running" and not state.get("resp")
    assert wrong["event_id"] not in state["events"]
    assert accepted["event_id"] in state["events"]


def test_a_held_event_a_little_before_registration_still_applies() -> None:
    rt = _runtime()
    early = REGISTERED - dt.timedelta(hours=20)
    _run(rt, _event(EXTERNAL, _lifecycle("answered", early), 1))
    outbox, _ = _run(rt, _event(ROUTED, _routed(), 2))
    assert outbox.dead == []
    state = rt.table[KEY]
    assert state["status"] == "answered" and state["on_time"] is True


def test_on_a_sped_up_clock_the_tolerance_is_wall_clock_seconds() -> None:
    """The demo's clock runs a day per second; its producer stamps an appeal's events from its
    own reading, and the intake registers the appeal a moment later: hours of SLA time before
    the registration, a fraction of a wall-clock second, must not be refused."""
    clock = SlaClock(scale=86400.0, epoch=time.time())
    rt = _runtime(clock=clock, sla_past_tolerance=300.0)
    registered = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    _run(rt, _event(ROUTED, _routed(registered)))
    sooner = registered - dt.timedelta(hours=3)  # 1/8 s of wall time
    outbox, _ = _run(rt, _event(EXTERNAL, _lifecycle("accepted", sooner), 1))
    assert outbox.dead == [] and _lifecycle("accepted", sooner)["event_id"] in (
        rt.table[KEY]["events"])
    mistyped = registered - dt.timedelta(days=400)  # 400 s of wall time, more than 300
    outbox, _ = _run(rt, _event(EXTERNAL, _lifecycle("answered", mistyped, 2), 2))
    assert [reason for reason, _v, _d in outbox.dead] == [BEFORE_PERIOD]


def test_a_repeat_of_an_event_already_applied_stays_a_duplicate() -> None:
    """An answer an older version applied despite its stamp is not dead-lettered again at
    every replay of the topic: the state holds its id, and the engine calls it a duplicate."""
    rt = _runtime(sla_past_tolerance=3660 * 86400.0)  # as the older version: no check
    _run(rt, _event(ROUTED, _routed()))
    answer = _lifecycle("answered", MISTYPED)
    _run(rt, _event(EXTERNAL, answer, 1))
    assert rt.table[KEY]["status"] == "answered"
    rt.ctx.settings = Settings()
    outbox, batch = _run(rt, _event(EXTERNAL, answer, 2))
    assert outbox.dead == [] and batch.changed == {}
