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
from typing import Any

import orjson

from streams import topics as t
from tests.sla.sla_support import (
    DAY,
    EXTERNAL,
    KEY,
    ROUTED,
    T0,
    fixed_clock,
    lifecycle,
    message,
    routed_record,
    run_each,
    stand_in_runtime,
    ten_day_rules,
)
from workers.routing import Router, load_rules
from workers.routing.loader import PACKAGED_DATA
from workers.sla import agent as sla_agent


def _runtime() -> Any:
    """The SLA agent with the packaged routing rules and ten-day deadlines. The SLA clock reads
    two months after T0: every event here (up to 30 days after it) is in its past (one stamped
    ahead of it is refused: agent._check_not_ahead)."""
    return stand_in_runtime(clock=fixed_clock(T0.timestamp() + 60 * DAY), rules=ten_day_rules(),
                            router=Router(load_rules(PACKAGED_DATA)))


def _lifecycle(kind: str, n: int, days: float, **extra: Any) -> dict[str, Any]:
    return lifecycle(kind, n, T0 + dt.timedelta(days=days), **extra)


def _counters(rt: Any) -> Counter[tuple[str, str, str]]:
    return +Counter(rt.aggregates[0].counters)


def test_a_redirect_to_the_body_that_holds_the_appeal_is_dead_lettered() -> None:
    rt = _runtime()
    run_each(rt, message(ROUTED, routed_record()))
    before = dict(rt.table[KEY])
    counters = _counters(rt)
    same = _lifecycle("redirected", 1, 12, to_authority_id="22-mintrans")
    outbox = run_each(rt, message(EXTERNAL, same, 1))
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
    run_each(rt, message(ROUTED, routed_record()))
    redirect = _lifecycle("redirected", 1, 3, to_authority_id="22-minzhkh")
    run_each(rt, message(EXTERNAL, redirect, 1))
    after = dict(rt.table[KEY])
    counters = _counters(rt)
    outbox = run_each(rt, message(EXTERNAL, redirect, 2))
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
    outbox = run_each(rt, message(ROUTED, routed_record()), message(EXTERNAL, redirect, 1))
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
    run_each(rt, message(ROUTED, routed_record()),
             message(EXTERNAL, _lifecycle("answered", 1, 11)),        # late
             message(EXTERNAL, _lifecycle("reopened", 2, 11.5)),
             message(EXTERNAL, _lifecycle("answered", 3, 12)),        # on time
             message(EXTERNAL, _lifecycle("answered", 3, 12)),        # a repeat: counted once
             message(EXTERNAL, _lifecycle("reopened", 4, 13)),
             message(EXTERNAL, _lifecycle("redirected", 5, 30, to_authority_id="22-minzhkh")))
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
