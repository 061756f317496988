"""Years without a known transfer decree: Labour Code art. 112 part 2 applied automatically.

``holidays`` 0.109 lists the transfers only up to 2027; for 2028 it kept Mon 6 Nov 2028 a
working day although Unity Day (4 Nov 2028) is a Saturday. Expected dates are hand-worked
in the comments (weekdays: 4 Nov 2028 Sat, 4 Nov 2029 Sun, 23 Feb 2030 Sat, 23 Feb 2031
Sun, 8 Mar 2031 Sat, 1 May 2032 Sat, 9 May 2032 Sun, 12 Jun 2032 Sat, 1 Jan 2028 Sat).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from workers.deadlines import calendar as calendar_module
from workers.deadlines import cli
from workers.deadlines.calendar import (
    BusinessCalendar,
    art112_transfers,
    last_decree_year,
)
from workers.deadlines.compute import answer_due, default_calendar, final_answer_due
from workers.deadlines.policies import PolicyBook

D = dt.date
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The once-per-year-and-process warning memory must not leak between tests.
    monkeypatch.setattr(calendar_module, "_WARNED_YEARS", set())


def _due(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str], str]:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


# --- calendar ---------------------------------------------------------------------------


def test_last_decree_year_comes_from_the_package_data() -> None:
    from holidays.countries.russia import RussiaStaticHolidays

    assert last_decree_year() == max(RussiaStaticHolidays.special_public_holidays)
    # The public-API probe (fallback for a reorganised package) agrees.
    assert calendar_module._probe_last_decree_year() == last_decree_year()


def test_last_decree_year_fallback_without_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from holidays.countries.russia import RussiaStaticHolidays

    expected = max(RussiaStaticHolidays.special_public_holidays)  # 2027 with holidays 0.109
    monkeypatch.delattr(RussiaStaticHolidays, "special_public_holidays")
    assert last_decree_year.__wrapped__() == calendar_module._probe_last_decree_year()
    # Not the probe compared with itself: the fallback finds the year the tables named.
    assert last_decree_year.__wrapped__() == expected


@pytest.mark.parametrize(("holiday", "day_off"), [
    (D(2028, 11, 4), D(2028, 11, 6)),   # Sat -> Mon (Sun is a weekend day anyway)
    (D(2029, 11, 4), D(2029, 11, 5)),   # Sun -> Mon
    (D(2030, 2, 23), D(2030, 2, 25)),   # Sat -> Mon
    (D(2031, 2, 23), D(2031, 2, 24)),   # Sun -> Mon
    (D(2031, 3, 8), D(2031, 3, 10)),    # Sat -> Mon
    (D(2032, 5, 1), D(2032, 5, 3)),     # Sat -> Mon
    (D(2032, 5, 9), D(2032, 5, 10)),    # Sun -> Mon
    (D(2032, 6, 12), D(2032, 6, 14)),   # Sat -> Mon
])
def test_weekend_holiday_gives_next_working_day_off(holiday: dt.date, day_off: dt.date) -> None:
    assert holiday.year > last_decree_year()
    assert holiday.weekday() >= 5 and day_off.weekday() == 0
    cal = BusinessCalendar()
    assert not cal.is_working_day(day_off)
    assert cal.is_working_day(day_off + dt.timedelta(days=1))  # only one day moves
    assert day_off in art112_transfers(holiday.year)


def test_2028_differs_from_the_package_by_6_november_only() -> None:
    """New Year 2028: 1 Jan is a Saturday and 2 Jan a Sunday, but weekends inside 1-8 January
    are moved by the Government's decree, not by art. 112: Mon 10 Jan stays a working day.
    The only automatic day off of 2028 is Mon 6 Nov (Unity Day on Saturday 4 Nov)."""
    cal = BusinessCalendar()
    ru = holidays.country_holidays("RU", years=2028)
    package_off = {d for d in calendar_module.iter_days(D(2028, 1, 1), D(2028, 12, 31))
                   if not ru.is_working_day(d)}
    assert set(cal.non_working_days(2028)) - package_off == {D(2028, 11, 6)}
    assert cal.is_working_day(D(2028, 1, 10))
    assert not cal.is_working_day(D(2028, 1, 8))


def test_decreed_years_keep_the_package() -> None:
    """2025 had a decree that sent the days off for Sun 23 Feb and Sat 8 Mar to 8 May and
    13 Jun: Mon 24 Feb and Mon 10 Mar 2025 were working days; no art. 112 day is added."""
    cal = BusinessCalendar()
    assert cal.is_working_day(D(2025, 2, 24))
    assert cal.is_working_day(D(2025, 3, 10))
    assert not cal.is_working_day(D(2025, 5, 8))
    assert cal.undecreed_years_used() == []


def test_statutory_list_matches_the_package() -> None:
    # Art. 112 part 1 as hard-coded here = what the package lists for a year without data.
    year = last_decree_year() + 1
    ru = holidays.country_holidays("RU", years=year)
    assert set(ru) == {D(year, m, d) for m, d in calendar_module.ART112_HOLIDAYS}


# --- deadlines --------------------------------------------------------------------------


def test_fz59_2028_unity_day() -> None:
    # Sat 7 Oct 2028: day 1 = 8 Oct, day 30 = Mon 6 Nov (24 days of October + 6 of
    # November), the art. 112 day off for Sat 4 Nov; "previous": Sun 5, Sat 4 (holiday),
    # Fri 3 Nov.
    policy = PolicyBook.load().resolve("fz59")
    reg = dt.datetime(2028, 10, 7, 10, tzinfo=MSK)
    due = answer_due("fz59", reg, "Europe/Moscow", policy, calendar=BusinessCalendar())
    assert due.isoformat() == "2028-11-03T23:59:59+03:00"


def test_incident_2028_unity_day() -> None:
    # Fri 3 Nov 2028 17:00: the day before Unity Day closes at 17:00 (art. 95), so nothing
    # of it is left; Sat 4 (holiday), Sun 5, Mon 6 (art. 112) off; 8 h from Tue 7 Nov
    # 09:00 = 17:00. Final answer, 7 wd after 3 Nov: 7, 8, 9, 10, 13, 14, 15 Nov.
    policy = PolicyBook.load().resolve("incident")
    reg = dt.datetime(2028, 11, 3, 17, tzinfo=MSK)
    cal = BusinessCalendar()
    due = answer_due("incident", reg, "Europe/Moscow", policy, calendar=cal)
    assert due.isoformat() == "2028-11-07T17:00:00+03:00"
    assert final_answer_due(reg, "Europe/Moscow", policy, cal).date() == D(2028, 11, 15)


def test_pos_2030_defender_day_on_saturday() -> None:
    # Fri 22 Feb 2030; 23 Feb is a Saturday -> Mon 25 Feb off. 10 wd: Feb 26, 27, 28, Mar 1,
    # 4, 5, 6, 7 (8 Mar, Friday, is a holiday), 11, 12 -> Tue 12 Mar (the package: 11 Mar).
    policy = PolicyBook.load().resolve("pos")
    reg = dt.datetime(2030, 2, 22, 12, tzinfo=MSK)
    due = answer_due("pos", reg, "Europe/Moscow", policy, calendar=BusinessCalendar())
    assert due.isoformat() == "2030-03-12T23:59:59+03:00"


def test_incident_2031_womens_day_on_saturday() -> None:
    # Fri 7 Mar 2031 17:00: the day before Women's Day closes at 17:00 (art. 95), nothing is
    # left of it; Sat 8 Mar (holiday), Sun 9, Mon 10 (art. 112) off; 8 h from Tue 11 Mar
    # 09:00 = 17:00.
    policy = PolicyBook.load().resolve("incident")
    reg = dt.datetime(2031, 3, 7, 17, tzinfo=MSK)
    due = answer_due("incident", reg, "Europe/Moscow", policy, calendar=BusinessCalendar())
    assert due.isoformat() == "2031-03-11T17:00:00+03:00"


def test_fz59_2032_may_holidays_on_the_weekend() -> None:
    # Sat 3 Apr 2032 + 30 = Mon 3 May (27 days of April + 3 of May), the art. 112 day off for
    # Sat 1 May; "previous": Sun 2, Sat 1 (holiday), Fri 30 Apr.
    policy = PolicyBook.load().resolve("fz59")
    reg = dt.datetime(2032, 4, 3, 10, tzinfo=MSK)
    due = answer_due("fz59", reg, "Europe/Moscow", policy, calendar=BusinessCalendar())
    assert due.isoformat() == "2032-04-30T23:59:59+03:00"


# --- the override file wins ---------------------------------------------------------------


def test_override_file_beats_the_automatic_transfer(tmp_path: Path) -> None:
    """A decree that sends the day off for Sat 4 Nov 2028 elsewhere: the file lists Mon 6 Nov
    as working, so the fz59 deadline of Sat 7 Oct 2028 (day 30 = Mon 6 Nov) stays on 6 Nov."""
    path = tmp_path / "cal.toml"
    path.write_text("[years.2028]\nworking = [2028-11-06]\n", "utf-8")
    policy = PolicyBook.load().resolve("fz59")
    reg = dt.datetime(2028, 10, 7, 10, tzinfo=MSK)
    auto = BusinessCalendar()
    assert not auto.is_working_day(D(2028, 11, 6))
    cal = BusinessCalendar.from_file(path)
    assert cal.is_working_day(D(2028, 11, 6))
    due = answer_due("fz59", reg, "Europe/Moscow", policy, calendar=cal)
    assert due.isoformat() == "2028-11-06T23:59:59+03:00"
    assert cal.undecreed_years_used() == []  # the file covers 2028
    # 2029 is still automatic: Mon 5 Nov 2029 (Unity Day on Sunday) is off.
    assert not cal.is_working_day(D(2029, 11, 5))
    assert cal.undecreed_years_used() == [2029]


# --- visibility: CLI note and one log line per year ---------------------------------------


def test_cli_fz59_2028_with_note(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = _due(capsys, "--regime", "fz59", "--registered-at", "2028-10-07T10:00",
                           "--region", "77")
    assert code == 0
    assert data["due"] == "2028-11-03T23:59:59+03:00"  # worked in test_fz59_2028_unity_day
    assert "2028" in data["calendar_note"] and "art. 112" in data["calendar_note"]
    assert "calendar-file" in data["calendar_note"]
    assert err.startswith("appeals sla due: note: ") and "2028" in err


def test_cli_incident_2028(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _err = _due(capsys, "--regime", "incident", "--registered-at",
                            "2028-11-03T17:00", "--region", "77")
    assert code == 0
    assert data["due"] == "2028-11-07T17:00:00+03:00"  # worked in test_incident_2028_unity_day
    assert data["final_answer_due"] == "2028-11-15T23:59:59+03:00"
    assert "calendar_note" in data


def test_cli_new_year_not_transferred(capsys: pytest.CaptureFixture[str]) -> None:
    # Sat 11 Dec 2027 + 30 = Mon 10 Jan 2028 (20 days of December + 10 of January). 1 Jan
    # 2028 is a Saturday and 2 Jan a Sunday, but no automatic transfer exists for the New
    # Year holidays: 10 Jan is a working day and the deadline, with a note (2028 is unknown).
    code, data, _err = _due(capsys, "--regime", "fz59", "--registered-at", "2027-12-11T10:00",
                            "--region", "77")
    assert code == 0
    assert data["due"] == "2028-01-10T23:59:59+03:00"
    assert "2028" in data["calendar_note"]


def test_cli_no_note_for_known_years(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = _due(capsys, "--regime", "fz59", "--registered-at", "2027-10-07T10:00",
                           "--region", "77")
    assert code == 0 and err == ""
    assert "calendar_note" not in data


def test_cli_override_file_removes_note(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text("[years.2028]\nworking = [2028-11-06]\n", "utf-8")
    code, data, err = _due(capsys, "--regime", "fz59", "--registered-at", "2028-10-07T10:00",
                           "--region", "77", "--calendar-file", str(path))
    assert code == 0 and err == ""
    assert data["due"] == "2028-11-06T23:59:59+03:00"
    assert "calendar_note" not in data


def test_one_warning_per_year_without_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    policy = PolicyBook.load().resolve("incident")
    caplog.set_level(logging.WARNING, logger="workers.deadlines.calendar")
    for cal in (default_calendar(), BusinessCalendar(), BusinessCalendar()):
        for day in range(1, 28):
            reg = dt.datetime(2028, 10, day, 11, tzinfo=MSK)
            answer_due("incident", reg, "Europe/Moscow", policy, calendar=cal)
    answer_due("incident", dt.datetime(2026, 10, 5, 11, tzinfo=MSK), "Europe/Moscow", policy,
               calendar=BusinessCalendar())
    records = [r for r in caplog.records if r.name == "workers.deadlines.calendar"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "2028" in message and "art. 112" in message
    assert "2028-10" not in message  # nothing about the appeal, only the year


def test_cli_does_not_log(capsys: pytest.CaptureFixture[str],
                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workers.deadlines.calendar")
    code, _data, _err = _due(capsys, "--regime", "fz59", "--registered-at", "2028-10-07T10:00",
                             "--region", "77")
    assert code == 0
    assert [r for r in caplog.records if r.name == "workers.deadlines.calendar"] == []
