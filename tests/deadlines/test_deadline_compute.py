"""Stage deadlines, extension, pause and warning; expected values worked out by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines.compute import (
    Period,
    answer_due,
    extend,
    final_answer_due,
    first_response_due,
    pause_shift,
    period_due,
    redirect_due,
    registration_due,
    stage_due,
    warning_at,
)
from workers.deadlines.policies import PolicyBook

MSK = ZoneInfo("Europe/Moscow")
BOOK = PolicyBook.load()
FZ59 = BOOK.resolve("fz59")
POS = BOOK.resolve("pos")
INCIDENT = BOOK.resolve("incident")


def msk(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=MSK)


def eod(y: int, m: int, d: int) -> dt.datetime:
    return msk(y, m, d, 23, 59, 59)


def test_fz59_registration_and_redirect() -> None:
    # Received Tue 10 Mar 2026: +3 = Fri 13 Mar. Registered Wed 11 Mar: +7 = Wed 18 Mar.
    assert registration_due(msk(2026, 3, 10, 15), "Europe/Moscow", FZ59) == eod(2026, 3, 13)
    assert redirect_due(msk(2026, 3, 11, 9), "Europe/Moscow", FZ59) == eod(2026, 3, 18)
    # Received Thu 5 Mar: +3 = Sun 8 Mar; previous -> Fri 6 Mar.
    assert registration_due(msk(2026, 3, 5, 15), "Europe/Moscow", FZ59) == eod(2026, 3, 6)


def test_previous_shift_never_before_start() -> None:
    # Received Wed 31 Dec 2025 (day off): +3 = Sat 3 Jan 2026. "previous" would be
    # Tue 30 Dec, before receipt, so the next working day applies: Mon 12 Jan.
    assert registration_due(msk(2025, 12, 31, 12), "Europe/Moscow", FZ59) == eod(2026, 1, 12)


def test_previous_shift_never_collapses_onto_the_start_day() -> None:
    """A "previous" shift back onto the start day left a body what remained of that day for a
    3- or 7-day step (session-9 DESIGN review); the next working day applies instead."""
    # Registered Wed 30 Dec 2026: +7 = Wed 6 Jan 2027, +3 = Sat 2 Jan; 31 Dec - 10 Jan are
    # days off, so "previous" is Wed 30 Dec itself: Mon 11 Jan instead.
    reg = msk(2026, 12, 30, 15)
    assert redirect_due(reg, "Europe/Moscow", FZ59) == eod(2027, 1, 11)
    assert registration_due(reg, "Europe/Moscow", FZ59) == eod(2027, 1, 11)
    # Received Thu 30 Apr 2026: +3 = Sun 3 May (1-3 May off) -> Thu 30 Apr -> Mon 4 May.
    assert registration_due(msk(2026, 4, 30, 17, 30), "Europe/Moscow", FZ59) == eod(2026, 5, 4)
    # One day from a Friday: Saturday, shifted back to the Friday -> Monday.
    one_day = Period("calendar_days", 1, "previous")
    assert period_due(msk(2026, 3, 13, 9), "Europe/Moscow", one_day) == eod(2026, 3, 16)
    # Shifting back to a day after the start is still allowed: 29 Dec + 3 = 1 Jan -> 30 Dec.
    assert registration_due(msk(2026, 12, 29, 9), "Europe/Moscow", FZ59) == eod(2026, 12, 30)
    # A period of no days on a working day ends that day, as before.
    none = Period("calendar_days", 0, "previous")
    assert period_due(msk(2026, 3, 13, 9), "Europe/Moscow", none) == eod(2026, 3, 13)


def test_incident_first_response_and_final_answer() -> None:
    # Fri, the day before Victory Day: it closes at 17:00 (art. 95), 1 h is left of it;
    # 9-10 May weekend, Mon 11 May off.
    reg = msk(2026, 5, 8, 16)
    assert first_response_due(reg, "Europe/Moscow", INCIDENT) == msk(2026, 5, 12, 16)
    assert first_response_due(reg, "Europe/Moscow", INCIDENT, urgent=True) == msk(2026, 5, 12, 12)
    # 7 wd after 8 May: 12, 13, 14, 15, 18, 19, 20 May.
    assert final_answer_due(reg, "Europe/Moscow", INCIDENT) == eod(2026, 5, 20)


def test_pos_moderation_stage() -> None:
    # 1 wd after Thu 30 Apr 2026: 1 May off, weekend -> Mon 4 May.
    assert stage_due("moderation", msk(2026, 4, 30, 10), "Europe/Moscow", POS) == eod(2026, 5, 4)


def test_extend_fz59() -> None:
    due = eod(2026, 4, 10)  # Fri
    # +30 = Sun 10 May; previous: 9 Sat -> Fri 8 May.
    assert extend(due, 30, FZ59) == eod(2026, 5, 8)
    # +12 = Wed 22 Apr (working).
    assert extend(due, 12, FZ59) == eod(2026, 4, 22)
    with pytest.raises(ValueError, match=r"1\.\.30"):
        extend(due, 31, FZ59)
    with pytest.raises(ValueError, match="allows no extension"):
        extend(due, 5, POS)


def test_extend_never_earlier() -> None:
    # A deadline kept on a day off (shift none) then extended with "previous" over the
    # New Year: Thu 1 Jan 2026 +2 = Sat 3 Jan -> previous = Tue 30 Dec, before the deadline.
    due = eod(2026, 1, 1)
    assert extend(due, 2, FZ59) == due


def test_pause_shift() -> None:
    due = msk(2026, 4, 10, 23, 59, 59)  # Friday
    # Two local midnights: the last day moves 2 days to Sun 12 Apr; fz59's "previous" shift
    # brings it back to Friday, "next" to Monday, "none" keeps the Sunday.
    assert pause_shift(due, msk(2026, 4, 1, 12), msk(2026, 4, 3, 12), FZ59) == due
    nxt, keep = replace(FZ59, shift="next"), replace(FZ59, shift="none")
    assert pause_shift(due, msk(2026, 4, 1, 12), msk(2026, 4, 3, 12), nxt) == eod(2026, 4, 13)
    assert pause_shift(due, msk(2026, 4, 1, 12), msk(2026, 4, 3, 12), keep) == eod(2026, 4, 12)
    # Pause straddling the deadline: what was left of its last day is given back on the day
    # of the resume, a Sunday; "previous" may not end the rest before the resume: Monday.
    assert pause_shift(due, msk(2026, 4, 10, 23), msk(2026, 4, 12, 23), FZ59) == eod(2026, 4, 13)
    # Pause after a breach does not cure it.
    assert pause_shift(due, msk(2026, 4, 11), msk(2026, 4, 20), FZ59) == due
    with pytest.raises(ValueError):
        pause_shift(due, msk(2026, 4, 3), msk(2026, 4, 1), FZ59)


def test_warning_at() -> None:
    reg = msk(2026, 3, 10, 10)
    due = msk(2026, 3, 14, 10)
    assert warning_at(reg, due, 0.75) == msk(2026, 3, 13, 10)
    assert warning_at(reg, due, 1.0) == due
    with pytest.raises(ValueError):
        warning_at(reg, due, 0)


def test_naive_and_wrong_regime_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        answer_due("fz59", dt.datetime(2026, 3, 10, 10), "Europe/Moscow", FZ59)
    with pytest.raises(ValueError, match="not 'pos'"):
        answer_due("pos", msk(2026, 3, 10), "Europe/Moscow", FZ59)


def test_policy_timezone_field_is_honoured_by_caller() -> None:
    # compute takes the zone as given; a shorter hours window changes the result.
    pol = replace(INCIDENT, work_start=dt.time(8), work_end=dt.time(17))
    assert answer_due("incident", msk(2026, 3, 10, 16), "Europe/Moscow", pol) == \
        msk(2026, 3, 11, 15)
