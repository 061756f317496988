"""The warning of a working-day period (``pos``) is a share of its working days, on a working day.

DESIGN.md §2: the warning fires when "a configurable share of the time used, e.g. 75 %", and
``pos`` counts working days. ``warning_at`` took the wall-clock share for every day count: a
``pos`` appeal registered on 25 December 2026 warned on 13 January, after 5 of its 10 working
days (the New Year holidays ate the wall-clock span), and one registered on 27 April 2026 on
Saturday 9 May at 20:29, a day off. Now the share is counted in working days (each counted
whole, the registration day not at all), and it falls inside a working day.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.deadlines import cli
from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import (
    answer_due,
    end_of_day,
    pause_shift,
    pause_shift_warning,
    warning_at,
)
from workers.deadlines.policies import PolicyBook

MSK = ZoneInfo("Europe/Moscow")
BOOK = PolicyBook.load()
POS = BOOK.resolve("pos", region="77")
CAL = BusinessCalendar()


def m(y: int, mo: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> dt.datetime:
    """Moscow wall time."""
    return dt.datetime(y, mo, d, hh, mm, ss, tzinfo=MSK)


@pytest.mark.parametrize(("registered", "due", "warning"), [
    # Working days 28-31 Dec, 12-15 Jan, 18-19 Jan: 7.5 of 10 is noon of the 8th, Fri 15 Jan
    # (the wall-clock share: 13 Jan, after 5 of them).
    (m(2026, 12, 25, 10), m(2027, 1, 19, 23, 59, 59), m(2027, 1, 15, 12)),
    # 28-30 Apr, 4-8 May (1-3 and 9-11 May off), 12-13 May: noon of Fri 8 May (the
    # wall-clock share: Saturday 9 May 20:29).
    (m(2026, 4, 27, 10), m(2026, 5, 13, 23, 59, 59), m(2026, 5, 8, 12)),
    # An ordinary fortnight: registered Mon 16 Mar, 17 Mar..30 Mar; the 8th is Thu 26 Mar.
    (m(2026, 3, 16, 8), m(2026, 3, 30, 23, 59, 59), m(2026, 3, 26, 12)),
])
def test_pos_warning_is_three_quarters_of_its_working_days(
        registered: dt.datetime, due: dt.datetime, warning: dt.datetime) -> None:
    assert answer_due("pos", registered, "Europe/Moscow", POS, calendar=CAL) == due
    got = warning_at(registered, due, 0.75, POS, CAL)
    assert got == warning
    assert CAL.is_working_day(got.date())
    # 7 whole working days used before the warning's day, half of the 8th on it
    assert CAL.working_days_between(registered.date(), got.date() - dt.timedelta(days=1)) == 7


def test_the_registration_hour_does_not_matter() -> None:
    # The registration day never counts (Civil Code art. 191), so neither does its hour.
    due = m(2027, 1, 19, 23, 59, 59)
    assert {warning_at(m(2026, 12, 25, h), due, 0.75, POS, CAL) for h in (0, 9, 23)} == {
        m(2027, 1, 15, 12)}


def test_a_share_ending_with_a_day_is_that_days_last_second_not_a_day_off() -> None:
    # Registered Fri 13 Mar 2026: 16-20 Mar are the first five working days; half of ten ends
    # with Friday 20 Mar, whose next midnight is Saturday.
    registered = m(2026, 3, 13, 10)
    due = answer_due("pos", registered, "Europe/Moscow", POS, calendar=CAL)
    assert due == m(2026, 3, 27, 23, 59, 59)
    assert warning_at(registered, due, 0.5, POS, CAL) == m(2026, 3, 20, 23, 59, 59)
    assert warning_at(registered, due, 1.0, POS, CAL) == due


@settings(max_examples=300, deadline=None)
@given(day=st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31)),
       hour=st.integers(0, 23), answer=st.integers(1, 30),
       share=st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 0.99, 1.0]))
def test_pos_warning_is_its_share_of_working_days_and_on_a_working_day(
        day: dt.date, hour: int, answer: int, share: float) -> None:
    registered = dt.datetime.combine(day, dt.time(hour), tzinfo=MSK)
    policy = replace(POS, answer=answer)
    due = answer_due("pos", registered, "Europe/Moscow", policy, calendar=CAL)
    warn = warning_at(registered, due, share, policy, CAL)
    assert registered < warn <= due
    assert CAL.is_working_day(warn.date())
    # Working days used up to the warning: the whole days before its day plus the part of
    # its day gone by then (a day's last second counts it whole).
    before = CAL.working_days_between(day, warn.date() - dt.timedelta(days=1))
    into = (warn - dt.datetime.combine(warn.date(), dt.time(0), tzinfo=MSK)).total_seconds()
    used = before + (1.0 if into >= 86_399 else into / 86_400)
    assert math.isclose(used, share * answer, abs_tol=1 / 86_400), (used, share * answer)


def test_a_pause_moves_a_pos_warning_by_working_days_not_onto_a_day_off() -> None:
    # Registered Mon 27 Apr 2026, due Wed 13 May. A warning on Thursday 7 May 12:00; a pause
    # from Mon 4 May to Wed 6 May moves the deadline by two working days, to Fri 15 May. The
    # wall-clock distance put the warning on Saturday 9 May; two working days after Thursday
    # 7 May are Friday 8 and Tuesday 12 May (9-11 May off).
    due = m(2026, 5, 13, 23, 59, 59)
    paused, resumed = m(2026, 5, 4, 10), m(2026, 5, 6, 10)
    moved = pause_shift(due, paused, resumed, POS, CAL)
    assert moved == m(2026, 5, 15, 23, 59, 59)
    warn = pause_shift_warning(m(2026, 5, 7, 12), due, moved, paused, resumed, POS, CAL)
    assert warn == m(2026, 5, 12, 12) and CAL.is_working_day(warn.date())
    # Had the warning's moment come when the pause began, it stays (it went out already).
    late = m(2026, 5, 4, 9)
    assert pause_shift_warning(late, due, moved, paused, resumed, POS, CAL) == late


def test_sla_due_prints_the_working_day_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """``appeals sla due`` prints ``warning_at`` from the same rule as the SLA engine."""
    import json

    assert cli.main(["sla", "due", "--regime", "pos", "--registered-at",
                     "2026-04-27T10:00:00+03:00", "--region", "77"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["due"] == end_of_day(dt.date(2026, 5, 13), MSK).isoformat()
    assert out["warning_at"] == "2026-05-08T12:00:00+03:00"
