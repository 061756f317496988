"""Regional non-working days on top of the national production calendar.

Shipped data (``workers/deadlines/regional_calendar.toml``): Tatarstan (16) 30 August and
6 November, no weekend transfer; Bashkortostan (02) 11 October, moved off a weekend to the
next working day. Each deadline below is worked out by hand; 22 (Altai Krai) and 77
(Moscow) have no days off of their own and are the control.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines import cli
from workers.deadlines.calendar import (
    CALENDAR_FILE_ENV,
    BusinessCalendar,
    CalendarFileError,
    load_overrides,
    shipped_regions,
)
from workers.deadlines.compute import answer_due
from workers.deadlines.policies import PolicyBook

D = dt.date
ROOT = Path(__file__).resolve().parents[2]
MSK = ZoneInfo("Europe/Moscow")
BARNAUL = ZoneInfo("Asia/Barnaul")


@pytest.fixture(scope="module")
def national() -> BusinessCalendar:
    return BusinessCalendar()


def _write(tmp_path: Path, text: str, name: str = "cal.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


# --- the shipped data ------------------------------------------------------------------------

def test_shipped_tables_name_their_law() -> None:
    regions = shipped_regions()
    assert set(regions) >= {"16", "02"}
    tatarstan, bashkortostan = regions["16"], regions["02"]
    assert tatarstan.holidays == ((8, 30), (11, 6)) and tatarstan.transfer is False
    assert "1448-XII" in (tatarstan.source or "")
    # 24 December (Constitution Day of Bashkortostan) is a commemorative day, not a day off.
    assert bashkortostan.holidays == ((10, 11),) and bashkortostan.transfer is True
    assert "ВС-10/21" in (bashkortostan.source or "")
    for rules in regions.values():
        assert rules.source and "Закон" in rules.source, rules.code
        assert rules.years == {}, "no dated yearly holiday ships without its act"


@pytest.mark.parametrize(("region", "day", "off"), [
    ("16", D(2027, 8, 30), True),    # Mon: Republic Day of Tatarstan
    ("16", D(2026, 11, 6), True),    # Fri: Constitution Day of Tatarstan
    ("16", D(2026, 8, 31), False),   # 30 Aug 2026 is a Sunday: Tatarstan moves nothing
    ("16", D(2025, 9, 1), False),    # 30 Aug 2025 was a Saturday: nothing moved either
    ("16", D(2027, 11, 8), False),   # 6 Nov 2027 is a Saturday: Monday works
    ("02", D(2026, 10, 12), True),   # Sun 11 Oct 2026 -> Mon 12 Oct off
    ("02", D(2025, 10, 13), True),   # Sat 11 Oct 2025 -> Mon 13 Oct off (as published)
    ("02", D(2027, 10, 11), True),   # Mon: the day itself
    ("02", D(2026, 12, 24), False),  # Constitution Day of Bashkortostan: a working day
    ("02", D(2027, 8, 30), False),   # Tatarstan's day is not Bashkortostan's
    ("22", D(2027, 8, 30), False),
    ("22", D(2026, 11, 6), False),
])
def test_regional_days(national: BusinessCalendar, region: str, day: dt.date,
                       off: bool) -> None:
    assert national.for_region(region).is_working_day(day) is not off
    assert national.is_working_day(day) or day.weekday() >= 5  # the national day is working


def test_for_region_objects(national: BusinessCalendar) -> None:
    tatarstan = national.for_region("16")
    assert tatarstan.region == "16" and national.region is None
    # Aliases and int codes reach the same object; no table or no region: the national one.
    assert national.for_region("116") is tatarstan and national.for_region(16) is tatarstan
    assert tatarstan.for_region("02") is national.for_region("02")
    for code in ("22", "77", None, "", "999"):
        assert national.for_region(code) is national
    # Still the national objects' shared days: a national holiday is off in the region.
    assert not tatarstan.is_working_day(D(2026, 11, 4))
    assert tatarstan.overrides is national.overrides


def test_the_regional_year_is_built_once(national: BusinessCalendar,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cal = BusinessCalendar().for_region("16")
    calls: list[int] = []
    build = type(cal)._build_year

    def spy(self: BusinessCalendar, year: int) -> tuple[frozenset[dt.date], bool]:
        calls.append(year)
        return build(self, year)  # type: ignore[arg-type]

    monkeypatch.setattr(type(cal), "_build_year", spy)
    for _ in range(3):
        for day in range(1, 29):
            cal.is_working_day(D(2027, 2, day))
    assert calls == [2027]


# --- deadlines, table-driven ----------------------------------------------------------------

@pytest.mark.parametrize(("region", "tz", "registered", "due"), [
    # 10 working days from Wed 25 Aug 2027: 26, 27, 30, 31 Aug, 1-3, 6-8 Sep -> Wed 8 Sep;
    # without Mon 30 Aug (Tatarstan) the 10th is Thu 9 Sep.
    ("22", BARNAUL, dt.datetime(2027, 8, 25, 10), D(2027, 9, 8)),
    ("16", MSK, dt.datetime(2027, 8, 25, 10), D(2027, 9, 9)),
    # Over Sunday 30 Aug 2026 (not moved in Tatarstan): Wed 9 Sep in both regions.
    ("22", BARNAUL, dt.datetime(2026, 8, 26, 10), D(2026, 9, 9)),
    ("16", MSK, dt.datetime(2026, 8, 26, 10), D(2026, 9, 9)),
    # Bashkortostan, from Fri 10 Oct 2025: 13 Oct off (11 Oct was a Saturday) -> Mon 27 Oct;
    # nationally 13-17, 20-24 -> Fri 24 Oct.
    ("22", BARNAUL, dt.datetime(2025, 10, 10, 10), D(2025, 10, 24)),
    ("02", ZoneInfo("Asia/Yekaterinburg"), dt.datetime(2025, 10, 10, 10), D(2025, 10, 27)),
])
def test_pos_ten_working_days(national: BusinessCalendar, region: str, tz: ZoneInfo,
                              registered: dt.datetime, due: dt.date) -> None:
    policy = PolicyBook.load().resolve("pos", region=region)
    got = answer_due("pos", registered.replace(tzinfo=tz), tz.key, policy,
                     calendar=national.for_region(region))
    assert got == dt.datetime.combine(due, dt.time(23, 59, 59), tz)


@pytest.mark.parametrize(("region", "registered", "shift", "due"), [
    # 30 calendar days from Wed 7 Oct 2026: Fri 6 Nov, Constitution Day of Tatarstan.
    ("16", D(2026, 10, 7), "previous", D(2026, 11, 5)),  # Thu 5 Nov (4 Nov is federal)
    ("16", D(2026, 10, 7), "next", D(2026, 11, 9)),      # Sat, Sun, then Mon 9 Nov
    ("16", D(2026, 10, 7), "none", D(2026, 11, 6)),
    ("77", D(2026, 10, 7), "previous", D(2026, 11, 6)),  # a working Friday in Moscow
    ("77", D(2026, 10, 7), "next", D(2026, 11, 6)),
    # From Sat 31 Jul 2027: Mon 30 Aug 2027, Republic Day of Tatarstan.
    ("16", D(2027, 7, 31), "previous", D(2027, 8, 27)),  # Fri 27 Aug
    ("16", D(2027, 7, 31), "next", D(2027, 8, 31)),      # Tue 31 Aug
    ("77", D(2027, 7, 31), "previous", D(2027, 8, 30)),
])
def test_fz59_last_day_on_a_regional_holiday(national: BusinessCalendar, region: str,
                                             registered: dt.date, shift: str,
                                             due: dt.date) -> None:
    policy = dataclasses.replace(PolicyBook.load().resolve("fz59", region=region), shift=shift)
    reg = dt.datetime.combine(registered, dt.time(11), MSK)
    got = answer_due("fz59", reg, "Europe/Moscow", policy, calendar=national.for_region(region))
    assert got == dt.datetime.combine(due, dt.time(23, 59, 59), MSK)


@pytest.mark.parametrize(("region", "registered", "due"), [
    # 8 working hours from Thu 5 Nov 2026 15:00: 3 h Thu + 5 h Fri -> Fri 14:00. In Tatarstan
    # Thu 5 Nov is the day before Constitution Day, shortened to 17:00 (art. 95), and Fri
    # 6 Nov is off: 2 h Thu + 6 h Mon -> Mon 9 Nov 15:00.
    ("77", dt.datetime(2026, 11, 5, 15), dt.datetime(2026, 11, 6, 14)),
    ("16", dt.datetime(2026, 11, 5, 15), dt.datetime(2026, 11, 9, 15)),
    # Registered at 17:30: 30 min before closing in Moscow -> Fri 16:30; after the shortened
    # day's 17:00 in Tatarstan -> Mon 9 Nov 09:00 + 8 h = 17:00.
    ("77", dt.datetime(2026, 11, 5, 17, 30), dt.datetime(2026, 11, 6, 16, 30)),
    ("16", dt.datetime(2026, 11, 5, 17, 30), dt.datetime(2026, 11, 9, 17)),
])
def test_incident_working_hours_over_6_november(national: BusinessCalendar, region: str,
                                                registered: dt.datetime,
                                                due: dt.datetime) -> None:
    policy = PolicyBook.load().resolve("incident", region=region)
    reg = registered.replace(tzinfo=MSK)
    got = answer_due("incident", reg, "Europe/Moscow", policy,
                     calendar=national.for_region(region))
    assert got == due.replace(tzinfo=MSK)


@pytest.mark.parametrize(("region", "day", "shortened"), [
    ("16", D(2025, 8, 29), True),    # Fri before Sat 30 Aug 2025, Republic Day
    ("16", D(2026, 11, 5), True),    # Thu before Fri 6 Nov 2026, Constitution Day
    ("16", D(2026, 11, 3), True),    # the national rule holds in the region (4 Nov)
    ("16", D(2026, 8, 28), False),   # Fri; 30 Aug 2026 is a Sunday, 29 Aug lies between
    ("16", D(2026, 11, 6), False),   # the holiday itself
    ("02", D(2025, 10, 10), True),   # Fri before Sat 11 Oct 2025, Republic Day
    ("02", D(2026, 10, 9), False),   # Fri; 11 Oct 2026 a Sunday; Mon 12 Oct is a transfer
    ("77", D(2025, 8, 29), False),   # Moscow: no holiday of its own
    ("77", D(2026, 11, 5), False),
])
def test_the_day_before_a_regional_holiday_is_shortened(national: BusinessCalendar,
                                                        region: str, day: dt.date,
                                                        shortened: bool) -> None:
    """Labour Code art. 95 holds for every non-working holiday, a region's own included
    (Tatarstan's Ministry of Labour shortens 29 Aug 2025 and 5 Nov 2026)."""
    assert national.for_region(region).is_shortened(day) is shortened
    assert national.is_shortened(day) is (day == D(2026, 11, 3))  # only the federal one


def test_the_day_before_a_year_table_holiday_is_shortened(tmp_path: Path) -> None:
    # A made-up date for the test (Kurban Bayram is dated by the Rais each year).
    path = _write(tmp_path, '[regions."16".years.2026]\nsource = "test"\n'
                            "non_working = [2026-05-27]\nworking = [2026-11-06]\n")
    national = BusinessCalendar.from_file(path)
    tatarstan = national.for_region("16")
    assert tatarstan.is_shortened(D(2026, 5, 26)) and not national.is_shortened(D(2026, 5, 26))
    # 6 Nov 2026 stays working by the year table: 5 Nov is an ordinary day then.
    assert not tatarstan.is_shortened(D(2026, 11, 5))


# --- the override file --------------------------------------------------------------------

def test_a_year_table_adds_and_removes_days(tmp_path: Path) -> None:
    # Made-up days for the test, not a real decree.
    path = _write(tmp_path, '[regions."16".years.2027]\nsource = "test"\n'
                            "non_working = [2027-03-10]\nworking = [2027-08-30]\n")
    cal = BusinessCalendar.from_file(path).for_region("16")
    assert not cal.is_working_day(D(2027, 3, 10))
    assert cal.is_working_day(D(2027, 8, 30))        # the year table wins over the law
    assert cal.is_working_day(D(2027, 11, 8))        # untouched days as before
    assert not cal.is_working_day(D(2026, 11, 6))    # other years keep the shipped holidays
    assert cal.regional_years_missing() == [2026]    # 2027 has its table, 2026 has none
    assert BusinessCalendar.from_file(path).is_working_day(D(2027, 3, 10))  # national


def test_a_file_table_replaces_only_the_keys_it_names(tmp_path: Path) -> None:
    path = _write(tmp_path, '[regions."16"]\nholidays = ["08-30"]\n'
                            '[regions."02"]\ntransfer = false\n'
                            '[regions."14"]\nsource = "test"\nholidays = ["12-31"]\n'
                            "transfer = true\n")
    base = BusinessCalendar.from_file(path)
    tatarstan = base.for_region("16")
    assert tatarstan.is_working_day(D(2026, 11, 6))          # 06-11 no longer listed
    assert not tatarstan.is_working_day(D(2027, 8, 30))
    assert tatarstan.regions["16"].moving_holidays           # kept from the package
    assert base.for_region("02").is_working_day(D(2026, 10, 12))  # no transfer now
    # A region the package has nothing for, with a transfer across the new year: Sun 31 Dec
    # 2023 -> 1-8 Jan are national holidays -> Tue 9 Jan 2024 off.
    sakha = base.for_region("14")
    assert not sakha.is_working_day(D(2024, 1, 9))
    assert sakha.is_working_day(D(2024, 1, 10))
    assert not sakha.is_working_day(D(2027, 12, 31))
    assert sakha.regional_years_missing() == []               # no moving_holidays declared


def test_regions_from_env_reach_the_default_calendar(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.deadlines.compute import default_calendar

    path = _write(tmp_path, "regions:\n  '16':\n    years:\n      2027:\n"
                            "        non_working: [2027-03-10]\n", "cal.yaml")
    monkeypatch.setenv(CALENDAR_FILE_ENV, str(path))
    default_calendar.cache_clear()
    assert not default_calendar().for_region("16").is_working_day(D(2027, 3, 10))


@pytest.mark.parametrize(("text", "message"), [
    ('[regions."88"]\nholidays = ["08-30"]\n', "unknown region code '88'"),
    ('[regions."99"]\nholidays = ["08-30"]\n', "canonical two-digit code \"77\""),  # alias
    ('[regions."00"]\nholidays = []\n', "unknown region code '00'"),
    ('[regions."2"]\nholidays = ["10-11"]\n', "canonical two-digit code \"02\""),
    ('[regions."16"]\nholidays = ["8-30"]\n', "expected a yearly date MM-DD"),
    ('[regions."16"]\nholidays = ["02-29"]\n', "expected a yearly date MM-DD"),
    ('[regions."16"]\nholidays = ["13-01"]\n', "expected a yearly date MM-DD"),
    ('[regions."16"]\nholidays = [2026-08-30]\n', "expected a yearly date MM-DD"),
    ('[regions."16"]\nholidays = "08-30"\n', "must be a list"),
    ('[regions."16"]\ntransfer = "yes"\n', "must be true or false"),
    ('[regions."16"]\ndays_off = []\n', "unknown key"),
    ('[regions."16"]\nsource = 5\n', "must be a string"),
    ("regions = 5\n", "'regions' must be a table"),
    ('[regions."16".years.2026]\nnon_working = [2027-03-10]\n', "not in year 2026"),
    ('[regions."16".years.2026]\nnon_working = ["10.03.2026"]\n', "expected a date"),
    ('[regions."16".years.2026]\nnon_working = [2026-03-20]\nworking = [2026-03-20]\n',
     "2026-03-20 listed as both working and non-working"),
    ('[regions."16".years.2026]\nholidays = [2026-03-20]\n', "unknown key"),
    ('[regions."16".years.soon]\nnon_working = []\n', "year must be an integer"),
    ("[states]\n", "unknown top-level"),
])
def test_regional_validation(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CalendarFileError, match=message.replace("(", r"\(")) as info:
        load_overrides(path)
    assert str(path) in str(info.value)
    if "regions" in text and "'regions'" not in message:
        assert "regions." in str(info.value)  # the message names the table


def test_example_regional_tables_parse(tmp_path: Path) -> None:
    example = ROOT / "workers/deadlines/calendar.example.toml"
    lines = [line.removeprefix("#   ") for line in example.read_text("utf-8").splitlines()
             if line.startswith("#   ")]
    text = "\n".join(lines).replace('"MM-DD"', '"08-30"').replace("xx-xx", "03-10")
    overrides = load_overrides(_write(tmp_path, text))
    assert set(overrides.regions) == {"16", "14"}
    assert 2027 in overrides.regions["16"].years


# --- appeals sla due --region ---------------------------------------------------------------

def _due(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str], str]:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def test_cli_region_16_counts_republic_day(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = _due(capsys, "--regime", "pos", "--registered-at", "2027-08-25T10:00",
                           "--region", "16")
    assert code == 0
    assert data["due"] == "2027-09-09T23:59:59+03:00"
    assert data["calendar"] == "regional:16"
    # The Bayrams of 2027 are not loaded: said in the JSON and on stderr.
    assert "Kurban Bayram" in data["regional_calendar_note"]
    assert '[regions."16".years.N]' in data["regional_calendar_note"]
    assert "note: region 16" in err
    code, data, err = _due(capsys, "--regime", "pos", "--registered-at", "2027-08-25T10:00",
                           "--region", "22")
    assert code == 0 and err == ""
    assert data["due"] == "2027-09-08T23:59:59+07:00"
    assert data["calendar"] == "national" and "regional_calendar_note" not in data


def test_cli_region_16_fz59_and_incident(capsys: pytest.CaptureFixture[str]) -> None:
    _, data, _ = _due(capsys, "--regime", "fz59", "--registered-at", "2026-10-07T11:00",
                      "--region", "16")
    assert data["due"] == "2026-11-05T23:59:59+03:00"
    _, data, _ = _due(capsys, "--regime", "fz59", "--registered-at", "2026-10-07T11:00",
                      "--region", "16", "--shift", "next")
    assert data["due"] == "2026-11-09T23:59:59+03:00"
    _, data, _ = _due(capsys, "--regime", "incident", "--registered-at", "2026-11-05T15:00",
                      "--region", "116")
    assert data["region"] == "16" and data["calendar"] == "regional:16"
    # Thu 5 Nov closes at 17:00 (the day before Constitution Day): 2 h, then 6 h on Mon 9 Nov;
    # the warning after 6 of the 8 hours: 2 h Thu + 4 h Mon.
    assert data["due"] == "2026-11-09T15:00:00+03:00"
    assert data["warning_at"] == "2026-11-09T13:00:00+03:00"


def test_cli_region_year_table_from_calendar_file(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    # A made-up day off on Tue 31 Aug 2027 for the test: 10th working day -> Fri 10 Sep.
    path = _write(tmp_path, '[regions."16".years.2027]\nnon_working = [2027-08-31]\n')
    code, data, err = _due(capsys, "--regime", "pos", "--registered-at", "2027-08-25T10:00",
                           "--region", "16", "--calendar-file", str(path))
    assert code == 0 and err == ""
    assert data["due"] == "2027-09-10T23:59:59+03:00"
    assert "regional_calendar_note" not in data


def test_cli_bad_region_table_exit_2(capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    path = _write(tmp_path, '[regions."88"]\nholidays = ["08-30"]\n')
    code, data, err = _due(capsys, "--regime", "pos", "--registered-at", "2027-08-25T10:00",
                           "--region", "16", "--calendar-file", str(path))
    assert code == 2 and data == {}
    assert "unknown region code '88'" in err


def test_appeals_command_region_16() -> None:
    """Through the installed ``appeals`` entry point, as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree, whatever is installed
    env.pop(CALENDAR_FILE_ENV, None)
    env.pop("APPEALS_POLICY_FILE", None)
    appeals = Path(sys.executable).with_name("appeals")
    argv = ([str(appeals)] if appeals.exists() else [sys.executable, "-m", "workers.cli"])
    done = subprocess.run(
        [*argv, "sla", "due", "--regime", "pos", "--registered-at", "2027-08-25T10:00",
         "--region", "16"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["due"] == "2027-09-09T23:59:59+03:00"
    assert "Uraza Bayram" in done.stderr
