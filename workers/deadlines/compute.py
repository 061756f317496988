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

* **Working days (``pos``; incident final answer).** Counted on the production calendar
  starting the day after registration (art. 191 again): the N-th working day after the
  registration date, end of that day. The registration day never counts, whether or not it
  is a working day or the appeal came at 08:00. The result is a working day, so ``shift``
  has nothing to do.

* **Working hours (``incident`` first response, ``hotline`` callback).** Only time inside
  the policy's working hours (09:00-18:00 by default, no lunch break) on working days in
  the local zone counts. Registration outside hours starts the clock at the next opening;
  a budget used up exactly at closing gives that closing moment. The due moment is exact,
  not an end of day, because a first response is measured in hours.

* **Extension** (59-FZ art. 12 p.2) adds calendar days to the *current* deadline's local
  date and shifts again; counting from the (possibly shifted-back) current date is never
  later than the statutory maximum.

* **Pause** (waiting for the citizen) moves the deadline by the paused wall-clock duration
  when the pause began before the deadline, and never moves it earlier.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from workers.deadlines.calendar import BusinessCalendar, ShiftMode
from workers.deadlines.policies import Counting, Policy

__all__ = [
    "END_OF_DAY",
    "Period",
    "answer_due",
    "default_calendar",
    "end_of_day",
    "extend",
    "final_answer_due",
    "first_response_due",
    "pause_shift",
    "period_due",
    "redirect_due",
    "registration_due",
    "stage_due",
    "to_local",
    "warning_at",
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
    amount = int(period.amount)
    if amount != period.amount or amount < 0:
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


def warning_at(registered_at: dt.datetime, due: dt.datetime, share: float) -> dt.datetime:
    """Moment ``share`` of the elapsed (wall-clock) period is used, in the zone of ``due``.

    Wall-clock rather than working time, so the warning for a Friday-evening deadline
    does not fire before the weekend for a period that is mostly weekend.
    """
    _require_aware(registered_at, "registered_at")
    _require_aware(due, "due")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if due <= registered_at:
        return due
    moment = registered_at + (due - registered_at) * share
    return moment.astimezone(due.tzinfo).replace(microsecond=0)


def extend(
    due: dt.datetime,
    days: int,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> dt.datetime:
    """Deadline after an extension of ``days`` (59-FZ art. 12 p.2: up to 30, with notice).

    Counts in the policy's day unit (calendar days for fz59, working days otherwise) from
    the local date of ``due`` and re-applies the shift. Whether an extension is still
    allowed (``extensions_allowed``) depends on the appeal's history: the caller checks it.
    """
    _require_aware(due, "due")
    if policy.extension_max_days <= 0 or policy.extensions_allowed <= 0:
        raise ValueError(f"regime {policy.regime!r} allows no extension")
    if not 0 < days <= policy.extension_max_days:
        raise ValueError(f"extension must be 1..{policy.extension_max_days} days, got {days}")
    cal = calendar or default_calendar()
    tz = due.tzinfo
    assert tz is not None
    day = due.date()
    last = (cal.add_working_days(day, days) if policy.counting == "working_days"
            else day + dt.timedelta(days=days))
    # Never earlier than the deadline being extended, even if ``previous`` walks back.
    return max(end_of_day(cal.shift(last, policy.shift), tz), due)


def pause_shift(due: dt.datetime, paused_from: dt.datetime, resumed_at: dt.datetime) -> dt.datetime:
    """Deadline after a pause: later by the paused duration, never earlier.

    A pause that starts after the deadline (already breached) moves nothing: waiting for
    the citizen cannot cure a breach.
    """
    for name, moment in (("due", due), ("paused_from", paused_from),
                         ("resumed_at", resumed_at)):
        _require_aware(moment, name)
    if resumed_at < paused_from:
        raise ValueError("resumed_at is before paused_from")
    if paused_from >= due:
        return due
    return due + (resumed_at - paused_from)
