"""A place's and a category's figures are bucketed on the days the API cuts their windows on.

The SLA agent bucketed ``muni:`` and ``cat:`` keys on the day in the geo catalogue's capital
zone of the appeal's region, while the API cut a place's windows in the zone the region's
routing rules name and a category's on the default region's day. Rules naming Moscow for
region 22 put an answer at 21:30 Moscow time on the next day of the place and the category
(0 in their 1d windows while the body showed it); an appeal of a region without rules sent to
the default region's desk had its category on Moscow's day, cut on Barnaul's.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from streams.settings import Settings
from tests.sla.sla_support import DAY, fixed_clock, stand_in_runtime
from workers.aggregates.readmodel import parse_maps
from workers.api.service import ApiService
from workers.route.agent import routed_record
from workers.routing import Router, load_rules
from workers.routing.loader import default_rules_path
from workers.routing.model import RouteInput, RoutingRules
from workers.sla import agent as sla_agent
from workers.sla.engine import SlaRules, keyed_contributions, new_state

MSK = ZoneInfo("Europe/Moscow")
BARNAUL = ZoneInfo("Asia/Barnaul")
RULES = SlaRules(due=lambda regime, start, *_: start + 30 * DAY,
                 extend=lambda regime, due, days, *_: due + days * DAY)


def _rules_in_moscow_time(tmp_path: Path) -> RoutingRules:
    """The packaged rules of region 22 with ``timezone: Europe/Moscow`` (the loader takes it)."""
    source = next(Path(default_rules_path()).glob("22*.yaml"))
    text = source.read_text()
    assert "\ntimezone: Asia/Barnaul\n" in text
    path = tmp_path / source.name
    path.write_text(text.replace("\ntimezone: Asia/Barnaul\n", "\ntimezone: Europe/Moscow\n", 1))
    return load_rules(path)


def _route_and_answer(rules: RoutingRules, appeal: RouteInput, registered: dt.datetime,
                      answered: dt.datetime) -> tuple[dict[str, Any], Any]:
    """``appeal`` routed by the router, taken in by the SLA agent and answered; the agent's
    partition figures read back as the API reads them."""
    router = Router(rules)
    decision = router.route(appeal)
    record = routed_record({"appeal_id": appeal.appeal_id, "regime": "pos",
                            "region": appeal.region_code,
                            "registered_at": registered.astimezone(dt.UTC).isoformat()},
                           decision, appeal.category, False, 0.9, None,
                           routed_at=registered, rules=rules).to_dict()
    rt = stand_in_runtime(clock=fixed_clock(answered.timestamp()), rules=RULES,
                          settings=Settings.load({}), owns=lambda *_: True)
    rt.router = router
    rt.region_tz = sla_agent.appeal_zone
    refused: list[Any] = []
    state, _ = sla_agent._on_routed(rt, None, record, 0, refused)
    assert state is not None and not refused
    state, _ = sla_agent._on_lifecycle(
        rt, state, {"appeal_id": appeal.appeal_id, "event_id": "e1", "event": "answered",
                    "at": answered.astimezone(dt.UTC).isoformat(),
                    "authority_id": decision.authority_id},
        now=answered.timestamp())
    assert state is not None and state["answered"] is not None
    counters, sketches = rt.partition_aggregates(0).to_redis()
    parsed = parse_maps([{k.encode(): str(v).encode() for k, v in counters.items()}],
                        [{k.encode(): v for k, v in sketches.items()}])
    return state, parsed


def test_a_place_and_a_category_count_on_the_day_of_the_rules_zone(tmp_path: Path) -> None:
    rules = _rules_in_moscow_time(tmp_path)
    assert rules.regions["22"].timezone == "Europe/Moscow"
    registered = dt.datetime(2026, 11, 10, 10, 0, tzinfo=MSK)
    answered = dt.datetime(2026, 11, 19, 21, 30, tzinfo=MSK)  # 01:30 on the 20th in Barnaul
    appeal = RouteInput(appeal_id="pos-tz-1", region_code="22", category="healthcare",
                        municipality="barnaul", text="Нет записи к врачу в поликлинике")
    state, parsed = _route_and_answer(rules, appeal, registered, answered)
    assert (state["auth"], state["muni"], state["cat"]) == ("22-minzdrav", "barnaul",
                                                            "healthcare")
    svc = ApiService(Settings.load({}), None, rules,  # type: ignore[arg-type]
                     clock=fixed_clock((answered + dt.timedelta(minutes=30)).timestamp()))
    snap = svc._derive(rules, parsed, time.monotonic(), svc.clock.now())
    for subject, region in (("22-minzdrav", "22"), ("muni:barnaul", "22"),
                            ("cat:healthcare", None)):
        assert svc.window_bounds(snap, "1d", region, subject) == ("2026-11-19", "2026-11-19")
        assert svc.figures(snap, subject, "1d", region).answered == 1, subject


def test_a_category_of_a_region_without_rules_counts_on_the_categories_day() -> None:
    rules = load_rules(default_rules_path())
    assert rules.default_region == "22" and rules.regions["22"].timezone == "Asia/Barnaul"
    registered = dt.datetime(2026, 11, 19, 10, 0, tzinfo=BARNAUL)
    answered = dt.datetime(2026, 11, 20, 1, 30, tzinfo=BARNAUL)  # 21:30 on the 19th in Moscow
    appeal = RouteInput(appeal_id="pos-77-1", region_code="77", category="roads",
                        text="Яма на дороге у дома")
    state, parsed = _route_and_answer(rules, appeal, registered, answered)
    assert (state["auth"], state["cat"]) == ("22-cur", "roads")
    svc = ApiService(Settings.load({}), None, rules,  # type: ignore[arg-type]
                     clock=fixed_clock((answered + dt.timedelta(minutes=30)).timestamp()))
    snap = svc._derive(rules, parsed, time.monotonic(), svc.clock.now())
    assert svc.window_bounds(snap, "1d", None, "cat:roads") == ("2026-11-20", "2026-11-20")
    figures = svc.figures(snap, "cat:roads", "1d", None)
    assert (figures.answered, figures.received) == (1, 0)


def test_a_state_stored_before_the_zones_were_kept_counts_as_it_was_built() -> None:
    """States already in the table lack ``mtz``/``ctz``: their place and category stay on
    the days they were bucketed on (the region's capital zone), so the figures maintained by
    deltas and those rebuilt from the table agree."""
    registered = dt.datetime(2026, 11, 10, 10, 0, tzinfo=MSK).timestamp()
    answered = dt.datetime(2026, 11, 19, 21, 30, tzinfo=MSK)
    routed = {"appeal_id": "a1", "regime": "pos", "region": "22", "authority_id": "22-minzdrav",
              "category": "healthcare", "municipality": "barnaul"}
    state, _ = new_state(routed, 0, registered, "Europe/Moscow", RULES)
    assert "mtz" not in state and "ctz" not in state
    from workers.sla.engine import apply_lifecycle

    apply_lifecycle(state, {"event_id": "e1", "event": "answered",
                            "at": answered.astimezone(dt.UTC).isoformat()}, RULES)
    answers = {k[0]: k[1] for k in keyed_contributions(state) if k[2] == "answered"}
    assert answers == {"22-minzdrav": "2026-11-19", "muni:barnaul": "2026-11-20",
                       "cat:healthcare": "2026-11-20"}
