"""The SLA engine counts an appeal's deadlines on its region's production calendar.

Tatarstan (16) has non-working holidays of its own by regional law (30 August, 6 November;
``workers/deadlines/regional_calendar.toml``), Bashkortostan (02) 11 October, moved off a
weekend. Every value below is worked out by hand; the same appeal in a region without
days off of its own (22 Altai Krai, 77 Moscow) is the control. Before the regional layer
every region counted on the national calendar, so each regional expectation here failed.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.sla_engine.engine_support import next_ev
from workers.deadlines.calendar import BusinessCalendar
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import State, apply_lifecycle, new_state, replay_deadline

pytestmark = pytest.mark.usefixtures("packaged_files")

MSK = ZoneInfo("Europe/Moscow")
ZONES = {"16": "Europe/Moscow", "77": "Europe/Moscow", "22": "Asia/Barnaul",
         "02": "Asia/Yekaterinburg"}


def at(region: str, y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    """Wall time of the region's zone as Unix seconds."""
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(ZONES[region])).timestamp()


def eod(region: str, y: int, m: int, d: int) -> float:
    return at(region, y, m, d, 23, 59, 59)


def _start(service: DeadlineService, regime: str, region: str, registered: float) -> State:
    routed = {"appeal_id": "a1", "regime": regime, "region": region,
              "authority_id": f"{region}-gzhi", "parent_authority_id": f"{region}-government",
              "category": "housing_utilities", "urgent": False}
    state, _ = new_state(routed, 0, registered, ZONES[region], service.rules())
    return state


# (regime, region, registered, expected answer due): one table, one service, so the per-day
# caches see the same (regime, day, policy) in two regions and must keep them apart.
ANSWER_CASES = [
    # pos, 10 working days from Wed 25 Aug 2027: 26, 27, 30, 31 Aug, 1-3, 6-8 Sep -> Wed 8 Sep;
    # in Tatarstan Mon 30 Aug (Republic Day) is off -> Thu 9 Sep.
    ("pos", "22", at("22", 2027, 8, 25, 10), eod("22", 2027, 9, 8)),
    ("pos", "16", at("16", 2027, 8, 25, 10), eod("16", 2027, 9, 9)),
    # 30 Aug 2026 is a Sunday and Tatarstan does not move it: no difference (27, 28, 31 Aug,
    # 1-4, 7-9 Sep -> Wed 9 Sep in both).
    ("pos", "22", at("22", 2026, 8, 26, 10), eod("22", 2026, 9, 9)),
    ("pos", "16", at("16", 2026, 8, 26, 10), eod("16", 2026, 9, 9)),
    # Bashkortostan moves Sun 11 Oct 2026 to Mon 12 Oct: from Fri 9 Oct, 13-16, 19-23, 26 Oct
    # -> Mon 26 Oct (nationally 12-16, 19-23 -> Fri 23 Oct).
    ("pos", "77", at("77", 2026, 10, 9, 10), eod("77", 2026, 10, 23)),
    ("pos", "02", at("02", 2026, 10, 9, 10), eod("02", 2026, 10, 26)),
    # fz59, 30 calendar days from Wed 7 Oct 2026: Fri 6 Nov, Constitution Day of Tatarstan;
    # the fz59 default shift "previous" -> Thu 5 Nov (4 Nov is the federal holiday, 5 Nov works).
    ("fz59", "77", at("77", 2026, 10, 7, 10), eod("77", 2026, 11, 6)),
    ("fz59", "16", at("16", 2026, 10, 7, 10), eod("16", 2026, 11, 5)),
    # incident, 8 working hours from Thu 5 Nov 2026 15:00: 3 h on Thu, 5 h on Fri -> Fri 14:00;
    # in Tatarstan Thu 5 Nov, the day before Constitution Day, closes at 17:00 (art. 95) and
    # Fri 6 Nov is off: 2 h on Thu, 6 h on Mon -> Mon 9 Nov 15:00.
    ("incident", "77", at("77", 2026, 11, 5, 15), at("77", 2026, 11, 6, 14)),
    ("incident", "16", at("16", 2026, 11, 5, 15), at("16", 2026, 11, 9, 15)),
]


def test_answer_deadlines_count_the_regions_days_off() -> None:
    service = DeadlineService()
    got = [(regime, region, _start(service, regime, region, registered)["due"])
           for regime, region, registered, _ in ANSWER_CASES]
    assert got == [(regime, region, due) for regime, region, _, due in ANSWER_CASES]
    # Replayed (appeals sla recompute) the same way.
    for regime, region, registered, due in ANSWER_CASES:
        state = _start(service, regime, region, registered)
        assert replay_deadline(state, service.rules())[0] == due


def test_the_incident_warning_counts_working_time_on_the_regional_calendar() -> None:
    service = DeadlineService()
    # 75 % of 8 working hours = 6 h: 3 h on Thu 5 Nov, then 3 h on the next working day; in
    # Kazan Thu 5 Nov closes at 17:00 (the day before Constitution Day): 2 h, then 4 h Mon.
    moscow = _start(service, "incident", "77", at("77", 2026, 11, 5, 15))
    kazan = _start(service, "incident", "16", at("16", 2026, 11, 5, 15))
    assert moscow["warn"] == at("77", 2026, 11, 6, 12)
    assert kazan["warn"] == at("16", 2026, 11, 9, 13)


def test_a_pause_resumes_on_the_regional_calendar() -> None:
    service = DeadlineService()
    # incident registered Thu 5 Nov 2026 10:00: due 18:00 in Moscow; in Kazan Thu 5 Nov
    # closes at 17:00 (the day before Constitution Day): 7 h, then Mon 9 Nov 10:00. Paused
    # 16:00 (2 working hours left: Thu 16-18, or Thu 16-17 and Mon 9-10), resumed 19:00: the
    # 2 hours run from the next opening, Fri 11:00 in Moscow, Mon 9 Nov 11:00 in Kazan.
    for region, due, moved in (("77", at("77", 2026, 11, 5, 18), at("77", 2026, 11, 6, 11)),
                               ("16", at("16", 2026, 11, 9, 10), at("16", 2026, 11, 9, 11))):
        state = _start(service, "incident", region, at(region, 2026, 11, 5, 10))
        assert state["due"] == due, region
        apply_lifecycle(state, next_ev("paused", at(region, 2026, 11, 5, 16)), service.rules())
        apply_lifecycle(state, next_ev("resumed", at(region, 2026, 11, 5, 19)), service.rules())
        assert state["due"] == moved, region
        assert replay_deadline(state, service.rules())[0] == moved


def test_an_extension_lands_on_the_regional_calendar() -> None:
    service = DeadlineService()
    # fz59 due Wed 7 Oct 2026 (end of day) + 30 days = Fri 6 Nov: off in Tatarstan, so the
    # "previous" shift gives Thu 5 Nov there; Moscow keeps Fri 6 Nov.
    for region, day in (("77", 6), ("16", 5)):
        got = service.extend("fz59", eod(region, 2026, 10, 7), 30, ZONES[region],
                             f"{region}-gzhi", None, None, region)
        assert got == eod(region, 2026, 11, day), region


def test_stage_deadlines_count_the_regions_days_off() -> None:
    service = DeadlineService()
    # incident final answer, 7 working days from Wed 25 Aug 2027: 26, 27, 30, 31 Aug, 1-3 Sep
    # -> Fri 3 Sep; in Tatarstan without 30 Aug -> Mon 6 Sep.
    for region, day in (("77", (2027, 9, 3)), ("16", (2027, 9, 6))):
        start = at(region, 2027, 8, 25, 10)
        state = _start(service, "incident", region, start)
        due, warn = service.stage_deadline(state, "final_answer", start, 0.75)
        assert due == eod(region, *day), region
        assert start < warn < due


def test_an_appeal_without_a_regional_table_uses_the_national_calendar_object() -> None:
    national = BusinessCalendar()
    service = DeadlineService(calendar=national)
    assert service._calendar("22") is national
    assert service._calendar("") is national
    assert service._calendar("16") is national.for_region("16")
    assert service._calendar("16").region == "16"
    # An explicit calendar with no regional data: Tatarstan counts like everyone else.
    plain = DeadlineService(calendar=BusinessCalendar(regions={}))
    state = _start(plain, "pos", "16", at("16", 2027, 8, 25, 10))
    assert state["due"] == eod("16", 2027, 9, 8)
