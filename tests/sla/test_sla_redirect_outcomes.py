"""Redirects and reopens through the SLA agent's handling of one event (``agent._handle``).

- A redirect to the body that already holds the appeal is dead-lettered (``redirect_refused``)
  like a redirect to the body complained about: before, the router accepted it, and the engine
  restarted that body's clock and cleared its breach. A redirect delivered again (same
  ``event_id``) is a quiet repeat, not such a redirect.
- A redirect past the deadline whose breach timer had not fired yet reports the breach as the
  handing-on body's (alert and metric), not as the receiving body's.
- The figures kept live by deltas equal the figures rebuilt from the stored states, with the
  outcomes that redirects past the deadline and reopens now keep.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections import Counter
from types import SimpleNamespace
from typing import Any, cast

import orjson

from streams import topics as t
from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from workers.routing import Router, load_rules
from workers.routing.loader import PACKAGED_DATA
from workers.sla import agent as sla_agent
from workers.sla.engine import SlaRules

DAY = 86400.0
T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)  # 10:00 in Barnaul
EXTERNAL, INTERNAL, ROUTED, TICKS = "p.lifecycle", "p.sla.lifecycle", "p.routed", "p.ticks"
APPEAL = "a" * 24
KEY = APPEAL.encode()


def _runtime() -> Any:
    # The SLA clock reads two months after T0: every event here (up to 30 days after it) is
    # in its past (one stamped ahead of it is refused: agent._check_not_ahead).
    clock = SimpleNamespace(now=lambda: T0.timestamp() + 60 * DAY, wall_time_of=lambda ts: ts)
    rt = SimpleNamespace(
        table={}, aggregates={},
        router=Router(load_rules(PACKAGED_DATA)),
        rules=SlaRules(due=lambda regime, start, *_: start + 10 * DAY,
                       extend=lambda regime, due, days, *a: due + days * DAY),
        resolve_parent=lambda authority: None,
        region_tz=lambda region, hint: "Asia/Barnaul",
        ctx=SimpleNamespace(clock=clock, settings=Settings()),
        external_lifecycle_topic=EXTERNAL, lifecycle_topic=INTERNAL, routed_topic=ROUTED,
        ticks_topic=TICKS, owns=lambda key, partition: True)
    rt.partition_aggregates = lambda p: sla_agent.SlaRuntime.partition_aggregates(
        cast(Any, rt), p)
    return rt


def _event(topic: str, value: dict[str, Any], offset: int = 0) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=offset,
                                                   key=KEY, value=orjson.dumps(value)))


def _routed() -> dict[str, Any]:
    return {"schema_version": 1, "appeal_id": APPEAL, "regime": "fz59", "region": "22",
            "registered_at": T0.isoformat(), "category": "roads", "urgent": False,
            "confidence": 0.9, "authority_id": "22-mintrans", "routing_level": "region",
            "rule_version": "t", "routed_at": T0.isoformat()}


def _lifecycle(kind: str, n: int, days: float, **extra: Any) -> dict[str, Any]:
    at = T0 + dt.timedelta(days=days)
    return {"schema_version": 1, "event_id": f"{APPEAL}:{n}", "appeal_id": APPEAL,
            "event": kind, "at": at.isoformat(), **extra}


def _run(rt: Any, *events: Any) -> RecordingOutbox:
    """Each event in its own batch, its states stored as the agent stores them."""

    async def main() -> RecordingOutbox:
        outbox = RecordingOutbox()
        for event in events:
            batch = sla_agent.Batch(now=T0.timestamp())
            await sla_agent._handle(rt, outbox, event, batch)
            await outbox.flush()
            rt.table.update(batch.changed)
        return outbox

    return asyncio.run(main())


def _counters(rt: Any) -> Counter[tuple[str, str, str]]:
    return +Counter(rt.aggregates[0].counters)


def test_a_redirect_to_the_body_that_holds_the_appeal_is_dead_lettered() -> None:
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()))
    before = dict(rt.table[KEY])
    counters = _counters(rt)
    same = _lifecycle("redirected", 1, 12, to_authority_id="22-mintrans")
    outbox = _run(rt, _event(EXTERNAL, same, 1))
    dead = outbox.of(t.DEADLETTER)
    assert [(d["reason"], orjson.loads(base64.b64decode(d["value_b64"]))) for d in dead] == [
        ("redirect_refused", same)]
    assert "already holds it" in dead[0]["detail"]
    state = rt.table[KEY]
    assert (state["auth"], state["due"], state["cycle"], state["recv"]) == (
        before["auth"], before["due"], before["cycle"], before["recv"])
    assert _counters(rt) == counters and outbox.of(t.SLA_ALERTS) == []


def test_a_redirect_delivered_twice_is_a_repeat_not_a_refused_redirect() -> None:
    """The second delivery was checked by the router as a redirect from the receiving body to
    itself and dead-lettered as ``redirect_refused``: a replay after a crash, or an authority
    resending its log, filled the dead-letter topic with redirects that had been applied."""
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()))
    redirect = _lifecycle("redirected", 1, 3, to_authority_id="22-minzhkh")
    _run(rt, _event(EXTERNAL, redirect, 1))
    after = dict(rt.table[KEY])
    counters = _counters(rt)
    outbox = _run(rt, _event(EXTERNAL, redirect, 2))
    assert outbox.of(t.DEADLETTER) == [] and outbox.of(t.SLA_ALERTS) == []
    state = rt.table[KEY]
    assert (state["auth"], state["due"], state["cycle"], state["recv"]) == (
        "22-minzhkh", after["due"], after["cycle"], after["recv"])
    assert _counters(rt) == counters
    _new, effects = sla_agent._on_lifecycle(rt, dict(state, events=list(state["events"])),
                                            redirect)
    assert effects.outcome == "duplicate"


def test_a_breach_reported_by_a_redirect_is_the_handing_on_bodys() -> None:
    rt = _runtime()
    redirect = _lifecycle("redirected", 1, 12, to_authority_id="22-minzhkh")
    outbox = _run(rt, _event(ROUTED, _routed()), _event(EXTERNAL, redirect, 1))
    [alert] = outbox.of(t.SLA_ALERTS)
    assert (alert["level"], alert["authority_id"], alert["notify_authority_id"]) == (
        "breach", "22-mintrans", "22-mintrans")
    state = rt.table[KEY]
    assert state["auth"] == "22-minzhkh"
    counters = _counters(rt)
    assert counters[("22-mintrans", "2026-11-14", "redirected_overdue")] == 1
    assert counters[("22-mintrans", "2026-11-12", "breaches")] == 1
    assert counters[("22-minzhkh", "", "open")] == 1
    assert counters[("22-minzhkh", "", "open_overdue")] == 0


def test_live_figures_equal_the_rebuild_after_reopens_and_a_late_redirect() -> None:
    rt = _runtime()
    _run(rt, _event(ROUTED, _routed()),
         _event(EXTERNAL, _lifecycle("answered", 1, 11)),        # late
         _event(EXTERNAL, _lifecycle("reopened", 2, 11.5)),
         _event(EXTERNAL, _lifecycle("answered", 3, 12)),        # on time
         _event(EXTERNAL, _lifecycle("answered", 3, 12)),        # a repeat: counted once
         _event(EXTERNAL, _lifecycle("reopened", 4, 13)),
         _event(EXTERNAL, _lifecycle("redirected", 5, 30, to_authority_id="22-minzhkh")))
    live = _counters(rt)
    mine: Counter[str] = Counter()
    for (authority, _day, counter), n in live.items():
        if authority == "22-mintrans":
            mine[counter] += n
    assert mine == {"received": 1, "answered": 2, "answered_on_time": 1, "breaches": 2,
                    "redirected_overdue": 1}
    rebuilt: Any = SimpleNamespace(table=dict(rt.table), assigned_partitions=lambda: {0},
                                   index_dirty=set(), needs_rebuild=True, aggregates={},
                                   rebuild_lock=asyncio.Lock(), assign_gen=0)
    asyncio.run(sla_agent.SlaRuntime.rebuild_aggregates(rebuilt))
    assert +Counter(rebuilt.aggregates[0].counters) == live
