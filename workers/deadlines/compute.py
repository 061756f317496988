"""Pure deadline arithmetic: from a registration moment, a region zone and a policy to a due moment.

Counting conventions (the legal reasons are why they are what they are):

* **Local dates.** A day is a calendar day *in the region's time zone* (DESIGN.md §2). An
  appeal registered at 2026-03-10T20:00Z is registered on 11 March in Barnaul (+07), and
  its periods count from there. Every result is tz-aware in the region's zone.

* **Calendar days (``fz59``).** 59-FZ art. 12 p.1: "within 30 days of registration". Civil
  Code art. 191: a period counted in days starts on the day after the event, so the day
  after registration is day 1 and registration on day D gives a last day D+30. Civil Code
  art. 194: the act may be done until 24:00 of the last day, so the deadline is the end of
  that day, 23:59:59 local. If the last day is not a working day the policy's ``shift``
  applies: ``next`` is Civil Code art. 193 (the next working day), ``previous`` is the
  prevailing 59-FZ office practice (answer on the working day before, the default for
  ``fz59``), ``none`` keeps the day off. A ``previous`` shift that would end on or before
  the start day (3 days counted from 31 December; 7 days from 30 December, whose next
  working day is in January) becomes ``next``: a period of one day or more never collapses
  onto the day it started, which left a body hours for a 7-day step. The same rule gives the
  fz59 registration (art. 8 p.2, 3 days from receipt) and redirect (art. 8 p.3, 7 days
  from registration) deadlines.

* **Working days (``pos``; the incident and hotline final answer).** Counted on the
  production calendar starting the day after registration (art. 191 again): the N-th
  working day after the registration date, end of that day. The registration day never
  counts, whether or not it is a working day or the appeal came at 08:00. The result is a
  working day, so ``shift`` has nothing to do.

* **Working hours (``incident`` first response, ``hotline`` callback).** Only time inside
  the policy's working hours (09:00-18:00 by default, no lunch break) on working days in
  the local zone counts. Registration outside hours starts the clock at the next opening;
  a budget used up exactly at closing gives that closing moment. The due moment is exact,
  not an end of day, because a first response is measured in hours. ``work_end = "24:00"``
  closes the working day at midnight.

* **Clock hours (``hours``: a 122 line or a ЦУР shift working round the clock).** Every hour
  counts, nights, weekends and holidays too: the deadline is the registration moment plus
  the amount, elapsed time in the region's zone, with no calendar and no shift. Its warning
  is the wall-clock share, a pause gives back the clock time that was left when it began,
  and an extension of ``N`` days adds ``N`` × 24 hours to the deadline (the unit of
  ``extension_days``; a policy allows one only with ``extension_max_days``).

* **Extension** (59-FZ art. 12 p.2) adds days to the period's statutory last day and shifts
  once (:func:`day_count_deadlines`, what the SLA engine uses). :func:`extend` adds them to the
  *current* deadline's local date, which is right for a deadline that was not shifted and is
  kept for one given alone (a shifted one loses the days the shift took back).

* **Pause** (waiting for the citizen) holds the clock in the policy's own unit: what was left
  of the period when the pause began is counted again from the resume, with the same rules
  as the period itself (:func:`pause_shift`). A pause that begins at or after the deadline
  moves nothing (it cannot cure a breach), and a pause never moves a deadline earlier. For
  day counts a day is used as soon as part of it ran: the day the pause began counts as a
  day the body had, and the remainder runs from the day after the resume (Civil Code
  art. 191, as for any period counted in days), so a pause within one local day moves
  nothing and a pause across N local midnights moves the last day by N calendar days
  (``fz59``) or by the working days among them (``pos``).

* **Limits.** Day counts above ``MAX_PERIOD_DAYS`` (3650) and hour amounts (working or
  clock hours) above ``MAX_PERIOD_HOURS`` (10000) raise ``ValueError`` (see
  ``calendar.py``): no SLA is near them, and an absurd amount from a policy file must fail
  clearly, not overflow.

* **Warning** fires when a share of the period's time is used (DESIGN.md §2), measured in
  the period's unit (:func:`warning_at`): working time for ``working_hours`` policies,
  working days for ``working_days`` ones (always on a working day), wall-clock time for
  calendar days and clock ``hours``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from workers.deadlines.calendar import (
    MAX_PERIOD_DAYS,
    MAX_PERIOD_HOURS,
    BusinessCalendar,
    ShiftMode,
)
from workers.deadlines.policies import HOUR_COUNTINGS, Counting, Policy

__all__ = [
    "END_OF_DAY",
    "Period",
    "after_clock_hours",
    "answer_due",
    "default_calendar",
    "end_of_day",
    "extend",
    "final_answer_due",
    "first_response_due",
    "pause_shift",
    "pause_shift_warning",
    "period_due",
    "redirect_due",
    "registration_due",
    "shift_warning_days",
    "stage_due",
    "to_local",
    "warning_at",
    "working_day_share",
]

END_OF_DAY = dt.time(23, 59, 59)


@functools.cache
def default_calendar() -> BusinessCalendar:
    """Process-wide calendar (package + ``$APPEALS_CALENDAR_FILE``), built once."""
    return BusinessCalendar.from_env()


def _zone(tz: str | dt.tzinfo) -> dt.tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


def to_local(moment: dt.datetime, tz: str | dt.tzinfo) -> dt.datetime:
    """The same instant as wall time of the region zone; refuses naive input (ambiguous)."""
    _require_aware(moment, "moment")
    return moment.astimezone(_zone(tz))


def after_clock_hours(moment: dt.datetime, hours: float | dt.timedelta) -> dt.datetime:
    """``moment`` plus ``hours`` of elapsed time, in the zone of ``moment`` (``hours``
    counting). Added on UTC, as time elapses: the aware arithmetic of ``datetime`` adds wall
    time, an hour off across a change of a zone's offset."""
    _require_aware(moment, "moment")
    if isinstance(hours, dt.timedelta):
        delta = hours
    else:
        if not (math.isfinite(hours) and 0 <= hours <= MAX_PERIOD_HOURS):
            raise ValueError(f"hours must be a number in 0..{MAX_PERIOD_HOURS}, got {hours}")
        delta = dt.timedelta(hours=hours)
    if delta < dt.timedelta(0):
        raise ValueError(f"hours must be >= 0, got {hours}")
    return (moment.astimezone(dt.UTC) + delta).astimezone(moment.tzinfo)


def end_of_day(day: dt.date, tz: str | dt.tzinfo) -> dt.datetime:
    """23:59:59 local on ``day``: the last second of a day-counted period (Civil Code 194)."""
    return dt.datetime.combine(day, END_OF_DAY, tzinfo=_zone(tz))


@dataclass(frozen=True)
class Period:
    """A period to count: unit, amount, and for day counts what to do on a day off."""

    counting: Counting
    amount: float
    shift: ShiftMode = "none"
    work_start: dt.time = dt.time(9, 0)
    work_end: dt.time = dt.time(18, 0)


def period_due(
    start_at: dt.datetime,
    tz: str | dt.tzinfo,
    period: Period,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Deadline of ``period`` started at ``start_at``; the single place the rules live."""
    _require_aware(start_at, "start_at")
    cal = calendar or default_calendar()
    local = to_local(start_at, tz)
    if period.counting == "working_hours":
        return cal.add_working_hours(local, period.amount, period.work_start, period.work_end)
    if period.counting == "hours":
        return after_clock_hours(local, period.amount)
    if not (math.isfinite(period.amount) and 0 <= period.amount <= MAX_PERIOD_DAYS):
        raise ValueError(f"a day count must be a whole number in 0..{MAX_PERIOD_DAYS}, "
                         f"got {period.amount}")
    amount = int(period.amount)
    if amount != period.amount:
        raise ValueError(f"a day count must be a whole number >= 0, got {period.amount}")
    if period.counting == "calendar_days":
        last = local.date() + dt.timedelta(days=amount)
    elif period.counting == "working_days":
        last = cal.add_working_days(local.date(), amount)
    else:  # pragma: no cover - Literal exhausted
        raise ValueError(f"unknown counting {period.counting!r}")
    due_day = cal.shift(last, period.shift)
    if due_day <= local.date():
        # A short period over a long holiday (3 days from 31 December, 7 from 30 December)
        # shifted back would end before it began, or on its own start day with only what was
        # left of that day; the statutory rule (Civil Code art. 193) applies instead. A 0-day
        # period started on a working day stays on it ("next" keeps a working day).
        due_day = cal.shift(last, "next")
    return end_of_day(due_day, tz)


def _check_regime(regime: str, policy: Policy) -> None:
    if regime != policy.regime:
        raise ValueError(f"policy is for regime {policy.regime!r}, not {regime!r}")


def answer_due(
    regime: str,
    registered_at: dt.datetime,
    tz: str,
    policy: Policy,
    *,
    urgent: bool = False,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Answer deadline (for ``incident``: first public response) in the region zone.

    ``urgent`` uses the policy's ``urgent_answer`` when it has one (incident: 4 h).
    """
    _check_regime(regime, policy)
    period = Period(policy.counting, policy.answer_amount(urgent), policy.shift,
                    policy.work_start, policy.work_end)
    return period_due(registered_at, tz, period, calendar)


def stage_due(
    stage: str,
    started_at: dt.datetime,
    tz: str,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Deadline of a named stage of the policy, counted from the start of that stage."""
    s = policy.stage(stage)
    period = Period(s.counting, s.amount, policy.shift, policy.work_start, policy.work_end)
    return period_due(started_at, tz, period, calendar)


def first_response_due(
    registered_at: dt.datetime,
    tz: str,
    policy: Policy,
    *,
    urgent: bool = False,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Incident first public response: the answer period of the ``incident`` policy."""
    return answer_due(policy.regime, registered_at, tz, policy, urgent=urgent,
                      calendar=calendar)


def final_answer_due(
    registered_at: dt.datetime,
    tz: str,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Incident final answer: ``final_answer`` stage (7 working days), from registration."""
    return stage_due("final_answer", registered_at, tz, policy, calendar)


def registration_due(
    received_at: dt.datetime,
    tz: str,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """59-FZ art. 8 p.2: register within 3 days of *receipt* (not of registration)."""
    return stage_due("registration", received_at, tz, policy, calendar)


def redirect_due(
    registered_at: dt.datetime,
    tz: str,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """59-FZ art. 8 p.3: send to the competent body within 7 days of registration."""
    return stage_due("redirect", registered_at, tz, policy, calendar)


def warning_at(
    registered_at: dt.datetime,
    due: dt.datetime,
    share: float,
    policy: Policy | None = None,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Moment ``share`` of the period's time is used, in the zone of ``due``.

    DESIGN.md §2 fires the warning at "a share of the time used", and the time of a period
    is counted in its policy's unit:

    * ``working_hours`` (``policy`` given): the moment ``share`` of the working time between
      ``registered_at`` and ``due`` has been worked (``add_working_hours``). A wall-clock
      share was wrong here: registered Friday 17:00 with 8 working hours (due Monday
      16:00), 75 % of the wall-clock span is Sunday 22:15, after one working hour of eight
      (12 %); in working time it is Monday 14:00, when 6 of the 8 hours are gone.
    * ``working_days`` (``policy`` given): the moment ``share`` of the period's working days
      is used (:func:`working_day_share`): 75 % of 10 working days is noon of the 8th
      working day after registration. The wall-clock share it replaced fired after 5 of 10
      working days over the New Year holidays (registered 25 December 2026: 13 January) and
      on days off (registered 27 April 2026: Saturday 9 May, 20:29).
    * calendar days, clock ``hours``, or no ``policy``: the wall-clock share, the period's
      own unit.

    Returns ``due`` when the period is empty (``due`` not after ``registered_at``).
    """
    _require_aware(registered_at, "registered_at")
    _require_aware(due, "due")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if due <= registered_at:
        return due
    if policy is not None and policy.counting == "working_hours":
        cal = calendar or default_calendar()
        start = registered_at.astimezone(due.tzinfo)
        budget = cal.working_hours_between(start, due, policy.work_start, policy.work_end)
        if budget > dt.timedelta(0):
            # Whole seconds, rounded: float noise must not put the warning a second early.
            used = dt.timedelta(seconds=round(budget.total_seconds() * share))
            moment = cal.add_working_hours(start, used, policy.work_start, policy.work_end)
            return min(moment, due).replace(microsecond=0)
        # No working time at all between them (a hand-made deadline): the wall-clock share.
    if policy is not None and policy.counting == "working_days":
        day_moment = working_day_share(registered_at, due, share,
                                        calendar or default_calendar())
        if day_moment is not None:
            return day_moment
        # No working day in the period (a hand-made deadline): the wall-clock share.
    moment = registered_at + (due - registered_at) * share
    return moment.astimezone(due.tzinfo).replace(microsecond=0)


_DAY_SECONDS = 86_400


def working_day_share(
    registered_at: dt.datetime, due: dt.datetime, share: float, cal: BusinessCalendar
) -> dt.datetime | None:
    """Moment ``share`` of a working-day period is used, in the zone of ``due``; None when
    the period has no working day.

    The period's days are the working days after the registration's local date up to the
    due date (Civil Code art. 191: the registration day never counts, whatever its hour),
    each counted whole, 00:00 to 24:00 local, the due day too (a day-counted deadline is
    the end of its day); days off count nothing. ``share`` of them used falls inside one
    of those working days: 7.5 of 10 is 12:00 of the 8th. A share that ends exactly with
    a day (5 of 10) is that day's last second, 23:59:59 like a deadline, not the next
    day's midnight, which may be a day off. Never after ``due``.
    """
    _require_aware(registered_at, "registered_at")
    _require_aware(due, "due")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    tz = due.tzinfo
    assert tz is not None
    first = registered_at.astimezone(tz).date()
    days = cal.working_days_between(first, due.date())
    if days <= 0:
        return None
    # Whole seconds: float noise must not move the warning across a day boundary.
    used = max(1, round(share * days * _DAY_SECONDS))
    index, into = divmod(used - 1, _DAY_SECONDS)
    day = cal.add_working_days(first, index + 1)
    moment = dt.datetime.combine(day, dt.time(0), tzinfo=tz) + dt.timedelta(seconds=into + 1)
    return min(moment, end_of_day(day, tz), due)


def _check_extension(days: int, policy: Policy) -> None:
    """59-FZ art. 12 p.2 as the policy states it: ValueError for an extension it refuses."""
    if policy.extension_max_days <= 0 or policy.extensions_allowed <= 0:
        raise ValueError(f"regime {policy.regime!r} allows no extension")
    if not 0 < days <= policy.extension_max_days:
        raise ValueError(f"extension must be 1..{policy.extension_max_days} days, got {days}")


def _add_days(day: dt.date, n: int, counting: Counting, cal: BusinessCalendar) -> dt.date:
    """``n`` days after ``day`` in a day-counted policy's unit (the day itself excluded)."""
    if counting == "working_days":
        return cal.add_working_days(day, n)
    return day + dt.timedelta(days=n)


def extend(
    due: dt.datetime,
    days: int,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Deadline after an extension of ``days`` (59-FZ art. 12 p.2: up to 30, with notice).

    Counts in the policy's day unit (calendar days for fz59, working days otherwise) from
    the local date of ``due`` and re-applies the shift; a clock-``hours`` period gets
    ``days`` × 24 hours added to ``due`` itself (no end of day, no shift: its unit has no
    calendar). Whether an extension is still allowed (``extensions_allowed``) depends on the
    appeal's history: the caller checks it.
    """
    _require_aware(due, "due")
    _check_extension(days, policy)
    if policy.counting == "hours":
        return after_clock_hours(due, dt.timedelta(days=days))
    cal = calendar or default_calendar()
    tz = due.tzinfo
    assert tz is not None
    day = due.date()
    last = _add_days(day, days, policy.counting, cal)
    # Never earlier than the deadline being extended, even if ``previous`` walks back.
    return max(end_of_day(cal.shift(last, policy.shift), tz), due)


def pause_shift(
    due: dt.datetime,
    paused_from: dt.datetime,
    resumed_at: dt.datetime,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Deadline after a pause, in the zone of ``due``: the rest of the period, re-counted.

    A pause holds the clock, so what was left of the period when it began is counted again
    from the resume, in the policy's unit and with the same rules as the period itself
    (:func:`period_due`). Adding the paused wall-clock time instead (as before) was wrong
    for every unit: a weekend pause of an 8-working-hour incident added 63.5 h, a pause
    ending after closing time put the deadline at night, and day counts landed on days off.

    * ``working_hours``: the working time in ``[paused_from, due)`` is added to
      ``resumed_at`` with ``add_working_hours`` (paused Friday 17:30 with the deadline
      Monday 16:00, resumed Monday 09:00: 7.5 h remain, due Monday 16:30).
    * ``hours``: the clock time in ``[paused_from, due)`` is added to ``resumed_at``.
    * ``working_days``: the working days after the pause's local day up to the due day are
      counted again after the resume day (end of day), so the deadline moves by the working
      days among the local days after the pause began, up to the resume day.
    * ``calendar_days``: likewise with calendar days: the last day moves by the number of
      local midnights the pause spanned, ends at 23:59:59 local, and the policy's shift
      applies again to a non-working last day. As in :func:`period_due` the shift never
      brings the end back before the resume day (nor onto it when whole days remained):
      the next working day applies then. The days are counted from the current deadline's
      day, as :func:`extend` does: a deadline shifted to a working day loses the days the
      shift took back, so the SLA engine recounts day-counted periods from their statutory
      last day instead (:func:`day_count_deadlines`).

    Partial days (day counts): the day the pause began counts as a day the body had, and
    the remainder runs from the day after the resume, because a period counted in days runs
    from the day after the event that starts it (Civil Code art. 191) and 59-FZ practice
    counts whole days, never hours. So a pause that begins and ends on the same local day
    moves nothing, and one that spans N local midnights moves the last day by N calendar
    days (``fz59``) or by the working days among those N days (``pos``).

    A pause that begins at or after the deadline moves nothing: waiting for the citizen
    cannot cure a breach. The result is never earlier than ``due``.
    """
    for name, moment in (("due", due), ("paused_from", paused_from),
                         ("resumed_at", resumed_at)):
        _require_aware(moment, name)
    if resumed_at < paused_from:
        raise ValueError("resumed_at is before paused_from")
    if paused_from >= due:
        return due
    cal = calendar or default_calendar()
    tz = due.tzinfo
    assert tz is not None
    paused = paused_from.astimezone(tz)
    resumed = resumed_at.astimezone(tz)
    if policy.counting == "working_hours":
        left = cal.working_hours_between(paused, due, policy.work_start, policy.work_end)
        moved = cal.add_working_hours(resumed, left, policy.work_start, policy.work_end)
        return max(moved, due)
    if policy.counting == "hours":
        return max(after_clock_hours(resumed, due - paused), due)
    if paused.date() == resumed.date():
        return due
    if policy.counting == "calendar_days":
        days_left = (due.date() - paused.date()).days
    else:
        days_left = cal.working_days_between(paused.date(), due.date())
    period = Period(policy.counting, days_left, policy.shift, policy.work_start,
                    policy.work_end)
    return max(period_due(resumed, tz, period, cal), due)


#: An adjustment of a day-counted answer period, in order: an extension (``("e", days)``) or
#: a pause (``("p", paused_from, resumed_at)``, aware datetimes).
DayAdjustment = tuple[Any, ...]


def day_count_deadlines(
    start_at: dt.datetime,
    tz: str | dt.tzinfo,
    policy: Policy,
    adjustments: Iterable[DayAdjustment],
    *,
    urgent: bool = False,
    calendar: BusinessCalendar | None = None,
) -> list[dt.datetime]:
    """The deadline of a day-counted answer period when it starts and after each adjustment.

    Extensions and pauses count from the period's *statutory* last day, the day before the
    shift: :func:`extend` and :func:`pause_shift` count from the current, possibly shifted
    deadline, and so the shift was applied twice. With day 30 on a day off and the deadline
    moved back to the working day before it, a 10-day pause that ended in the New Year
    holidays moved nothing, a 5-day extension moved nothing (refused), a 30-day one gave
    day 52 instead of day 60; with ``next`` an extension ended after day 60 (review of
    session 15). Here the last day moves by the extension's days and by the local midnights
    a pause spanned (``pos``: the working days among them), and the shift is applied once,
    to the result. The rest is as in those functions: a pause that begins at or after the
    deadline, or within one local day, moves nothing, and no adjustment brings the deadline
    earlier. Raises ValueError for an extension the policy does not allow.
    """
    _require_aware(start_at, "start_at")
    if policy.counting in HOUR_COUNTINGS:
        raise ValueError("hour periods are adjusted by extend and pause_shift")
    cal = calendar or default_calendar()
    zone_ = _zone(tz)
    period = Period(policy.counting, policy.answer_amount(urgent), policy.shift,
                    policy.work_start, policy.work_end)
    due = period_due(start_at, zone_, period, cal)
    amount = int(period.amount)
    start_day = to_local(start_at, zone_).date()
    last = _add_days(start_day, amount, policy.counting, cal)
    out = [due]
    for adjustment in adjustments:
        if adjustment[0] == "e":
            days = int(adjustment[1])
            _check_extension(days, policy)
            last = _add_days(last, days, policy.counting, cal)
            due = max(end_of_day(cal.shift(last, policy.shift), zone_), due)
        else:
            paused_from, resumed_at = adjustment[1], adjustment[2]
            _require_aware(paused_from, "paused_from")
            _require_aware(resumed_at, "resumed_at")
            paused = paused_from.astimezone(zone_).date()
            resumed = max(resumed_at, paused_from).astimezone(zone_).date()
            if paused_from < due and paused != resumed:
                if policy.counting == "calendar_days":
                    left = max(0, (last - paused).days)
                    last = resumed + dt.timedelta(days=left)
                else:
                    left = cal.working_days_between(paused, last)
                    last = cal.add_working_days(resumed, left)
                due_day = cal.shift(last, policy.shift)
                if due_day <= resumed:  # as period_due, counted from the resume
                    due_day = cal.shift(last, "next")
                due = max(end_of_day(due_day, zone_), due)
        out.append(due)
    return out


def pause_shift_warning(
    warning: dt.datetime,
    due: dt.datetime,
    moved_due: dt.datetime,
    paused_from: dt.datetime,
    resumed_at: dt.datetime,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Warning moment after the pause that moved ``due`` to ``moved_due``.

    The warning marks a share of the period used, so a pause holds it the way it holds the
    deadline: for ``working_hours`` the working time left until the warning when the pause
    began is counted again from the resume (so a warning at 6 of 8 working hours stays at 6
    of 8); for clock ``hours`` the clock time left until it is counted again from the resume;
    for working days it moves by the working days the deadline moved, at the same time of
    day (so it stays a working day and keeps the working days it had used:
    :func:`shift_warning_days`); for calendar days it keeps its wall-clock distance to the
    deadline. A warning whose moment had come when the pause began stays where it is: the
    share was used by then, and moving it would send a warning that already went out a
    second time.
    """
    for name, moment in (("warning", warning), ("due", due), ("moved_due", moved_due),
                         ("paused_from", paused_from), ("resumed_at", resumed_at)):
        _require_aware(moment, name)
    if resumed_at < paused_from:
        raise ValueError("resumed_at is before paused_from")
    if paused_from >= warning:
        return warning
    if policy.counting == "hours":
        return max(after_clock_hours(resumed_at.astimezone(warning.tzinfo),
                                     warning - paused_from), warning)
    if policy.counting != "working_hours":
        return shift_warning_days(warning, due, moved_due, policy, calendar)
    cal = calendar or default_calendar()
    tz = warning.tzinfo
    left = cal.working_hours_between(paused_from.astimezone(tz), warning, policy.work_start,
                                     policy.work_end)
    moved = cal.add_working_hours(resumed_at.astimezone(tz), left, policy.work_start,
                                  policy.work_end)
    return max(moved, warning)


def shift_warning_days(
    warning: dt.datetime,
    due: dt.datetime,
    moved_due: dt.datetime,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """A day-counted period's warning after its deadline moved from ``due`` to ``moved_due``
    (a pause that began before the warning); never earlier than ``warning``.

    ``working_days``: as many working days later as the deadline moved, at the same local
    time of day. Adding the wall-clock difference instead (what calendar days do) put a
    warning from a Friday, moved by a week of working days that spanned a holiday, on a
    Saturday, and changed how many working days it had used.
    """
    if moved_due <= due:
        return warning
    if policy.counting != "working_days":
        return warning + (moved_due - due)
    cal = calendar or default_calendar()
    tz = due.tzinfo
    assert tz is not None
    days = cal.working_days_between(due.date(), moved_due.astimezone(tz).date())
    if days <= 0:
        return warning
    local = warning.astimezone(tz)
    day = cal.add_working_days(local.date(), days)
    moved = dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)
    return max(moved, warning)

