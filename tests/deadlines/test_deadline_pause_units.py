"""A pause holds the clock, and a warning fires at a share of the time used, in the policy's
own unit (working hours, working days, calendar days); session-9 DESIGN review cases.

Before, a pause added its wall-clock length to the deadline whatever the unit (a weekend
pause of an 8-working-hour incident moved it by 63.5 h, to Thursday 07:30) and the warning
of a working-hours policy was a wall-clock share (Sunday 22:15, after 1 working hour of 8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import (
    answer_due,
    end_of_day,
    pause_shift,
    pause_shift_warning,
    to_local,
    warning_at,
)
from workers.deadlines.policies import PolicyBook

TZ = "Asia/Barnaul"
BARNAUL = ZoneInfo(TZ)
BOOK = PolicyBook.load()
FZ59 = BOOK.resolve("fz59", region="22")
POS = BOOK.resolve("pos", region="22")
INCIDENT = BOOK.resolve("incident", region="22")
HOTLINE = BOOK.resolve("hotline", region="22")
CAL = BusinessCalendar()


def b(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    """Barnaul wall time."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=BARNAUL)


def eod(y: int, m: int, d: int) -> dt.datetime:
    return end_of_day(dt.date(y, m, d), TZ)


# --- working hours ------------------------------------------------------------------------


def test_working_hours_pause_over_a_weekend_carries_the_working_time_left() -> None:
    due = answer_due("incident", b(2026, 3, 13, 17), TZ, INCIDENT)  # Fri 17:00, 8 h
    assert due == b(2026, 3, 16, 16)
    # 0.5 working hours used before the pause (Fri 17:00-17:30): 7.5 h from Mon 09:00.
    assert pause_shift(due, b(2026, 3, 13, 17, 30), b(2026, 3, 16, 9), INCIDENT) == (
        b(2026, 3, 16, 16, 30))


def test_working_hours_pause_ending_after_closing_resumes_at_the_next_opening() -> None:
    due = answer_due("incident", b(2026, 3, 16, 10), TZ, INCIDENT)  # Mon 10:00 -> 18:00
    assert due == b(2026, 3, 16, 18)
    # Paused 12:00-20:00: 6 working hours were left; they run from Tue 09:00, not at night.
    assert pause_shift(due, b(2026, 3, 16, 12), b(2026, 3, 16, 20), INCIDENT) == (
        b(2026, 3, 17, 15))


def test_working_hours_pause_outside_hours_moves_nothing() -> None:
    due = b(2026, 3, 17, 15)
    # Paused overnight, resumed before opening: no working time was held.
    assert pause_shift(due, b(2026, 3, 16, 19), b(2026, 3, 17, 8), INCIDENT) == due
    # A pause of no length moves nothing either.
    assert pause_shift(due, b(2026, 3, 17, 11), b(2026, 3, 17, 11), HOTLINE) == due


# --- working days -------------------------------------------------------------------------


def test_working_days_pause_moves_by_the_working_days_it_held() -> None:
    due = answer_due("pos", b(2026, 3, 5, 10), TZ, POS)  # Thu, 10 working days
    assert due == eod(2026, 3, 20)
    # Tue 10:00 -> Wed 10:00: one midnight, one working day held -> Mon 23 Mar (not Sat 21).
    assert pause_shift(due, b(2026, 3, 17, 10), b(2026, 3, 18, 10), POS) == eod(2026, 3, 23)
    # Fri 17:00 -> Mon 09:00: three midnights, one of them into a working day (Monday).
    assert pause_shift(due, b(2026, 3, 13, 17), b(2026, 3, 16, 9), POS) == eod(2026, 3, 23)
    # Sat -> Sun: no working day held.
    assert pause_shift(due, b(2026, 3, 14, 10), b(2026, 3, 15, 10), POS) == due


def test_day_counts_a_pause_within_one_local_day_moves_nothing() -> None:
    due = eod(2026, 3, 20)
    for policy in (POS, FZ59):
        assert pause_shift(due, b(2026, 3, 17, 9), b(2026, 3, 17, 23, 30), policy) == due


def test_working_days_pause_begun_on_the_last_day_gives_a_working_day_back() -> None:
    due = eod(2026, 3, 20)  # Friday
    # Paused Friday 10:00, resumed Sunday: what was left of Friday is given back on the next
    # working day after the resume (the rest of a Sunday is no working time).
    assert pause_shift(due, b(2026, 3, 20, 10), b(2026, 3, 22, 10), POS) == eod(2026, 3, 23)


# --- calendar days ------------------------------------------------------------------------


def test_calendar_days_pause_reapplies_the_shift_to_a_day_off() -> None:
    due = answer_due("fz59", b(2026, 2, 11, 10), TZ, FZ59)  # D+30 = Fri 13 Mar
    assert due == eod(2026, 3, 13)
    paused, resumed = b(2026, 2, 20, 12), b(2026, 2, 22, 12)  # two midnights
    # 2 days later is Sun 15 Mar; fz59's "previous" shift applies again: Friday 13 Mar.
    assert pause_shift(due, paused, resumed, FZ59) == eod(2026, 3, 13)
    assert pause_shift(due, paused, resumed, replace(FZ59, shift="next")) == eod(2026, 3, 16)
    assert pause_shift(due, paused, resumed, replace(FZ59, shift="none")) == eod(2026, 3, 15)
    # Three midnights: Mon 16 Mar, a working day.
    assert pause_shift(due, paused, b(2026, 2, 23, 9), FZ59) == eod(2026, 3, 16)


def test_calendar_days_previous_shift_never_ends_before_the_resume_day() -> None:
    # The deadline Fri 13 Mar, paused that day, resumed on the Saturday: "previous" would give
    # Friday, a deadline already gone when the clock restarts; the next working day applies.
    due = eod(2026, 3, 13)
    assert pause_shift(due, b(2026, 3, 13, 10), b(2026, 3, 14, 10), FZ59) == eod(2026, 3, 16)


# --- warning ------------------------------------------------------------------------------


@pytest.mark.parametrize(("registered", "due", "warning"), [
    # Fri 17:00 + 8 h = Mon 16:00; 6 of 8 working hours are used at Mon 14:00 (not Sun 22:15).
    (b(2026, 3, 13, 17), b(2026, 3, 16, 16), b(2026, 3, 16, 14)),
    # Mon 17:00 + 8 h = Tue 16:00; 75 % at Tue 14:00 (not Tue 10:15, 28 % of the hours).
    (b(2026, 3, 16, 17), b(2026, 3, 17, 16), b(2026, 3, 17, 14)),
])
def test_working_hours_warning_is_a_share_of_the_working_time(
        registered: dt.datetime, due: dt.datetime, warning: dt.datetime) -> None:
    assert answer_due("incident", registered, TZ, INCIDENT) == due
    assert warning_at(registered, due, 0.75, INCIDENT) == warning
    assert warning_at(registered, due, 1.0, INCIDENT) == due
    # Urgent (4 h): Fri 17:00 -> Mon 12:00; 3 working hours used at Mon 11:00.
    urgent = answer_due("incident", b(2026, 3, 13, 17), TZ, INCIDENT, urgent=True)
    assert warning_at(b(2026, 3, 13, 17), urgent, 0.75, INCIDENT) == b(2026, 3, 16, 11)


def test_calendar_day_warning_keeps_the_wall_clock_share() -> None:
    reg, due = b(2026, 3, 10, 10), b(2026, 3, 14, 10)
    assert warning_at(reg, due, 0.75, FZ59) == warning_at(reg, due, 0.75) == b(2026, 3, 13, 10)
    # pos counts working days (tests/deadlines/test_deadline_warning_working_days.py): 11, 12
    # and 13 March, the hand-made deadline being on Saturday 14th; 2.25 of 3 is Friday 06:00.
    assert warning_at(reg, due, 0.75, POS) == b(2026, 3, 13, 6)


def test_warning_after_a_pause_keeps_its_share_of_the_working_time() -> None:
    reg = b(2026, 3, 16, 10)
    due = answer_due("incident", reg, TZ, INCIDENT)  # Mon 18:00
    warn = warning_at(reg, due, 0.75, INCIDENT)  # 6 h: Mon 16:00
    assert warn == b(2026, 3, 16, 16)
    paused, resumed = b(2026, 3, 16, 12), b(2026, 3, 16, 20)
    moved = pause_shift(due, paused, resumed, INCIDENT)  # Tue 15:00
    # 4 working hours to the warning were left at 12:00: Tue 13:00, still 2 h before the due.
    assert pause_shift_warning(warn, due, moved, paused, resumed, INCIDENT) == b(2026, 3, 17, 13)
    # A warning whose moment had come when the pause began stays (it went out already).
    assert pause_shift_warning(warn, due, moved, b(2026, 3, 16, 17), resumed, INCIDENT) == warn
    # Day counts: the warning keeps its distance to the deadline.
    fz_due, fz_warn = eod(2026, 3, 13), b(2026, 3, 6, 12)
    fz_moved = pause_shift(fz_due, b(2026, 3, 1, 9), b(2026, 3, 4, 9), FZ59)
    assert fz_moved == eod(2026, 3, 16)
    assert pause_shift_warning(fz_warn, fz_due, fz_moved, b(2026, 3, 1, 9), b(2026, 3, 4, 9),
                               FZ59) == fz_warn + (fz_moved - fz_due)


# --- properties ---------------------------------------------------------------------------

ZONES = ["Europe/Kaliningrad", "Europe/Moscow", "Asia/Barnaul", "Asia/Vladivostok"]
moments = st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2028, 6, 1),
                       timezones=st.just(dt.UTC))
offsets = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=40))


@settings(max_examples=300, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), into=offsets, length=offsets,
       regime=st.sampled_from(["fz59", "pos", "incident", "hotline"]),
       shift=st.sampled_from(["previous", "next", "none"]), urgent=st.booleans())
def test_a_pause_moves_the_deadline_in_the_policy_unit(
        reg: dt.datetime, tz: str, into: dt.timedelta, length: dt.timedelta, regime: str,
        shift: str, urgent: bool) -> None:
    policy = replace(BOOK.resolve(regime), shift=shift)  # type: ignore[arg-type]
    due = answer_due(regime, reg, tz, policy, urgent=urgent, calendar=CAL)
    paused = to_local(reg + into, tz)
    resumed = paused + length
    moved = pause_shift(due, paused, resumed, policy, CAL)
    assert moved >= due and moved.tzinfo == due.tzinfo
    if paused >= due:
        assert moved == due
        return
    if policy.counting == "working_hours":
        # The working time left at the pause is exactly the working time after the resume.
        ws, we = policy.work_start, policy.work_end
        assert CAL.working_hours_between(resumed, moved, ws, we) == (
            CAL.working_hours_between(paused, due, ws, we))
        assert CAL.is_working_day(moved.date()) and ws < moved.time() <= we
        return
    assert moved.time() == dt.time(23, 59, 59)
    assert moved.date() >= resumed.date()  # never gone when the clock restarts
    if paused.date() == resumed.date():
        assert moved == due
    if policy.counting == "working_days":
        assert CAL.is_working_day(moved.date())
        held = CAL.working_days_between(paused.date(), resumed.date())
        if CAL.working_days_between(paused.date(), due.date()) > 0:
            # The pause held `held` working days (local days after its start, up to the resume).
            assert CAL.working_days_between(due.date(), moved.date()) == held
    else:
        midnights = (resumed.date() - paused.date()).days
        last = due.date() + dt.timedelta(days=midnights)
        if shift == "none" and last > resumed.date():
            assert moved.date() == last
        elif moved.date() != last:
            assert CAL.is_working_day(moved.date()) and not CAL.is_working_day(last)


@settings(max_examples=200, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), share=st.floats(0.05, 1.0),
       regime=st.sampled_from(["incident", "hotline"]), urgent=st.booleans())
def test_working_hours_warning_is_at_its_share_of_working_time(
        reg: dt.datetime, tz: str, share: float, regime: str, urgent: bool) -> None:
    policy = BOOK.resolve(regime)
    due = answer_due(regime, reg, tz, policy, urgent=urgent, calendar=CAL)
    warn = warning_at(reg, due, share, policy, CAL)
    ws, we = policy.work_start, policy.work_end
    used = CAL.working_hours_between(to_local(reg, tz), warn, ws, we)
    budget = CAL.working_hours_between(to_local(reg, tz), due, ws, we)
    # Whole seconds: the used time is rounded, the moment's microseconds are dropped.
    assert abs(used.total_seconds() - share * budget.total_seconds()) < 1.5
    assert to_local(reg, tz) <= warn <= due
