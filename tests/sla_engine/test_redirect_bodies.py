"""Events of a body that no longer holds the appeal are not applied (dead-lettered as
``foreign_authority``); an incident redirected after its first response restarts its final
answer at the receiving body; a recompute keeps the authorities' own zones (review 12,
defects 2, 3 and 4)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from streams.settings import Settings
from tests.sla_engine.engine_support import BOOK, DAY, T0, TZ, ev
from workers.sla import agent as sla_agent
from workers.sla import recompute
from workers.sla.agent import sla_rules
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    contributions,
    keyed_contributions,
    new_state,
)

H = 3600.0
FOREIGN_AUTHORITY = "foreign_authority"  # outcome and dead-letter reason


def _routed(regime: str = "fz59") -> dict[str, Any]:
    return {"appeal_id": "a1", "regime": regime, "region": "22", "authority_id": "A",
            "municipality": "barnaul", "category": "roads", "urgent": False}


def _redirected_to_b(rules: SlaRules = BOOK) -> State:
    state, _ = new_state(_routed(), 0, T0, TZ, rules)
    apply_lifecycle(state, ev("redirected", T0 + 3 * DAY, 1, authority_id="A",
                              to_authority_id="B"), rules)
    assert state["auth"] == "B"
    return state


@pytest.mark.parametrize("event,extra", [
    ("closed", {"reason": "направлено по компетенции"}), ("extended", {"extension_days": 30}),
    ("answered", {}), ("paused", {})])
def test_the_handing_on_body_s_events_change_nothing(event: str, extra: dict[str, Any]) -> None:
    state = _redirected_to_b()
    before = (dict(state), Counter(contributions(state)))
    eff = apply_lifecycle(state, ev(event, T0 + 3 * DAY + 60, 2, authority_id="A", **extra),
                          BOOK)
    assert eff.outcome == FOREIGN_AUTHORITY and not eff.alerts and not eff.timers
    assert (dict(state), Counter(contributions(state))) == before
    # B's own event (or one naming no body) applies.
    own = apply_lifecycle(state, ev(event, T0 + 3 * DAY + 120, 3, authority_id="B", **extra),
                          BOOK)
    assert own.outcome == "applied"


def test_b_still_breaches_after_a_s_close_was_refused() -> None:
    state = _redirected_to_b()
    apply_lifecycle(state, ev("closed", T0 + 3 * DAY + 60, 2, authority_id="A"), BOOK)
    tick = apply_tick(state, "breach", state["cycle"], BOOK)
    assert [(a.level, a.authority_id) for a in tick.alerts] == [("breach", "B")]


class _Outbox:
    def __init__(self) -> None:
        self.dead: list[tuple[str, str]] = []

    async def dead_letter(self, event: Any, *, stage: str, reason: str, detail: str = "") -> None:
        self.dead.append((stage, reason))

    async def dead_letter_raw(self, value: bytes, key: bytes, *, reason: str, stage: str,
                              **_: Any) -> None:
        self.dead.append((stage, reason))


def _rt() -> Any:
    # The SLA clock reads a month after T0: the events here (days after it) are in its past
    # (one stamped ahead of it is refused: agent._check_not_ahead).
    clock = SimpleNamespace(now=lambda: T0 + 30 * DAY, wall_time_of=lambda ts: ts)
    rt: Any = SimpleNamespace(rules=BOOK, resolve_parent=None, router=None,
                              region_tz=lambda region, hint: TZ,
                              ctx=SimpleNamespace(clock=clock, settings=Settings()),
                              aggregates={})
    rt.partition_aggregates = lambda p: sla_agent.SlaRuntime.partition_aggregates(rt, p)
    return rt


def test_the_agent_dead_letters_a_foreign_body_s_event() -> None:
    rt = _rt()
    state = _redirected_to_b()
    with pytest.raises(sla_agent.ForeignAuthority):
        sla_agent._on_lifecycle(rt, state, ev("closed", T0 + 4 * DAY, 2, authority_id="A"))
    # Held before the routing came: left out (dead-lettered), the routing and the rest apply.
    routed = {**_routed(), "registered_at": dt.datetime.fromtimestamp(T0, dt.UTC).isoformat()}
    held = [ev("accepted", T0 + H, 1, authority_id="A"),
            ev("closed", T0 + 2 * H, 2, authority_id="C")]
    refused: list[tuple[dict[str, Any], str, str]] = []
    new, _eff = sla_agent._on_routed(rt, {"pending": held}, routed, 0, refused)
    assert new is not None and new["status"] == "running" and new.get("accepted") == T0 + H
    assert [(e["event_id"], reason) for e, reason, _why in refused] == \
        [("e2", FOREIGN_AUTHORITY)]


def test_handle_dead_letters_it_with_its_reason() -> None:
    rt = _rt()
    state = _redirected_to_b()
    key = b"a1"
    rt.table = {key: state}
    rt.external_lifecycle_topic = "ext"
    rt.lifecycle_topic = "lc"
    rt.ticks_topic = "ticks"
    rt.routed_topic = "routed"
    import orjson

    value = orjson.dumps({"schema_version": 1, **ev("extended", T0 + 4 * DAY, 2,
                                                    authority_id="A", extension_days=30)})
    msg = SimpleNamespace(key=key, topic="lc", value=value, partition=0, offset=7)
    batch = SimpleNamespace(changed={}, counted={}, schedule={}, now=T0)
    outbox = _Outbox()
    asyncio.run(sla_agent._handle(rt, outbox, SimpleNamespace(message=msg), batch))  # type: ignore[arg-type]
    assert outbox.dead == [("sla", FOREIGN_AUTHORITY)]
    assert batch.changed == {}


@pytest.mark.parametrize("regime", ["incident", "hotline"])
def test_a_redirect_after_the_first_response_restarts_the_final_answer(regime: str) -> None:
    state, _ = new_state(_routed(regime), 0, T0, TZ, BOOK)
    apply_lifecycle(state, ev("answered", T0 + 2 * H, 1), BOOK)  # the first response
    figures_before = Counter(contributions(state))
    eff = apply_lifecycle(state, ev("redirected", T0 + DAY, 2, to_authority_id="B"), BOOK)
    stage = next(e for e in state["stg"] if e[0] == "final_answer")
    assert eff.outcome == "applied" and state["auth"] == "B"
    assert stage[4] == 1 and stage[1] == T0 + DAY and stage[5] is None
    assert {(t.kind, t.cycle) for t in eff.timers} >= {("final_answer.warning", 1)}
    assert not any(t.kind in ("warning", "breach") for t in eff.timers)
    # The answered answer period is not reopened; it stays A's.
    assert state["status"] == "answered"
    figures = Counter((a, c) for a, _d, c in contributions(state))
    assert figures[("A", "answered_on_time")] == 1 and figures[("B", "answered")] == 0
    assert figures[("A", "received")] == 1 and figures[("B", "received")] == 1
    assert figures[("B", "open")] == 0
    assert sum(figures_before.values()) + 1 == sum(Counter(contributions(state)).values())
    # Second keys count the appeal once, as for other redirects.
    keyed = Counter((a, c) for a, _d, c in keyed_contributions(state))
    assert keyed[("muni:barnaul", "received")] == 1
    assert keyed[("muni:barnaul", "answered_on_time")] == 1
    # B closes it: the final answer ends, the figures do not move.
    closed = apply_lifecycle(state, ev("closed", T0 + 2 * DAY, 3, authority_id="B"), BOOK)
    assert closed.outcome == "applied" and state["stg"][0][5] == T0 + 2 * DAY
    assert Counter((a, c) for a, _d, c in contributions(state)) == figures
    # A redirect to the body holding it is still refused; a reopen counts B's new period.
    apply_lifecycle(state, ev("reopened", T0 + 3 * DAY, 4), BOOK)
    assert state["status"] == "running" and state["auth"] == "B"
    again = Counter((a, c) for a, _d, c in contributions(state))
    assert again[("A", "answered_on_time")] == 1 and again[("B", "open")] == 1


def test_a_redirect_after_the_answer_with_no_running_stage_is_still_refused() -> None:
    state, _ = new_state(_routed("fz59"), 0, T0, TZ, BOOK)
    apply_lifecycle(state, ev("answered", T0 + DAY, 1), BOOK)
    eff = apply_lifecycle(state, ev("redirected", T0 + 2 * DAY, 2, to_authority_id="B"), BOOK)
    assert eff.outcome == "not_open" and state["auth"] == "A"
    inc, _ = new_state(_routed("incident"), 0, T0, TZ, BOOK)
    apply_lifecycle(inc, ev("answered", T0 + 2 * H, 1), BOOK)
    same = apply_lifecycle(inc, ev("redirected", T0 + DAY, 2, to_authority_id="A"), BOOK)
    assert same.outcome == "rejected"


def test_recompute_keeps_the_authorities_zones() -> None:
    zones = {"A": "Asia/Barnaul", "B": "Europe/Moscow"}
    auths = {k: SimpleNamespace(id=k, sla={}, timezone=z, parent=None)
             for k, z in zones.items()}
    router = SimpleNamespace(rules=SimpleNamespace(authorities=auths),
                             authority=lambda i: auths[i])
    settings = SimpleNamespace(warning_share=None, escalation_after=None,
                               sla_early_max_age=7 * DAY)
    rt = SimpleNamespace(router=router, ctx=SimpleNamespace(settings=settings))
    rt.rules = sla_rules(DeadlineService(), settings, router)
    recompute.reload_rules(rt)
    state = _redirected_to_b(rt.rules)
    assert rt.rules.zone_of is not None and rt.rules.zone_of("B") == "Europe/Moscow"
    assert state["tz"] == "Europe/Moscow"
