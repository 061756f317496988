"""Hypothesis properties of deadline arithmetic over 2023-2028 and several zones."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import Period, answer_due, pause_shift, period_due, to_local
from workers.deadlines.policies import PolicyBook

CAL = BusinessCalendar()
BOOK = PolicyBook.load()
ZONES = ["Europe/Kaliningrad", "Europe/Moscow", "Asia/Barnaul", "Asia/Vladivostok",
         "Asia/Kamchatka"]

moments = st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2028, 12, 1),
                       timezones=st.just(dt.UTC))
days = st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2028, 12, 1))
shifts = st.sampled_from(["previous", "next", "none"])


@settings(max_examples=300, deadline=None)
@given(regime=st.sampled_from(["fz59", "pos", "incident", "hotline"]), reg=moments,
       tz=st.sampled_from(ZONES), shift=shifts, urgent=st.booleans())
def test_due_never_before_registration(regime: str, reg: dt.datetime, tz: str, shift: str,
                                       urgent: bool) -> None:
    policy = replace(BOOK.resolve(regime), shift=shift)  # type: ignore[arg-type]
    due = answer_due(regime, reg, tz, policy, urgent=urgent, calendar=CAL)
    assert due >= reg
    assert str(due.tzinfo) == tz


@settings(max_examples=300, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), amount=st.integers(1, 5), shift=shifts,
       kind=st.sampled_from(["calendar_days", "working_days"]))
def test_short_periods_never_before_start(reg: dt.datetime, tz: str, amount: int, shift: str,
                                          kind: str) -> None:
    # Short day periods over the New Year are where a "previous" shift could walk back.
    period = Period(kind, amount, shift)  # type: ignore[arg-type]
    assert period_due(reg, tz, period, CAL) >= reg


@settings(max_examples=300, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), amount=st.integers(1, 10), shift=shifts,
       kind=st.sampled_from(["calendar_days", "working_days"]))
def test_day_periods_end_after_their_start_day(reg: dt.datetime, tz: str, amount: int,
                                               shift: str, kind: str) -> None:
    # A period counted in days starts the day after the event (Civil Code art. 191), so no
    # shift may bring its end back onto the start day (1 day from a Friday, 7 from 30 Dec).
    period = Period(kind, amount, shift)  # type: ignore[arg-type]
    assert period_due(reg, tz, period, CAL).date() > to_local(reg, tz).date()


@settings(max_examples=300, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), n=st.integers(1, 40))
def test_working_day_deadline_is_working_day(reg: dt.datetime, tz: str, n: int) -> None:
    policy = replace(BOOK.resolve("pos"), answer=n)
    due = answer_due("pos", reg, tz, policy, calendar=CAL)
    assert CAL.is_working_day(due.date())
    assert (due.hour, due.minute, due.second) == (23, 59, 59)
    assert CAL.working_days_between(to_local(reg, tz).date(), due.date()) == n


@settings(max_examples=300, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), hours=st.integers(1, 40),
       urgent=st.booleans())
def test_working_hours_deadline_inside_hours(reg: dt.datetime, tz: str, hours: int,
                                             urgent: bool) -> None:
    policy = replace(BOOK.resolve("incident"), answer=hours)
    due = answer_due("incident", reg, tz, policy, urgent=urgent, calendar=CAL)
    assert CAL.is_working_day(due.date())
    assert dt.time(9) < due.timetz().replace(tzinfo=None) <= dt.time(18)


@settings(max_examples=300, deadline=None)
@given(due=moments, start_offset=st.timedeltas(min_value=dt.timedelta(days=-60),
                                               max_value=dt.timedelta(days=60)),
       length=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=90)),
       regime=st.sampled_from(["fz59", "pos", "incident", "hotline"]), shift=shifts)
def test_pause_never_shortens(due: dt.datetime, start_offset: dt.timedelta,
                              length: dt.timedelta, regime: str, shift: str) -> None:
    policy = replace(BOOK.resolve(regime), shift=shift)  # type: ignore[arg-type]
    paused = due + start_offset
    assert pause_shift(due, paused, paused + length, policy, CAL) >= due


@settings(max_examples=300, deadline=None)
@given(day=days, mode=st.sampled_from(["previous", "next"]))
def test_shift_lands_on_working_day(day: dt.date, mode: str) -> None:
    shifted = CAL.shift(day, mode)  # type: ignore[arg-type]
    assert CAL.is_working_day(shifted)
    assert (shifted <= day) if mode == "previous" else (shifted >= day)
    if CAL.is_working_day(day):
        assert shifted == day


@settings(max_examples=200, deadline=None)
@given(reg=moments, tz=st.sampled_from(ZONES), shift=shifts)
def test_fz59_is_day_30_or_shifted_nearby(reg: dt.datetime, tz: str, shift: str) -> None:
    policy = replace(BOOK.resolve("fz59"), shift=shift)  # type: ignore[arg-type]
    due = answer_due("fz59", reg, tz, policy, calendar=CAL)
    day30 = to_local(reg, tz).date() + dt.timedelta(days=30)
    if shift == "none" or CAL.is_working_day(day30):
        assert due.date() == day30
    else:
        assert CAL.is_working_day(due.date())
        assert 0 < abs((due.date() - day30).days) <= 12
