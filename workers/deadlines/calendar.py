"""Russian production calendar (производственный календарь) for deadline arithmetic.

Why this exists: SLA deadlines for ``pos`` and ``incident`` are counted in working days or
working hours, and a ``fz59`` deadline that lands on a day off is shifted (Civil Code
art. 193). Whether a day is a working day in Russia is not "Monday to Friday minus fixed
holidays": the Government moves days off every year by decree, which creates *working
Saturdays* (e.g. 27 April, 2 November and 28 December 2024). ``holidays.RU`` carries
those decrees (its ``is_working_day`` honours ``weekend_workdays``), but the decree for the
next year comes out in the autumn, often after the installed package was released. So a
yearly override file may add extra non-working days and extra working days; the file wins
over the package.

Override file (TOML, or YAML with the same shape), path from the argument or from the
environment variable ``APPEALS_CALENDAR_FILE``::

    # Government decree of 2026-09-xx "On the transfer of days off in 2027"
    [years.2027]
    source = "Decree No. ... of ..."       # optional, free text, for humans
    non_working = [2027-01-11, "2027-02-22"]  # TOML dates or ISO strings
    working = [2027-02-20]                  # e.g. a working Saturday

Every date must belong to the year it is listed under and may not be in both lists.
Anything else (unknown keys, wrong types) is rejected with a message naming the file and
the offending key, because a silently ignored calendar typo moves legal deadlines.

Regional days off. Several federal subjects have non-working holidays of their own by
regional law (Tatarstan: Republic Day 30 August, Constitution Day 6 November, Uraza and
Kurban Bayram), and a working-day deadline of an authority there counts them. They live
in ``[regions."<code>"]`` tables (the code of a federal subject in ``workers/geo``):
the packaged ``regional_calendar.toml`` ships what a named regional law fixes, and the
override file may add or replace regions in the same shape::

    [regions."16"]
    source = "Law of the Republic of Tatarstan of 19.02.1992 No. 1448-XII"
    holidays = ["08-30", "11-06"]   # MM-DD, a day off every year
    transfer = false                # a holiday on a weekend gives no day off elsewhere
    moving_holidays = "Uraza Bayram, Kurban Bayram (decree of the Rais each year)"

    [regions."16".years.2027]       # one year's decree / production calendar
    source = "Decree of the Rais of Tatarstan of ... No. ..."
    non_working = [2027-03-10]      # days off of that year (a transferred day included)
    working = []                    # days that stay working (wins over everything)

The fixed ``holidays`` are days off as they fall. ``transfer = true`` applies the rule
of Labour Code art. 112 part 2 to them (a holiday on a Saturday or Sunday that is off
nationally gives a day off on the next working day); it is off by default because the
regions differ (Tatarstan does not move 30 August from a Sunday; Bashkortostan moved its
11 October from Saturday to Monday in 2014 and 2025), so a region says so only with a
source. Holidays whose date a regional act sets each year (the Muslim Bayrams) are not
computed: the year's table lists them; ``moving_holidays`` names them, and a result that
consulted a year with no ``[regions.R.years.N]`` table is flagged
(:meth:`BusinessCalendar.regional_years_missing`, a ``regional_calendar_note`` in
``appeals sla due``, one log warning per region and year). A region table of the
override file replaces the packaged keys it names; its year tables replace the packaged
year tables of the same years. A regional calendar is :meth:`BusinessCalendar.for_region`
of the national one; callers without a region keep the national object.

Years without a known decree. ``holidays`` lists the transfers of each year by hand (the
decree's substituted days and the automatic Labour Code art. 112 transfers); 0.109 has them
only up to 2027 and its RU class has no "observed" rule to switch on, so for 2028 it
silently kept Monday 6 November a working day although 4 November 2028 (Unity Day) is a
Saturday. For a year later than the last year the installed package has transfer data for
(:func:`last_decree_year`, read from the package's tables, not hard-coded), this module
applies Labour Code art. 112 part 2 itself: a non-working public holiday of art. 112 part 1
other than 1-8 January that falls on a Saturday or Sunday gives a day off on the next
working day after it (4 Nov 2028, a Saturday, makes Monday 6 Nov a day off). The weekend
coincidences of the New Year holidays are *not* moved: the Government's decree moves them
to dates nobody can predict, and so does it for working Saturdays. Such a year is flagged
(:meth:`BusinessCalendar.undecreed_years_used`; ``appeals sla due`` prints a
``calendar_note``) and logged once per year per process, until the year appears in the
override file (a ``[years.N]`` table, even an empty one, means "the decree for N is
loaded"). The override file still wins over everything, the art. 112 days included, and
that matters: a decree may send such a day off elsewhere (2025: the days off for Sun 23 Feb
and Sat 8 Mar went to 8 May and 13 Jun, so Mon 24 Feb and Mon 10 Mar were working days).
When loading a decree that does so, list the art. 112 Monday under ``working``.

Shortened days (Labour Code art. 95: the working day immediately before a non-working
holiday is an hour shorter; :meth:`BusinessCalendar.is_shortened`): the day before an
art. 112 holiday, the working Saturday a known decree put in place of such a day (Sat 1 Nov
2025 for Mon 3 Nov; :func:`decree_working_weekends`), and the days a year table lists under
``shortened`` (the same Saturdays of a decree newer than the package); in a regional
calendar also the day before one of the region's own holidays (art. 95 holds for them too:
Tatarstan shortens Thu 5 Nov 2026, before its Constitution Day). Not the last working
day before a weekend or a transferred day off that precedes a holiday (Fri 6 Mar 2026, Wed
7 May 2025): the published norms (1972 hours in 2025 and 2026) count them in full.

Period limits. Day counts above :data:`MAX_PERIOD_DAYS` and working-hour budgets above
:data:`MAX_PERIOD_HOURS` are refused with ``ValueError``: no SLA is anywhere near them (the
longest statutory period is 30 + 30 days), and an absurd amount from a policy file or the
command line would otherwise run for seconds and end in an ``OverflowError``.

Everything here works on *local calendar dates* and naive-or-aware *local* wall times;
converting from UTC into the region's zone is the caller's job (see ``compute.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
import re
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import holidays

__all__ = [
    "ART112_HOLIDAYS",
    "CALENDAR_FILE_ENV",
    "MAX_PERIOD_DAYS",
    "MAX_PERIOD_HOURS",
    "BusinessCalendar",
    "CalendarFileError",
    "CalendarOverrides",
    "RegionRules",
    "RegionYear",
    "ShiftMode",
    "art112_transfers",
    "day_end",
    "decree_working_weekends",
    "last_decree_year",
    "load_overrides",
    "missing_decree_note",
    "missing_regional_note",
    "shipped_regions",
    "valid_hours",
]

log = logging.getLogger(__name__)

CALENDAR_FILE_ENV = "APPEALS_CALENDAR_FILE"

ShiftMode = Literal["previous", "next", "none"]
SHIFT_MODES: tuple[ShiftMode, ...] = ("previous", "next", "none")

# A year never has more than ~10 consecutive days off (New Year holidays); a longer walk
# means a broken override file (e.g. a whole year declared non-working), so stop loudly.
_MAX_CONSECUTIVE_DAYS_OFF = 60

_ONE_DAY = dt.timedelta(days=1)


def day_end(day: dt.date, end: dt.time) -> dt.datetime:
    """The naive wall time at which working hours ending at ``end`` close on ``day``.

    ``end`` 00:00 is the midnight at the end of ``day`` (a policy's ``work_end = "24:00"``,
    a line working until midnight or round the clock): no ``dt.time`` holds 24:00, and
    23:59:59 lost a second of working time at every midnight.
    """
    if end == dt.time(0):
        return dt.datetime.combine(day + _ONE_DAY, end)
    return dt.datetime.combine(day, end)


def valid_hours(start: dt.time, end: dt.time) -> bool:
    """Whether ``start``..``end`` is a working day: ``start`` before ``end``, or ``end`` the
    day's closing midnight (00:00, see :func:`day_end`)."""
    return end == dt.time(0) or start < end

# Upper bounds of a period (policy files, the CLI and the arithmetic below all refuse more).
# 3650 days (about 14 years of working days) and 10000 working hours (over 4 years of
# 9-hour days) are far above any SLA (the longest statutory one is 30 + 30 calendar days)
# yet keep every result far inside the range of ``datetime.date`` and the walk fast.
MAX_PERIOD_DAYS = 3650
MAX_PERIOD_HOURS = 10_000

# Labour Code art. 112 part 1: the non-working public holidays (month, day). 1-8 January
# (New Year holidays and Christmas) are excluded from the automatic transfer of part 2.
ART112_HOLIDAYS: tuple[tuple[int, int], ...] = (
    (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8),
    (2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4),
)

# Years already reported as lacking a decree: one warning per year and process, however
# many appeals or calendar reloads touch the year.
_WARNED_YEARS: set[int] = set()
_WARNED_REGION_YEARS: set[tuple[str, int]] = set()
_WARNED_LOCK = threading.Lock()


def _is_new_year_holiday(day: dt.date) -> bool:
    return day.month == 1 and day.day <= 8


def art112_transfers(year: int) -> frozenset[dt.date]:
    """Days off that Labour Code art. 112 part 2 creates in ``year`` without any decree.

    A holiday of art. 112 part 1 other than 1-8 January that falls on a Saturday or Sunday
    gives a day off on the next working day after it (weekends, holidays and transfers
    already made skipped): 4 Nov 2028 (Sat) -> Mon 6 Nov; 1 May 2032 (Sat) -> Mon 3 May and
    9 May 2032 (Sun) -> Mon 10 May.
    """
    statutory = {dt.date(year, month, day) for month, day in ART112_HOLIDAYS}
    moved: set[dt.date] = set()
    for holiday in sorted(statutory):
        if _is_new_year_holiday(holiday) or holiday.weekday() < 5:
            continue
        day = holiday + _ONE_DAY
        while day.weekday() >= 5 or day in statutory or day in moved:
            day += _ONE_DAY
        moved.add(day)
    return frozenset(moved)


def _probe_last_decree_year() -> int:
    """Fallback of :func:`last_decree_year` through the public API only.

    A year has transfer data when the package lists a day besides the statutory holidays
    (a substituted or observed day off) or a working weekend day.
    """
    last = 0
    for year in range(2013, dt.date.today().year + 30):
        ru = holidays.country_holidays("RU", years=year)
        statutory = {dt.date(year, month, day) for month, day in ART112_HOLIDAYS}
        if set(ru) - statutory or getattr(ru, "weekend_workdays", None):
            last = year
    return last


@functools.cache
def last_decree_year() -> int:
    """Last year the installed ``holidays`` package has RU transfer data for (2027 in 0.109).

    Read from the package's own tables (substituted days off and the hand-listed art. 112
    transfers), so a newer package moves the boundary by itself; if a future package
    reorganises those tables, every year is probed through the public API instead.
    """
    try:
        from holidays.countries.russia import RussiaStaticHolidays

        years = [*RussiaStaticHolidays.special_public_holidays,
                 *RussiaStaticHolidays.special_public_holidays_observed]
        return max(int(y) for y in years)
    except (ImportError, AttributeError, TypeError, ValueError):
        return _probe_last_decree_year()


def _precedes_holiday(day: dt.date) -> bool:
    """Whether the calendar day after ``day`` is a non-working holiday of art. 112 part 1."""
    following = day + _ONE_DAY
    return (following.month, following.day) in ART112_HOLIDAYS


def _is_ordinary_weekend_day(day: dt.date) -> bool:
    """A Saturday or Sunday that is no holiday: a decree moving its day off makes it
    working (moving a holiday on a weekend, Sun 23 Feb 2025, leaves that day off)."""
    return day.weekday() >= 5 and (day.month, day.day) not in ART112_HOLIDAYS


# "Выходной (перенесено с 01.11.2025)": the date a substituted day off was moved from.
_MOVED_FROM = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")


def _probe_working_weekends(year: int) -> dict[dt.date, dt.date]:
    """Fallback of :func:`decree_working_weekends` through the public API only: the Russian
    labels of the substituted days off name the date they were moved from."""
    out: dict[dt.date, dt.date] = {}
    ru = holidays.country_holidays("RU", years=(year, year + 1), language="ru")
    for day, name in ru.items():
        for match in _MOVED_FROM.finditer(str(name)):
            worked = dt.date(int(match[3]), int(match[2]), int(match[1]))
            if worked.year == year and _is_ordinary_weekend_day(worked):
                out[worked] = day
    return out


@functools.cache
def decree_working_weekends(year: int) -> Mapping[dt.date, dt.date]:
    """The weekend days of ``year`` that a decree the package knows swapped with a weekday,
    each mapped to the weekday made a day off in its place ({Sat 1 Nov 2025: Mon 3 Nov}).

    Why the pairs and not the shape of the calendar: the Ministry of Labour's production
    calendars shorten such a Saturday exactly when the weekday it is worked for was the
    day before a holiday (art. 95 moves with the working day): Sat 1 Nov 2025 (for Mon
    3 Nov), Sat 20 Feb 2021 and 2027 (for Mon 22 Feb), Sat 2 Nov 2024 (for Tue 30 Apr), but
    not Sat 28 Dec 2024 (for Mon 30 Dec; 31 Dec was off too) nor Sat 27 Apr 2024 (for Mon
    29 Apr), although both come before a run of days off ending in a holiday. Nor is the
    last working day before such a run shortened otherwise (Wed 7 May 2025 before the
    8 May day off, Fri 6 Mar 2026 before Sunday 8 March): this rule gives the published
    norms of 2015-2026 (1972 hours in 2025) and the shape of the calendar does not. Read
    from the package's substitution table, like :func:`last_decree_year`; if a future
    package reorganises it, from the labels of its substituted days.
    """
    try:
        from holidays.countries.russia import RussiaStaticHolidays

        table: Mapping[int, Any] = RussiaStaticHolidays.special_public_holidays
        out: dict[dt.date, dt.date] = {}
        for listed in (year, year + 1):  # a decree may move a day off into the next year
            entries: Any = table.get(listed, ())
            if entries and isinstance(entries[0], int):
                entries = (entries,)  # one entry is written without the outer tuple
            for entry in entries:
                if len(entry) < 4:
                    continue  # (month, day, name): a one-off holiday, not a substitution
                to_month, to_day, from_month, from_day, *from_year = entry
                worked = dt.date(int(from_year[0]) if from_year else listed, int(from_month),
                                 int(from_day))
                if worked.year == year and _is_ordinary_weekend_day(worked):
                    out[worked] = dt.date(listed, int(to_month), int(to_day))
        return out
    except (ImportError, AttributeError, TypeError, ValueError):
        return _probe_working_weekends(year)


def _check_days(n: int) -> None:
    if n > MAX_PERIOD_DAYS:
        raise ValueError(f"n must be at most {MAX_PERIOD_DAYS} days, got {n}")


def _check_hours(budget: dt.timedelta | float) -> None:
    hours = budget.total_seconds() / 3600 if isinstance(budget, dt.timedelta) else budget
    if not math.isfinite(hours) or hours > MAX_PERIOD_HOURS:
        raise ValueError(f"hours must be a finite number of at most {MAX_PERIOD_HOURS} "
                         f"working hours, got {budget}")


class CalendarFileError(ValueError):
    """The override file is unreadable or malformed; the message names file and key."""


@dataclass(frozen=True)
class RegionYear:
    """One year of a region: its decree's days off and the days that stay working."""

    non_working: frozenset[dt.date] = frozenset()
    working: frozenset[dt.date] = frozenset()
    source: str | None = None


@dataclass(frozen=True)
class RegionRules:
    """Days off of one federal subject on top of the national calendar.

    ``given`` names the table keys the file set, so a table of the override file replaces
    only those keys of the packaged one (:meth:`over`).
    """

    code: str
    holidays: tuple[tuple[int, int], ...] = ()
    transfer: bool = False
    moving_holidays: str | None = None
    source: str | None = None
    name: str | None = None
    years: Mapping[int, RegionYear] = field(default_factory=dict)
    given: frozenset[str] = frozenset()
    path: str | None = None

    def over(self, base: RegionRules) -> RegionRules:
        """These rules layered over ``base`` (same region): named keys and years win."""
        keys = ("holidays", "transfer", "moving_holidays", "source", "name")
        picked = {k: getattr(self if k in self.given else base, k) for k in keys}
        return RegionRules(self.code, years={**base.years, **self.years},
                           given=self.given | base.given, path=self.path, **picked)


@dataclass(frozen=True)
class CalendarOverrides:
    """Days whose status differs from ``holidays.RU``; explicit entries beat the package."""

    non_working: frozenset[dt.date] = frozenset()
    working: frozenset[dt.date] = frozenset()
    sources: Mapping[int, str] = field(default_factory=dict)
    path: str | None = None
    # Years with a ``[years.N]`` table: their decree is taken as loaded (no art. 112 note).
    years: frozenset[int] = frozenset()
    # ``[regions."<code>"]`` tables of the file, by canonical code (layered over the packaged).
    regions: Mapping[str, RegionRules] = field(default_factory=dict)
    # Working days a decree shortens by one hour besides those art. 95 gives by itself and
    # the package's decrees give (a working Saturday worked for a pre-holiday day).
    shortened: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        both = self.non_working & self.working
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarFileError(f"{self.path or '<overrides>'}: {days} listed as both "
                                    "working and non-working")


def _parse_day(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):  # a datetime is a date subclass: refuse it explicitly
        raise CalendarFileError(f"{where}: expected a date, got a date-time {value!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarFileError(f"{where}: expected a date YYYY-MM-DD, got {value!r}")


def _parse_year_key(key: Any, where: str) -> int:
    try:
        year = int(str(key))
    except ValueError:
        raise CalendarFileError(f"{where}: year must be an integer") from None
    if not 1900 <= year <= 2200:
        raise CalendarFileError(f"{where}: year out of range")
    return year


def _parse_day_list(entry: Mapping[str, Any], name: str, year: int,
                    where: str) -> frozenset[dt.date]:
    days = entry.get(name, [])
    if not isinstance(days, list):
        raise CalendarFileError(f"{where}.{name} must be a list of dates")
    out: set[dt.date] = set()
    for i, raw in enumerate(days):
        at = f"{where}.{name}[{i}]"
        day = _parse_day(raw, at)
        if day.year != year:
            raise CalendarFileError(f"{at}: {day} is not in year {year}")
        out.add(day)
    return frozenset(out)


def _parse_month_day(raw: Any, where: str) -> tuple[int, int]:
    text = raw.strip() if isinstance(raw, str) else ""
    parts = text.split("-")
    if len(parts) == 2 and all(len(p) == 2 and p.isdigit() for p in parts):
        month, day = int(parts[0]), int(parts[1])
        try:
            dt.date(2001, month, day)  # a common year: 29 February is no yearly holiday
        except ValueError:
            pass
        else:
            return month, day
    raise CalendarFileError(f"{where}: expected a yearly date MM-DD (e.g. \"08-30\"; "
                            f"not 02-29), got {raw!r}")


_REGION_KEYS = ("name", "source", "holidays", "transfer", "moving_holidays", "years")


def _region_code(key: Any, where: str) -> str:
    from workers.geo.regions import UnknownRegion, normalize_code

    text = str(key)
    try:
        code = normalize_code(text)
    except UnknownRegion:
        raise CalendarFileError(
            f"{where}: unknown region code {text!r}: expected the code of a federal subject "
            "(workers/geo/regions.csv), e.g. \"16\" (Tatarstan)") from None
    if code != text:
        raise CalendarFileError(f"{where}: write the region code {text!r} as its canonical "
                                f"two-digit code \"{code}\" (quoted)")
    return code


def _parse_region(key: Any, entry: Any, path: str) -> RegionRules:
    where = f"{path}: regions.{key}"
    code = _region_code(key, where)
    if not isinstance(entry, Mapping):
        raise CalendarFileError(f"{where} must be a table")
    bad = set(entry) - set(_REGION_KEYS)
    if bad:
        raise CalendarFileError(f"{where}: unknown key(s) {sorted(map(str, bad))}; "
                                f"allowed: {', '.join(_REGION_KEYS)}")
    texts: dict[str, str | None] = {}
    for name in ("name", "source", "moving_holidays"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise CalendarFileError(f"{where}.{name} must be a string")
        texts[name] = value
    transfer = entry.get("transfer", False)
    if not isinstance(transfer, bool):
        raise CalendarFileError(f"{where}.transfer must be true or false")
    raw_holidays = entry.get("holidays", [])
    if not isinstance(raw_holidays, list):
        raise CalendarFileError(f"{where}.holidays must be a list of MM-DD strings")
    holidays_md = sorted({_parse_month_day(raw, f"{where}.holidays[{i}]")
                          for i, raw in enumerate(raw_holidays)})
    raw_years = entry.get("years", {})
    if not isinstance(raw_years, Mapping):
        raise CalendarFileError(f"{where}.years must be a table keyed by year")
    years: dict[int, RegionYear] = {}
    for ykey, yentry in raw_years.items():
        ywhere = f"{where}.years.{ykey}"
        year = _parse_year_key(ykey, ywhere)
        if not isinstance(yentry, Mapping):
            raise CalendarFileError(f"{ywhere} must be a table")
        ybad = set(yentry) - {"non_working", "working", "source"}
        if ybad:
            raise CalendarFileError(f"{ywhere}: unknown key(s) {sorted(map(str, ybad))}; "
                                    "allowed: non_working, working, source")
        source = yentry.get("source")
        if source is not None and not isinstance(source, str):
            raise CalendarFileError(f"{ywhere}.source must be a string")
        off = _parse_day_list(yentry, "non_working", year, ywhere)
        on = _parse_day_list(yentry, "working", year, ywhere)
        if off & on:
            days = ", ".join(d.isoformat() for d in sorted(off & on))
            raise CalendarFileError(f"{ywhere}: {days} listed as both working and non-working")
        years[year] = RegionYear(off, on, source)
    return RegionRules(code, tuple(holidays_md), transfer, texts["moving_holidays"],
                       texts["source"], texts["name"], years, frozenset(entry) - {"years"},
                       path)


def _parse_regions(data: Any, path: str) -> dict[str, RegionRules]:
    if not isinstance(data, Mapping):
        raise CalendarFileError(f"{path}: 'regions' must be a table keyed by region code")
    out: dict[str, RegionRules] = {}
    for key, entry in data.items():
        rules = _parse_region(key, entry, path)
        out[rules.code] = rules
    return out


def _parse_overrides(data: Any, path: str) -> CalendarOverrides:
    if not isinstance(data, Mapping):
        raise CalendarFileError(f"{path}: top level must be a table with a 'years' key")
    unknown = set(data) - {"years", "regions"}
    if unknown:
        raise CalendarFileError(f"{path}: unknown top-level key(s) {sorted(map(str, unknown))}; "
                                "expected only 'years' and 'regions'")
    regions = _parse_regions(data.get("regions", {}), path)
    years = data.get("years", {})
    if not isinstance(years, Mapping):
        raise CalendarFileError(f"{path}: 'years' must be a table keyed by year")
    non_working: set[dt.date] = set()
    working: set[dt.date] = set()
    shortened: set[dt.date] = set()
    sources: dict[int, str] = {}
    seen_years: set[int] = set()
    for key, entry in years.items():
        year = _parse_year_key(key, f"{path}: years.{key}")
        seen_years.add(year)
        if not isinstance(entry, Mapping):
            raise CalendarFileError(f"{path}: years.{key} must be a table")
        bad = set(entry) - {"non_working", "working", "shortened", "source"}
        if bad:
            raise CalendarFileError(
                f"{path}: years.{key}: unknown key(s) {sorted(map(str, bad))}; "
                "allowed: non_working, working, shortened, source")
        if "source" in entry:
            if not isinstance(entry["source"], str):
                raise CalendarFileError(f"{path}: years.{key}.source must be a string")
            sources[year] = entry["source"]
        for name, target in (("non_working", non_working), ("working", working),
                             ("shortened", shortened)):
            target |= _parse_day_list(entry, name, year, f"{path}: years.{key}")
    return CalendarOverrides(frozenset(non_working), frozenset(working), sources, path,
                             frozenset(seen_years), regions, frozenset(shortened))


_SHIPPED_FILE = "regional_calendar.toml"


@functools.cache
def shipped_regions() -> Mapping[str, RegionRules]:
    """The packaged regional tables (``workers/deadlines/regional_calendar.toml``)."""
    from importlib import resources

    text = resources.files(__package__).joinpath(_SHIPPED_FILE).read_text("utf-8")
    where = f"workers/deadlines/{_SHIPPED_FILE}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarFileError(f"{where}: invalid TOML: {exc}") from exc
    if set(data) - {"regions"}:
        raise CalendarFileError(f"{where}: only 'regions' tables belong here")
    return _parse_regions(data.get("regions", {}), where)


def load_overrides(path: str | os.PathLike[str]) -> CalendarOverrides:
    """Read and validate an override file; ``.yaml``/``.yml`` as YAML, anything else TOML."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CalendarFileError(f"{p}: cannot read calendar override file: {exc}") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CalendarFileError(f"{p}: invalid YAML: {exc}") from exc
    else:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CalendarFileError(f"{p}: invalid TOML: {exc}") from exc
    return _parse_overrides(data, str(p))


class BusinessCalendar:
    """Working-day oracle: ``holidays.RU``, art. 112 transfers of undecreed years, overrides.

    Day statuses are cached per year because the SLA engine asks about the same few
    hundred days millions of times; the cache is filled under a lock so the object can
    be shared between threads.

    ``log_missing_decree=False`` silences the once-per-year warning about a year without a
    known decree (for callers that report it themselves, like ``appeals sla due``).

    This object is the national calendar. ``regions`` is the regional data under the
    override file's ``regions`` tables (default: the packaged ``regional_calendar.toml``;
    ``{}`` for none); :meth:`for_region` gives the calendar of one federal subject, built
    once per region and sharing the national per-year sets.
    """

    region: str | None = None
    """Canonical code of the region whose days off this calendar adds; ``None``: national."""

    def __init__(self, overrides: CalendarOverrides | None = None, *,
                 log_missing_decree: bool = True,
                 regions: Mapping[str, RegionRules] | None = None) -> None:
        self.overrides = overrides or CalendarOverrides()
        self.log_missing_decree = log_missing_decree
        base = shipped_regions() if regions is None else regions
        merged = dict(base)
        for code, rules in self.overrides.regions.items():
            merged[code] = rules.over(base[code]) if code in base else rules
        self.regions: Mapping[str, RegionRules] = merged
        self._national: BusinessCalendar = self
        self._regional: dict[str | int, BusinessCalendar] = {}
        self._regional_lock = threading.Lock()
        self._init_years()

    def _init_years(self) -> None:
        self._years: dict[int, frozenset[dt.date]] = {}
        self._undecreed: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None, *,
                  log_missing_decree: bool = True) -> BusinessCalendar:
        """Calendar with the overrides in ``path``; ``None`` means the package alone."""
        return cls(load_overrides(path) if path else None,
                   log_missing_decree=log_missing_decree)

    @classmethod
    def from_env(cls, path: str | os.PathLike[str] | None = None, *,
                 log_missing_decree: bool = True) -> BusinessCalendar:
        """Explicit ``path`` first, then ``$APPEALS_CALENDAR_FILE``, then no overrides."""
        return cls.from_file(path or os.environ.get(CALENDAR_FILE_ENV) or None,
                             log_missing_decree=log_missing_decree)

    # --- day status ---------------------------------------------------------------------

    def decree_known(self, year: int) -> bool:
        """True if the package or the override file covers ``year``'s transfer decree."""
        return year <= last_decree_year() or year in self.overrides.years

    def undecreed_years_used(self) -> list[int]:
        """Years consulted so far that had no known decree (art. 112 transfers only), sorted.

        A fresh calendar per computation tells which years a result depended on; for day
        counts with ``shift = "none"`` the calendar is never asked, so none are listed.
        """
        with self._lock:
            return sorted(self._undecreed)

    def regional_years_missing(self) -> list[int]:
        """Years consulted so far whose regional yearly holidays (``moving_holidays``) had
        no ``[regions.R.years.N]`` table, sorted; always empty for the national calendar."""
        return []

    def for_region(self, code: str | int | None) -> BusinessCalendar:
        """The calendar of federal subject ``code``: national days off plus the region's.

        A region without a table, ``None``, ``""`` or a code the catalogue does not know
        gives the national calendar itself (the engine never fails on a region). One object
        per region, remembered: the SLA engine asks at every deadline.
        """
        national = self._national
        try:
            return national._regional[code]  # type: ignore[index]
        except (KeyError, TypeError):
            pass
        if code is None or code == "":
            return national
        from workers.geo.regions import UnknownRegion, normalize_code

        try:
            canonical: str | None = normalize_code(code)
        except UnknownRegion:
            canonical = None
        with national._regional_lock:
            cal = national._regional.get(canonical) if canonical else None
            if cal is None:
                rules = national.regions.get(canonical) if canonical else None
                cal = national if rules is None else _RegionalCalendar(national, rules)
                if canonical:
                    national._regional[canonical] = cal
            if len(national._regional) < 10_000:  # stray codes must not grow it forever
                national._regional[code] = cal
        return cal

    def _build_year(self, year: int) -> tuple[frozenset[dt.date], bool]:
        """(days off of ``year``, whether to log a warning); called once per year, locked."""
        ru = holidays.country_holidays("RU", years=year)
        undecreed = not self.decree_known(year)
        # Art. 112 part 2 holds in every year; the package lists it by hand only for
        # the years it knows, so it is added for the later ones.
        moved = art112_transfers(year) if year > last_decree_year() else frozenset()
        day = dt.date(year, 1, 1)
        off: set[dt.date] = set()
        while day.year == year:
            if day in self.overrides.working:
                pass
            elif (day in self.overrides.non_working or day in moved
                  or not ru.is_working_day(day)):
                off.add(day)
            day += _ONE_DAY
        if undecreed:
            self._undecreed.add(year)
        return frozenset(off), undecreed and self.log_missing_decree

    def _warn_year(self, year: int) -> None:
        _warn_missing_decree(year)

    def _non_working(self, year: int) -> frozenset[dt.date]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        warn = False
        with self._lock:
            cached = self._years.get(year)
            if cached is None:
                cached, warn = self._build_year(year)
                self._years[year] = cached
        if warn:
            self._warn_year(year)
        return cached

    def is_working_day(self, day: dt.date) -> bool:
        """True if ``day`` (a local calendar date) is a working day in Russia."""
        if isinstance(day, dt.datetime):
            day = day.date()
        return day not in self._non_working(day.year)

    def is_shortened(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day one hour shorter (Labour Code art. 95).

        That is the working day immediately before a holiday of art. 112 (30 April, 8 May,
        11 June, 3 November 2026; 31 December when it is worked); a weekend day a decree
        made working in place of such a day (:func:`decree_working_weekends`: Sat 1 Nov
        2025, Sat 20 Feb 2027); and a day the override file's ``shortened`` lists (the same
        for a decree newer than the package). A regional calendar adds the day before one
        of the region's own holidays. Counting those days in full put working-hour
        deadlines an hour early and took a registration at 17:30 on them for one within
        hours (review of session 15); the working Saturdays were still counted in full (2025
        came to 1973 hours, not the published 1972; review of the deadlines area).
        """
        if isinstance(day, dt.datetime):
            day = day.date()
        if not self.is_working_day(day):
            return False
        if _precedes_holiday(day) or day in self.overrides.shortened:
            return True
        replaced = decree_working_weekends(day.year).get(day)
        return (replaced is not None and _precedes_holiday(replaced)
                and not self.is_working_day(replaced))

    def closing(self, day: dt.date, end: dt.time, start: dt.time) -> dt.datetime:
        """When the working day ``day`` closes: ``end``, an hour earlier on a shortened day
        when that still leaves an hour of work (a day of less than two hours is not
        shortened: it would have less time than a longer day shortened)."""
        closing = day_end(day, end)
        if self.is_shortened(day):
            earlier = closing - dt.timedelta(hours=1)
            if earlier >= dt.datetime.combine(day, start) + dt.timedelta(hours=1):
                return earlier
        return closing

    def non_working_days(self, year: int) -> list[dt.date]:
        """All days off of ``year`` (weekends included), sorted; for reports and debugging."""
        return sorted(self._non_working(year))

    # --- arithmetic ---------------------------------------------------------------------

    def next_working_day(self, day: dt.date) -> dt.date:
        """First working day strictly after ``day``."""
        return self.add_working_days(day, 1)

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day``; ``day`` itself never counts.

        The start day is excluded because a period counted in days starts on the day after
        the event (Civil Code art. 191); whether ``day`` is a working day does not matter.
        ``n == 0`` returns ``day`` unchanged.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        _check_days(n)
        current = day
        remaining = n
        idle = 0
        while remaining:
            current += _ONE_DAY
            if self.is_working_day(current):
                remaining -= 1
                idle = 0
            else:
                idle += 1
                if idle > _MAX_CONSECUTIVE_DAYS_OFF:
                    raise ValueError(f"no working day within {idle} days after {day}")
        return current

    def shift(self, day: dt.date, mode: ShiftMode) -> dt.date:
        """Move a deadline day that is not a working day, per policy.

        ``previous``: last working day before it (administrative practice for 59-FZ: answer
        before the weekend); ``next``: first working day after it (Civil Code art. 193);
        ``none``: keep the day even if it is a day off.
        """
        if mode not in SHIFT_MODES:
            raise ValueError(f"shift must be one of {', '.join(SHIFT_MODES)}, got {mode!r}")
        if mode == "none" or self.is_working_day(day):
            return day
        step = -_ONE_DAY if mode == "previous" else _ONE_DAY
        current = day
        for _ in range(_MAX_CONSECUTIVE_DAYS_OFF):
            current += step
            if self.is_working_day(current):
                return current
        raise ValueError(f"no working day within {_MAX_CONSECUTIVE_DAYS_OFF} days of {day}")

    def add_working_hours(
        self,
        start_at: dt.datetime,
        hours: float | dt.timedelta,
        start: dt.time = dt.time(9, 0),
        end: dt.time = dt.time(18, 0),
    ) -> dt.datetime:
        """Moment when ``hours`` of working time have elapsed after ``start_at``.

        Only time inside ``[start, end)`` of working days counts, in the wall-clock time of
        ``start_at`` (pass a region-local datetime; aware or naive, the result keeps the
        same ``tzinfo``). A moment outside hours starts at the next opening. When the budget
        is used up exactly at closing time the result is that closing time, not the next
        opening, so an 8-hour budget from 09:00 ends at 17:00 and a 9-hour one at 18:00.
        """
        _check_hours(hours)  # before timedelta(): 1e300 h would raise OverflowError
        budget = hours if isinstance(hours, dt.timedelta) else dt.timedelta(hours=hours)
        if budget < dt.timedelta(0):
            raise ValueError(f"hours must be >= 0, got {hours}")
        if not valid_hours(start, end):
            raise ValueError(f"working day start {start} must be before end {end}")
        tz = start_at.tzinfo
        wall = start_at.replace(tzinfo=None)
        day = wall.date()
        cursor = wall
        if not self.is_working_day(day) or wall >= self.closing(day, end, start):
            day = self.next_working_day(day)
            cursor = dt.datetime.combine(day, start)
        elif wall.time() < start:
            cursor = dt.datetime.combine(day, start)
        while True:
            closing = self.closing(day, end, start)
            available = closing - cursor
            if budget <= available:
                return _attach(cursor + budget, tz)
            budget -= available
            day = self.next_working_day(day)
            cursor = dt.datetime.combine(day, start)

    def working_hours_between(
        self,
        first: dt.datetime,
        last: dt.datetime,
        start: dt.time = dt.time(9, 0),
        end: dt.time = dt.time(18, 0),
    ) -> dt.timedelta:
        """Working time in ``[first, last)``; the counterpart of :meth:`add_working_hours`.

        Counted on the wall-clock times of ``first`` and ``last`` (pass both in the region's
        zone), so ``add_working_hours(a, working_hours_between(a, b))`` is the first moment
        at which that much working time is used after ``a``: ``b`` itself when ``b`` lies
        inside working hours (or at a closing time). Zero when ``last`` is not after ``first``.
        """
        if not valid_hours(start, end):
            raise ValueError(f"working day start {start} must be before end {end}")
        lo_wall = first.replace(tzinfo=None)
        hi_wall = last.replace(tzinfo=None)
        total = dt.timedelta(0)
        day = lo_wall.date()
        while day <= hi_wall.date():
            if self.is_working_day(day):
                lo = max(lo_wall, dt.datetime.combine(day, start))
                hi = min(hi_wall, self.closing(day, end, start))
                if hi > lo:
                    total += hi - lo
            day += _ONE_DAY
        return total

    def working_days_between(self, first: dt.date, last: dt.date) -> int:
        """Working days in ``(first, last]``; the counterpart of :meth:`add_working_days`."""
        count = 0
        day = first
        while day < last:
            day += _ONE_DAY
            count += self.is_working_day(day)
        return count


class _RegionalCalendar(BusinessCalendar):
    """National days off plus one region's (:meth:`BusinessCalendar.for_region`).

    Its per-year set is built once from the national set of that year: the region's fixed
    holidays, their weekend transfers if ``transfer`` is set, then its year table
    (``non_working`` added, ``working`` removed: the table wins over everything).
    """

    def __init__(self, national: BusinessCalendar, rules: RegionRules) -> None:
        # Not BusinessCalendar.__init__: the overrides and regions are the national ones.
        self.overrides = national.overrides
        self.log_missing_decree = national.log_missing_decree
        self.regions = national.regions
        self._national = national
        self.region = rules.code
        self.rules = rules
        self._holiday_md = frozenset(rules.holidays)
        self._missing: set[int] = set()
        self._init_years()

    def regional_years_missing(self) -> list[int]:
        with self._lock:
            return sorted(self._missing)

    def _regional_holiday(self, day: dt.date) -> bool:
        table = self.rules.years.get(day.year)
        return ((day.month, day.day) in self._holiday_md
                or (table is not None and day in table.non_working))

    def is_shortened(self, day: dt.date) -> bool:
        """The national rule, and the working day immediately before one of the region's
        holidays (fixed or of the year's table): art. 95 holds for every non-working
        holiday, a region's own included (Tatarstan: Fri 29 Aug 2025 before Republic Day,
        Thu 5 Nov 2026 before Constitution Day). A transferred day off is no holiday, but
        the year table does not tell them apart; a transfer follows days off in practice."""
        if isinstance(day, dt.datetime):
            day = day.date()
        if super().is_shortened(day):
            return True
        following = day + _ONE_DAY
        return (self._regional_holiday(following) and not self.is_working_day(following)
                and self.is_working_day(day))

    def _transfers(self, year: int) -> set[dt.date]:
        """Days off that the region's weekend holidays give in ``year`` (``transfer``).

        A fixed holiday on a Saturday or Sunday that is off nationally moves to the next
        day that is working nationally and no regional day off (one already moved to
        included); a holiday late in December may move into ``year``.
        """
        national = self._national
        moved: set[dt.date] = set()
        for y in (year - 1, year):
            for month, mday in self.rules.holidays:
                holiday = dt.date(y, month, mday)
                if holiday.weekday() < 5 or national.is_working_day(holiday):
                    continue
                day = holiday + _ONE_DAY
                for _ in range(_MAX_CONSECUTIVE_DAYS_OFF):
                    if (national.is_working_day(day) and not self._regional_holiday(day)
                            and day not in moved):
                        break
                    day += _ONE_DAY
                moved.add(day)
        return {d for d in moved if d.year == year}

    def _build_year(self, year: int) -> tuple[frozenset[dt.date], bool]:
        national = self._national
        off = set(national._non_working(year))  # the national lock, never the other way
        if not national.decree_known(year):
            self._undecreed.add(year)  # the national object logs it
        rules = self.rules
        off.update(dt.date(year, month, mday) for month, mday in rules.holidays)
        if rules.transfer:
            off |= self._transfers(year)
        table = rules.years.get(year)
        if table is not None:
            off |= table.non_working
            off -= table.working
        missing = table is None and rules.moving_holidays is not None
        if missing:
            self._missing.add(year)
        return frozenset(off), missing and self.log_missing_decree

    def _warn_year(self, year: int) -> None:
        with _WARNED_LOCK:
            if (self.rules.code, year) in _WARNED_REGION_YEARS:
                return
            _WARNED_REGION_YEARS.add((self.rules.code, year))
        log.warning("production calendar: %s",
                    missing_regional_note(self.rules, [year]))


def missing_regional_note(rules: RegionRules, years: Iterable[int]) -> str:
    """Operator-facing text for years whose regional yearly holidays are not loaded."""
    listed = ", ".join(str(y) for y in sorted(years))
    return (f"region {rules.code}: the days off that a regional act sets each year "
            f"({rules.moving_holidays}) are not loaded for {listed}: deadlines there count "
            f"only the region's fixed holidays; add a [regions.\"{rules.code}\".years.N] "
            f"table with the year's non_working days to the calendar file "
            f"(--calendar-file / ${CALENDAR_FILE_ENV})")


def missing_decree_note(years: Iterable[int]) -> str:
    """Operator-facing text for years computed with art. 112 transfers only."""
    listed = ", ".join(str(y) for y in sorted(years))
    return (f"no Government decree on days off is known for {listed} (the installed "
            f"holidays package has transfers up to {last_decree_year()}, the override file "
            f"has no entry): the production calendar uses Labour Code art. 112 transfers "
            f"only (a holiday on a weekend gives a day off on the next working day; New "
            f"Year holidays and working Saturdays are not predicted); load the decree with "
            f"--calendar-file / ${CALENDAR_FILE_ENV}")


def _warn_missing_decree(year: int) -> None:
    with _WARNED_LOCK:
        if year in _WARNED_YEARS:
            return
        _WARNED_YEARS.add(year)
    log.warning("production calendar: %s", missing_decree_note([year]))


def _attach(wall: dt.datetime, tz: dt.tzinfo | None) -> dt.datetime:
    """Re-attach a zone to a wall time (zoneinfo resolves the UTC offset on the new date)."""
    return wall.replace(tzinfo=tz) if tz is not None else wall


def iter_days(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    """Inclusive range of dates; small helper shared by tests and reports."""
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY
