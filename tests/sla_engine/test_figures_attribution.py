"""Figures charge each event to the body responsible, stay a pure function of the states
(rebuild = live path), and never reward leaving an appeal unanswered."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from types import SimpleNamespace
from typing import Any

from monitoring import metrics
from streams.settings import Settings
from tests.sla_engine.engine_support import DAY, thirty_day_rules
from workers.aggregates.partials import PartitionAggregates
from workers.aggregates.rating import rate
from workers.aggregates.readmodel import figures_from_maps
from workers.sla import agent as sla_agent
from workers.sla.engine import (
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    keyed_contributions,
    new_state,
    responses,
)

T0 = dt.datetime(2026, 1, 12, 3, tzinfo=dt.UTC).timestamp()
RULES = thirty_day_rules()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _ev(kind: str, at: float, n: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "appeal_id": "a1", "event": kind, "at": _iso(at), **extra}


def _new(appeal_id: str = "a1", authority: str = "22-A") -> State:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": authority, "municipality": "barnaul", "category": "roads"}
    return new_state(routed, 0, T0, "Asia/Barnaul", RULES)[0]


def _by(state: State, keyed: bool = False) -> Counter[tuple[str, str]]:
    rows = keyed_contributions(state) if keyed else contributions(state)
    return Counter((who, counter) for who, _day, counter in rows)


def test_a_breach_stays_with_the_body_that_missed_the_deadline() -> None:
    state = _new()
    apply_tick(state, "breach", 0, RULES)
    apply_lifecycle(state, _ev("redirected", T0 + 31 * DAY, 1, to_authority_id="22-B"), RULES)
    mine = _by(state)
    assert mine[("22-A", "breaches")] == 1 and mine[("22-B", "breaches")] == 0
    assert mine[("22-A", "received")] == 1 and mine[("22-B", "received")] == 1
    assert mine[("22-B", "open")] == 1 and mine[("22-B", "open_overdue")] == 0
    # ...and the item it left overdue stays in its on-time share (was dropped by the redirect).
    assert mine[("22-A", "redirected_overdue")] == 1
    # The place and the category received one appeal with one breach.
    keyed = _by(state, keyed=True)
    assert keyed[("muni:barnaul", "received")] == 1 and keyed[("cat:roads", "received")] == 1
    assert keyed[("muni:barnaul", "breaches")] == 1


def test_states_written_before_breaches_named_their_body_still_count() -> None:
    state = _new()
    apply_tick(state, "breach", 0, RULES)
    state["bdays"] = [entry[0] for entry in state["bdays"]]  # the old format: bare days
    state.pop("prev")
    assert _by(state)[("22-A", "breaches")] == 1


def _figures(states: list[State]) -> Any:
    agg = PartitionAggregates()
    for state in states:
        agg.apply_delta([], keyed_contributions(state))
    counters, _ = agg.to_redis()
    encoded = {k.encode(): str(v).encode() for k, v in counters.items()}
    return figures_from_maps([encoded], [{}], dt.date(2026, 2, 20), "30d")


def _authority(close_overdue: bool) -> list[State]:
    states = []
    for i in range(40):
        state = _new(f"a{i}")
        if i < 20:
            apply_lifecycle(state, _ev("answered", T0 + 20 * DAY, 1), RULES)
        else:
            apply_tick(state, "breach", 0, RULES)
            if close_overdue:
                apply_lifecycle(state, _ev("closed", T0 + 35 * DAY, 2), RULES)
        states.append(state)
    return states


def test_closing_overdue_appeals_unanswered_does_not_pay() -> None:
    left_open = _figures(_authority(False))["22-A"]
    closed = _figures(_authority(True))["22-A"]
    assert closed.closed_overdue == 20 and closed.open_overdue == 0
    assert closed.on_time_share == left_open.on_time_share == 0.5
    score_open = rate({"22-A": left_open}, ["22-A"])[0].score
    score_closed = rate({"22-A": closed}, ["22-A"])[0].score
    assert score_closed is not None and score_open is not None
    assert score_closed <= score_open


class _Outbox:
    async def send_record(self, *_: Any, **__: Any) -> None:
        return None


def test_response_times_after_a_reopen_are_the_same_live_and_rebuilt() -> None:
    clock = SimpleNamespace(now=lambda: T0, wall_time_of=lambda ts: ts)
    rt: Any = SimpleNamespace(rules=RULES, resolve_parent=None, router=None,
                              region_tz=lambda region, hint: "Asia/Barnaul",
                              ctx=SimpleNamespace(clock=clock, settings=Settings()),
                              aggregates={})
    rt.partition_aggregates = lambda p: sla_agent.SlaRuntime.partition_aggregates(rt, p)

    async def run() -> State:
        routed = {"appeal_id": "a1", "regime": "fz59", "region": "22",
                  "authority_id": "22-A", "registered_at": _iso(T0)}
        state, effects = sla_agent._on_routed(rt, None, routed, 0, [])
        assert state is not None
        await sla_agent._emit(rt, _Outbox(), state, effects, T0)
        for i, (kind, at) in enumerate((("answered", T0 + 3600), ("reopened", T0 + 7200),
                                        ("answered", T0 + 36000))):
            new, effects = sla_agent._on_lifecycle(rt, state, _ev(kind, at, i))
            assert new is not None
            state = new
            await sla_agent._emit(rt, _Outbox(), state, effects, at)
        return state

    state = asyncio.run(run())
    # The second answer counts from the reopen, not from registration (it was 36000: the
    # first period and the time the appeal lay answered counted against the body).
    assert [round(s) for _a, _d, s in responses(state)] == [3600, 36000 - 7200]
    live = rt.aggregates[0].sketches
    rebuilt: Any = SimpleNamespace(table={b"a1": state}, assigned_partitions=lambda: {0},
                                   index_dirty=set(), needs_rebuild=True, aggregates={},
                                   rebuild_lock=asyncio.Lock(), assign_gen=0)
    asyncio.run(sla_agent.SlaRuntime.rebuild_aggregates(rebuilt))
    again = rebuilt.aggregates[0].sketches
    assert live.keys() == again.keys()
    for key in live:
        assert live[key].count == again[key].count == 2
        assert live[key].quantile(0.5) == again[key].quantile(0.5)


def test_open_gauges_go_back_to_zero() -> None:
    aggregates = {0: PartitionAggregates()}
    rt: Any = SimpleNamespace(partition_aggregates=lambda p: aggregates[p],
                              gauge_authorities=set())
    state = _new("g1", authority="22-gauge")
    apply_tick(state, "breach", 0, RULES)
    aggregates[0].apply_delta([], keyed_contributions(state))
    sla_agent._refresh_gauges(rt, {0})
    assert metrics.OPEN_OVERDUE.labels("22-gauge")._value.get() == 1
    before = keyed_contributions(state)
    apply_lifecycle(state, _ev("answered", T0 + 31 * DAY, 1), RULES)
    aggregates[0].apply_delta(before, keyed_contributions(state))
    sla_agent._refresh_gauges(rt, {0})
    assert metrics.OPEN_OVERDUE.labels("22-gauge")._value.get() == 0
    assert metrics.OPEN.labels("22-gauge")._value.get() == 0


def test_a_redirect_leaves_the_place_and_category_received_on_the_registration_day() -> None:
    """The place's and category's "received" followed the current body's receipt, so a
    redirect 9 days later moved it out of the week it was registered in (review of session
    15). The receiving body's own "received" is the redirect's day, as before."""
    state = _new()
    before = [(who, day) for who, day, counter in keyed_contributions(state)
              if counter == "received"]
    apply_lifecycle(state, _ev("redirected", T0 + 9 * DAY, 1, to_authority_id="22-B"), RULES)
    after = [(who, day) for who, day, counter in keyed_contributions(state)
             if counter == "received"]
    registered = dt.datetime.fromtimestamp(T0 + 7 * 3600, dt.UTC).date().isoformat()
    redirected = dt.datetime.fromtimestamp(T0 + 9 * DAY + 7 * 3600, dt.UTC).date().isoformat()
    assert ("muni:barnaul", registered) in before and ("cat:roads", registered) in before
    assert sorted(after) == sorted([("22-B", redirected), ("22-A", registered),
                                    ("muni:barnaul", registered), ("cat:roads", registered)])


def test_a_reopened_appeal_is_answered_from_the_reopen() -> None:
    state = _new()
    apply_lifecycle(state, _ev("answered", T0 + 5 * DAY, 1), RULES)
    apply_lifecycle(state, _ev("reopened", T0 + 25 * DAY, 2), RULES)
    apply_lifecycle(state, _ev("answered", T0 + 26 * DAY, 3), RULES)
    assert [round(s / DAY, 3) for _a, _d, s in responses(state)] == [5.0, 1.0]  # was 26.0
    state.pop("resp")  # a state stored before samples were kept: its last answer
    assert [round(s / DAY, 3) for _a, _d, s in responses(state)] == [1.0]
