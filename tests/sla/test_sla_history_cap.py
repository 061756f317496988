"""One appeal's history is capped: reopens, redirects and pauses beyond MAX_HISTORY are
dead-lettered (``history_overflow``), while answers and closes still apply.

A review measured an authority system resending reopens in a loop (or two bodies redirecting
one appeal back and forth): every event recounted the whole history for the figures, ~10 ms
an event at 1,000 entries, ~70 ms at 4,000, and the state grew without end toward Kafka's
message size limit. With the cap, the cost and the size of one appeal stay bounded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from tests.sla.sla_support import EXTERNAL, KEY, T0, dead_count, lifecycle, message, run_batches
from workers.sla.engine import HISTORY_OVERFLOW, MAX_HISTORY, State, apply_lifecycle, new_state


def _at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_reopens_beyond_the_cap_are_dead_lettered_and_the_appeal_can_still_end(
        rt: Any, routed_state: State) -> None:
    events: list[dict[str, Any]] = []
    n = 0
    for i in range(MAX_HISTORY + 3):
        events.append(lifecycle("answered", n, _at(2 * i + 1)))
        events.append(lifecycle("reopened", n + 1, _at(2 * i + 2)))
        n += 2
    events.append(lifecycle("answered", n, _at(2 * MAX_HISTORY + 10)))
    events.append(lifecycle("closed", n + 1, _at(2 * MAX_HISTORY + 11)))
    before = dead_count(HISTORY_OVERFLOW)
    outbox, _ = run_batches(rt, [message(EXTERNAL, e, i) for i, e in enumerate(events)])
    refused = [orjson.loads(value)["event_id"] for reason, value, _ in outbox.dead
               if reason == HISTORY_OVERFLOW]
    assert len(refused) == 3 and dead_count(HISTORY_OVERFLOW) == before + 3
    assert all(orjson.loads(v)["event"] == "reopened" for r, v, _ in outbox.dead)
    state = rt.table[KEY]
    assert state["hist"] == MAX_HISTORY
    assert state["status"] == "answered" and state.get("closed") is not None
    assert len(orjson.dumps(state)) < 40_000


def test_a_redirect_ping_pong_stops_at_the_cap() -> None:
    from workers.sla.engine import SlaRules

    day = 86400.0
    rules = SlaRules(due=lambda r, s, *_: s + 10 * day, extend=lambda r, d, n, *_: d + n * day)
    routed = {"appeal_id": "p1", "regime": "fz59", "region": "22", "authority_id": "A",
              "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, T0.timestamp(), "Asia/Barnaul", rules)
    outcomes = []
    for i in range(MAX_HISTORY + 5):
        target = "B" if state["auth"] == "A" else "A"
        event = {"event_id": f"r{i}", "appeal_id": "p1", "event": "redirected",
                 "at": _at(i + 1).isoformat(), "to_authority_id": target}
        outcomes.append(apply_lifecycle(state, event, rules).outcome)
    assert outcomes[:MAX_HISTORY] == ["applied"] * MAX_HISTORY
    assert outcomes[MAX_HISTORY:] == [HISTORY_OVERFLOW] * 5
    assert len(state["prev"]) <= MAX_HISTORY
    assert "r70" not in state["events"]  # refused events are not remembered as applied
    answered = {"event_id": "last", "appeal_id": "p1", "event": "answered",
                "at": _at(100).isoformat()}
    assert apply_lifecycle(state, answered, rules).outcome == "applied"
