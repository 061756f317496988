"""Business calendar: what the holidays package knows, and the yearly override file."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from workers.deadlines import calendar as calendar_module
from workers.deadlines.calendar import (
    CALENDAR_FILE_ENV,
    BusinessCalendar,
    CalendarFileError,
    decree_working_weekends,
    iter_days,
    load_overrides,
)
from workers.deadlines.compute import answer_due, default_calendar
from workers.deadlines.policies import PolicyBook

D = dt.date
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar()


@pytest.mark.parametrize("day", [D(2024, 4, 27), D(2024, 11, 2), D(2024, 12, 28),
                                 D(2025, 11, 1), D(2027, 2, 20)])
def test_working_saturdays(cal: BusinessCalendar, day: dt.date) -> None:
    assert day.weekday() == 5
    assert cal.is_working_day(day)


@pytest.mark.parametrize("day", [
    D(2024, 1, 8), D(2024, 4, 29), D(2024, 4, 30), D(2024, 12, 30), D(2024, 12, 31),
    D(2025, 1, 8), D(2025, 5, 2), D(2025, 5, 8), D(2025, 6, 13), D(2025, 11, 3),
    D(2025, 12, 31), D(2026, 1, 9), D(2026, 3, 9), D(2026, 5, 11), D(2026, 6, 12),
    D(2026, 11, 4), D(2026, 12, 31), D(2027, 2, 22), D(2027, 6, 14), D(2027, 11, 5),
])
def test_weekday_days_off(cal: BusinessCalendar, day: dt.date) -> None:
    assert day.weekday() < 5
    assert not cal.is_working_day(day)


def test_no_working_saturday_in_2026(cal: BusinessCalendar) -> None:
    days = [D(2026, 1, 1) + dt.timedelta(i) for i in range(365)]
    assert [d for d in days if d.weekday() >= 5 and cal.is_working_day(d)] == []


def test_add_working_days_excludes_start(cal: BusinessCalendar) -> None:
    assert cal.add_working_days(D(2026, 3, 10), 0) == D(2026, 3, 10)
    assert cal.add_working_days(D(2026, 3, 10), 1) == D(2026, 3, 11)
    assert cal.add_working_days(D(2026, 3, 6), 1) == D(2026, 3, 10)  # weekend + 9 Mar off
    assert cal.working_days_between(D(2026, 3, 6), D(2026, 3, 10)) == 1
    with pytest.raises(ValueError):
        cal.add_working_days(D(2026, 3, 10), -1)


def test_shift_modes(cal: BusinessCalendar) -> None:
    sunday = D(2026, 1, 4)
    assert cal.shift(sunday, "previous") == D(2025, 12, 30)
    assert cal.shift(sunday, "next") == D(2026, 1, 12)
    assert cal.shift(sunday, "none") == sunday
    assert cal.shift(D(2026, 1, 12), "previous") == D(2026, 1, 12)
    with pytest.raises(ValueError, match="shift must be"):
        cal.shift(sunday, "sideways")  # type: ignore[arg-type]


def test_add_working_hours_naive_and_aware(cal: BusinessCalendar) -> None:
    naive = dt.datetime(2026, 3, 10, 17, 0)
    assert cal.add_working_hours(naive, 2) == dt.datetime(2026, 3, 11, 10, 0)
    aware = naive.replace(tzinfo=MSK)
    got = cal.add_working_hours(aware, dt.timedelta(hours=2), dt.time(8), dt.time(17))
    # 17:00 is closing time for 08:00-17:00 hours: the clock starts Wed 08:00.
    assert got == dt.datetime(2026, 3, 11, 10, 0, tzinfo=MSK)
    with pytest.raises(ValueError):
        cal.add_working_hours(naive, -1)


def _write(tmp_path: Path, text: str, name: str = "cal.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_override_extra_holiday_moves_pos_deadline(tmp_path: Path) -> None:
    # Baseline (hand-worked in test_deadline_cases): 10 wd from 30 Apr 2026 = Mon 18 May.
    path = _write(tmp_path, '[years.2026]\nsource = "made-up decree"\nnon_working = [2026-05-18]\n')
    cal = BusinessCalendar.from_file(path)
    assert not cal.is_working_day(D(2026, 5, 18))
    policy = PolicyBook.load().resolve("pos")
    reg = dt.datetime(2026, 4, 30, 10, tzinfo=MSK)
    assert answer_due("pos", reg, "Europe/Moscow", policy, calendar=cal) == \
        dt.datetime(2026, 5, 19, 23, 59, 59, tzinfo=MSK)
    assert answer_due("pos", reg, "Europe/Moscow", policy) == \
        dt.datetime(2026, 5, 18, 23, 59, 59, tzinfo=MSK)


def test_override_extra_working_saturday(tmp_path: Path) -> None:
    # 4-8 May (5), 12-15 May (9), then the made-up working Saturday 16 May is the 10th.
    path = _write(tmp_path, 'years.2026.working = ["2026-05-16"]\n')
    cal = BusinessCalendar.from_file(path)
    policy = PolicyBook.load().resolve("pos")
    reg = dt.datetime(2026, 4, 30, 10, tzinfo=MSK)
    assert answer_due("pos", reg, "Europe/Moscow", policy, calendar=cal).date() == D(2026, 5, 16)


def test_override_moves_fz59_shift(tmp_path: Path) -> None:
    # 11 Mar (Barnaul) + 30 = Fri 10 Apr; declared off -> previous working day Thu 9 Apr.
    path = _write(tmp_path, "[years.2026]\nnon_working = [2026-04-10]\n")
    cal = BusinessCalendar.from_file(path)
    policy = PolicyBook.load().resolve("fz59")
    reg = dt.datetime(2026, 3, 10, 20, tzinfo=dt.UTC)
    due = answer_due("fz59", reg, "Asia/Barnaul", policy, calendar=cal)
    assert due.isoformat() == "2026-04-09T23:59:59+07:00"


def test_override_from_env_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "years:\n  2026:\n    non_working: [2026-05-18]\n", "cal.yaml")
    monkeypatch.setenv(CALENDAR_FILE_ENV, str(path))
    default_calendar.cache_clear()
    assert not default_calendar().is_working_day(D(2026, 5, 18))
    assert BusinessCalendar.from_env().overrides.path == str(path)


@pytest.mark.parametrize(("text", "message"), [
    ("[years.2026]\nnon_working = [2027-01-11]\n", "not in year 2026"),
    ("[years.2026]\nnon_working = [2026-05-18]\nworking = [2026-05-18]\n", "both"),
    ("[years.2026]\nholidays = [2026-05-18]\n", "unknown key"),
    ("[years.2026]\nnon_working = [\"18.05.2026\"]\n", "expected a date"),
    ("[years.2026]\nnon_working = \"2026-05-18\"\n", "must be a list"),
    ("[years.twenty]\nnon_working = []\n", "year must be an integer"),
    ("[calendar]\n", "unknown top-level"),
    ("[years.2026\n", "invalid TOML"),
    ("[years.2026]\nnon_working = [2026-05-18T10:00:00]\n", "date-time"),
])
def test_override_validation(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CalendarFileError, match=message) as info:
        load_overrides(path)
    assert str(path) in str(info.value)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match="cannot read"):
        BusinessCalendar.from_file(tmp_path / "absent.toml")


def test_example_file_parses(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "workers/deadlines/calendar.example.toml"
    assert load_overrides(example).non_working == frozenset()
    uncommented = "\n".join(line.removeprefix("# ") for line in
                            example.read_text("utf-8").splitlines() if line.startswith("# ["))
    # A made-up decree day: Tue 2 May 2028.
    text = uncommented + '\nnon_working = [2028-05-02]\n'
    cal = BusinessCalendar.from_file(_write(tmp_path, text))
    assert not cal.is_working_day(D(2028, 5, 2))
    assert cal.decree_known(2028)
    # Art. 112 (4 Nov 2028 is a Saturday) applies with or without the file.
    assert not cal.is_working_day(D(2028, 11, 6))
    assert not BusinessCalendar().is_working_day(D(2028, 11, 6))


# -- Labour Code art. 95: the working day before a holiday is an hour shorter (review of
# session 15; working-hour deadlines came out an hour early on those days).

@pytest.mark.parametrize(("day", "shortened"), [
    (D(2026, 4, 30), True), (D(2026, 5, 8), True), (D(2026, 6, 11), True),
    (D(2026, 11, 3), True), (D(2025, 3, 7), True), (D(2027, 4, 30), True),
    (D(2026, 2, 20), False),  # Fri; Sat 21 and Sun 22 lie between it and 23 Feb
    (D(2026, 3, 6), False),   # Fri; 8 March 2026 is a Sunday
    (D(2026, 5, 7), False), (D(2026, 11, 4), False),  # an ordinary day; the holiday itself
])
def test_the_day_before_a_holiday_is_shortened(cal: BusinessCalendar, day: dt.date,
                                               shortened: bool) -> None:
    assert cal.is_shortened(day) is shortened


def test_a_shortened_day_closes_an_hour_early(cal: BusinessCalendar) -> None:
    at = dt.datetime(2026, 4, 30, 16, tzinfo=MSK)
    # 1 h left on Thu 30 Apr 2026 (to 17:00); 1-3 May off; 3 h more on Mon 4 May.
    assert cal.add_working_hours(at, 4) == dt.datetime(2026, 5, 4, 12, tzinfo=MSK)
    assert cal.working_hours_between(at, dt.datetime(2026, 4, 30, 18, tzinfo=MSK)) \
        == dt.timedelta(hours=1)
    # Registered at 17:30 on it: after hours, the clock starts on the next working day.
    late = dt.datetime(2026, 4, 30, 17, 30, tzinfo=MSK)
    assert cal.add_working_hours(late, 1) == dt.datetime(2026, 5, 4, 10, tzinfo=MSK)


def test_a_decrees_other_shortened_days_come_from_the_override_file(tmp_path: Path) -> None:
    """A decree newer than the package says which of its working Saturdays are shortened: the
    file gives no pairs of swapped days, so ``shortened`` lists them (a made-up 2028 decree:
    Sat 4 Nov 2028 is Unity Day itself, so take Sat 28 Oct worked for Fri 3 Nov)."""
    path = tmp_path / "calendar.toml"
    path.write_text('[years.2028]\nworking = [2028-10-28]\nnon_working = [2028-11-03]\n'
                    'shortened = [2028-10-28]\n', encoding="utf-8")
    loaded = BusinessCalendar(load_overrides(path))
    assert not BusinessCalendar().is_shortened(D(2028, 10, 28))  # a Saturday off there
    assert loaded.is_shortened(D(2028, 10, 28))
    assert loaded.for_region("22").is_shortened(D(2028, 10, 28))
    at = dt.datetime(2028, 10, 28, 16, tzinfo=MSK)
    # 1 h to 17:00; Sun 29 Oct; Mon 30 Oct 09:00 + 1 h.
    assert loaded.add_working_hours(at, 2) == dt.datetime(2028, 10, 30, 10, tzinfo=MSK)


# -- Working Saturdays (review of the deadlines area): a decree's working Saturday worked
# in place of the day before a holiday is shortened as that day was; 2025 came to 1973 hours
# (published: 1972) and a registration at 17:30 on Sat 1 Nov 2025 counted half an hour.

@pytest.mark.parametrize(("day", "shortened"), [
    (D(2025, 11, 1), True),   # Sat, worked for Mon 3 Nov (the day before 4 Nov)
    (D(2027, 2, 20), True),   # Sat, worked for Mon 22 Feb (the day before 23 Feb)
    (D(2021, 2, 20), True),   # the same scheme in 2021
    (D(2024, 11, 2), True),   # Sat, worked for Tue 30 Apr (the day before 1 May)
    (D(2018, 12, 29), True),  # Sat, worked for Mon 31 Dec (the day before 1 January)
    (D(2020, 12, 31), True),  # 31 December is shortened when it is worked
    (D(2024, 12, 28), False),  # Sat, worked for Mon 30 Dec, no pre-holiday day (31 Dec off)
    (D(2024, 4, 27), False),   # Sat, worked for Mon 29 Apr (30 Apr was the pre-holiday day)
    (D(2025, 5, 7), False),    # Wed; 8 May is a transferred day off, not a holiday
    (D(2025, 12, 30), False),  # Tue; 31 Dec 2025 is a transferred day off
    (D(2026, 12, 30), False),  # Wed; likewise in 2026
    (D(2025, 11, 3), False),   # the day off itself
])
def test_a_decrees_working_saturday_carries_the_shortening(cal: BusinessCalendar,
                                                           day: dt.date,
                                                           shortened: bool) -> None:
    assert cal.is_shortened(day) is shortened


@pytest.mark.parametrize(("year", "hours"), [
    (2015, 1971), (2016, 1974), (2017, 1973), (2018, 1970), (2019, 1970), (2020, 1979),
    (2021, 1972), (2022, 1973), (2023, 1973), (2024, 1979), (2025, 1972), (2026, 1972),
])
def test_the_published_norm_of_working_hours(cal: BusinessCalendar, year: int,
                                             hours: int) -> None:
    """The Ministry of Labour's norm for a 40-hour week: 8 hours a working day, 7 on a
    shortened one. The last working day before a run of days off ending in a holiday is
    not shortened as such (Fri 6 Mar 2026, Wed 7 May 2025): that gave 1969-1970 a year."""
    days = [D(year, 1, 1) + dt.timedelta(n) for n in range(366)]
    norm = sum(8 - cal.is_shortened(d) for d in days
               if d.year == year and cal.is_working_day(d))
    assert norm == hours


def test_shortened_days_of_2025_and_2026(cal: BusinessCalendar) -> None:
    def shortened(year: int) -> list[dt.date]:
        return [d for d in iter_days(D(year, 1, 1), D(year, 12, 31)) if cal.is_shortened(d)]

    assert shortened(2025) == [D(2025, 3, 7), D(2025, 4, 30), D(2025, 6, 11), D(2025, 11, 1)]
    assert shortened(2026) == [D(2026, 4, 30), D(2026, 5, 8), D(2026, 6, 11), D(2026, 11, 3)]
    assert sum(map(cal.is_working_day, iter_days(D(2026, 1, 1), D(2026, 12, 31)))) == 247


def test_the_swaps_read_from_the_package_match_its_labels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback (the labels of the substituted days) agrees with the table, so a package
    that reorganises its table keeps the working Saturdays' shortening."""
    tables = {year: decree_working_weekends(year) for year in range(2013, 2029)}
    assert tables[2025] == {D(2025, 11, 1): D(2025, 11, 3)}
    assert tables[2024] == {D(2024, 4, 27): D(2024, 4, 29), D(2024, 11, 2): D(2024, 4, 30),
                            D(2024, 12, 28): D(2024, 12, 30)}
    assert tables[2026] == {} and tables[2028] == {}
    decree_working_weekends.cache_clear()
    # The package keeps its loaded RU class; only the import of the table fails.
    holidays.country_holidays("RU", years=2025)
    monkeypatch.setitem(sys.modules, "holidays.countries.russia", None)
    probed: list[int] = []
    probe = calendar_module._probe_working_weekends

    def spy(year: int) -> dict[dt.date, dt.date]:
        probed.append(year)
        return probe(year)

    monkeypatch.setattr(calendar_module, "_probe_working_weekends", spy)
    try:
        assert {year: decree_working_weekends(year) for year in tables} == tables
    finally:
        decree_working_weekends.cache_clear()
    assert probed == list(tables)


def test_registered_late_on_a_shortened_saturday() -> None:
    """Region 77, Sat 20 Feb 2027 17:30: after the shortened day's 17:00; 21 Sun, 22-23 Feb
    off; 8 working hours from Wed 24 Feb 09:00."""
    book = PolicyBook.load()
    reg = dt.datetime(2027, 2, 20, 17, 30, tzinfo=MSK)
    assert answer_due("incident", reg, "Europe/Moscow", book.resolve("incident", region="77"),
                      calendar=BusinessCalendar()) == dt.datetime(2027, 2, 24, 17, tzinfo=MSK)


def test_a_short_working_day_is_not_shortened_below_an_hour(cal: BusinessCalendar) -> None:
    """09:00-10:30 closed at 09:30 on a shortened day, less than 09:00-10:00 kept (10:00)."""
    day = D(2026, 4, 30)
    for end, closes in ((dt.time(10, 0), dt.time(10, 0)), (dt.time(10, 30), dt.time(10, 30)),
                        (dt.time(11, 0), dt.time(10, 0)), (dt.time(18, 0), dt.time(17, 0))):
        assert cal.closing(day, end, dt.time(9, 0)).time() == closes, end
