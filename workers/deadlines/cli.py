"""``appeals sla due``: compute one deadline from the command line.

Why a CLI: operators and authorities ask "when is this due?" and the answer must come from
the same code the SLA engine uses, not from a spreadsheet. The lead wires this into the
main ``appeals`` command through :func:`register`; ``python -m workers.deadlines.cli`` runs
it standalone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from schemas.validation import MAX_YEAR, MIN_YEAR
from workers.cli import positive_float, positive_int
from workers.deadlines.calendar import (
    MAX_PERIOD_DAYS,
    MAX_PERIOD_HOURS,
    SHIFT_MODES,
    BusinessCalendar,
    CalendarFileError,
    missing_decree_note,
    missing_regional_note,
)
from workers.deadlines.compute import (
    answer_due,
    final_answer_due,
    redirect_due,
    registration_due,
    stage_due,
    to_local,
    warning_at,
)
from workers.deadlines.policies import HOUR_COUNTINGS, REGIMES, PolicyBook, PolicyError

__all__ = ["main", "register", "run_due"]

_DUE_EPILOG = """\
counting rules (see workers/deadlines/compute.py):
  fz59      calendar days; the day after registration is day 1 (Civil Code art. 191), so
            registration on day D is due at 23:59:59 local of D+30 (59-FZ art. 12), then
            shifted if that is a day off (default: previous working day).
  pos       N working days (default 10) on the Russian production calendar, starting the
            day after registration; due 23:59:59 local of the N-th working day.
  incident  first public response within H working hours (default 8, 4 with --urgent),
            09:00-18:00 local on working days; outside hours the clock starts at the next
            opening.
  hotline   callback within 8 working hours (4 with --urgent), a configurable default; a
            line working round the clock counts clock hours (policy file: counting =
            "hours": every hour of every day, no calendar).

warning_at: when the policy's warning_share of the period is used, in its unit: for incident
and hotline in working time (75 % of 8 working hours = after 6 working hours); for pos in
working days, each counted whole, on a working day (75 % of 10 = 12:00 of the 8th working
day after registration); for fz59 and clock hours as a share of the wall-clock span.

Calendar years without a known decree: for a year later than the last one the installed
holidays package has transfers for (2027 in holidays 0.109) and that the calendar file does
not list, Labour Code art. 112 transfers are applied (a holiday on a Saturday or Sunday gives
a day off on the next working day; New Year holidays are not moved, working Saturdays are
not known). The output then has a "calendar_note" key and the note goes to stderr too:
load the decree for that year with --calendar-file / APPEALS_CALENDAR_FILE.

Regional days off: --region also picks the region's own non-working holidays (packaged
workers/deadlines/regional_calendar.toml: Tatarstan 30 Aug and 6 Nov, Bashkortostan 11 Oct;
[regions."CODE"] tables of the calendar file). "calendar" in the output says "national" or
"regional:CODE". Holidays a regional act dates each year (Uraza and Kurban Bayram) count
only once the calendar file has [regions."CODE".years.N] for that year; until then the
output has a "regional_calendar_note" (also on stderr).

Dates are local to the zone the deadline is counted in: the policy's `timezone`, else the
authority's own (routing rules), else the region's. --registered-at without a UTC offset is
taken as local time of that zone; with an offset (or Z) it is converted.
Output: one JSON object; "due" is ISO 8601 with that zone's UTC offset.
Errors (unknown regime or region, bad date, bad calendar file): message on stderr, exit 2.

examples:
  appeals sla due --regime fz59 --registered-at 2026-03-10T20:00:00Z --region 22
  appeals sla due --regime incident --registered-at 2026-05-08T16:00 --region 77 --urgent
"""


class _UsageError(Exception):
    """Bad input from the command line; reported on stderr with exit code 2."""


def _working_days_arg(text: str) -> int:
    value = positive_int(text)
    if value > MAX_PERIOD_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PERIOD_DAYS}, got {value}")
    return value


def _hours_arg(text: str) -> float:
    value = positive_float(text)
    if value > MAX_PERIOD_HOURS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PERIOD_HOURS}, got {text}")
    return value


def _parse_registered_at(text: str, tz: str) -> dt.datetime:
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise _UsageError(f"--registered-at: not an ISO 8601 date-time: {text!r}") from None
    local = moment if moment.tzinfo is None else moment.astimezone(ZoneInfo(tz))
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        # The years an appeal's moments may have (schemas.validation). Year 1 printed an
        # offset of +11:49:56 with no note, year 9999 "date value out of range" naming no
        # option (review of session 15).
        raise _UsageError(f"--registered-at: the year must be {MIN_YEAR}..{MAX_YEAR}, "
                          f"got {text!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _authority(authority_id: str | None) -> tuple[str | None, Any]:
    """(its id as the rules spell it, the routing rules' entry) of ``--authority``
    (``$APPEALS_ROUTING_RULES`` or the packaged rules, as the workers load them); (the id as
    given, None) without the option or for a body the rules do not know (the caller checks
    that the policy file names it).

    In any case, as the README names bodies: ``22-MINZHKH`` was not found, and the region's
    default deadline was printed as if it were that body's."""
    if not authority_id:
        return authority_id, None
    from workers.routing.loader import RulesError, load_rules

    try:
        rules = load_rules()
    except RulesError as exc:
        raise _UsageError(f"--authority: cannot read the routing rules: {exc}") from None
    wanted = authority_id.casefold()
    for known, body in rules.authorities.items():
        if known.casefold() == wanted:
            return known, body
    return authority_id, None


def _known_to_the_policy_file(authority_id: str, book: PolicyBook) -> str:
    """``authority_id`` as the policy file's overrides spell it; a :class:`_UsageError`
    naming it (and the closest known ids) when they do not select it either: a typo
    (``22-minzkh``) was taken silently and printed the region's default deadline."""
    wanted = authority_id.casefold()
    named = sorted(book.authorities())
    for known in named:
        if known.casefold() == wanted:
            return known
    import difflib

    from workers.routing.loader import load_rules

    ids = {i.casefold(): i for i in (*load_rules().authorities, *named)}
    close = [ids[i] for i in difflib.get_close_matches(wanted, sorted(ids), n=3, cutoff=0.75)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise _UsageError(f"--authority: unknown authority {authority_id!r}: neither the routing "
                      f"rules nor the policy file's overrides name it{hint}")


def _authority_zone(body: Any) -> str | None:
    """The authority's own zone, as the SLA worker reads it (:func:`known_zone`)."""
    from workers.sla.engine import known_zone

    return known_zone(getattr(body, "timezone", None))


def _book(policy_file: str | None, body: Any) -> PolicyBook:
    """The policy book the SLA engine uses for this authority: the policy file plus the
    authority's own ``sla:`` block of the routing rules."""
    from workers.sla.deadline_service import load_book

    return load_book([body] if body is not None else [], path=policy_file)


def run_due(args: argparse.Namespace) -> dict[str, Any]:
    """Compute the JSON answer for ``sla due``; raises on bad input (no printing here)."""
    from workers.geo.regions import normalize_code, region_timezone

    try:
        region = normalize_code(args.region)
        region_tz = region_timezone(region)
    except KeyError as exc:
        raise _UsageError(f"--region: {exc}") from None
    authority, body = _authority(args.authority)
    try:
        book = _book(args.policy_file, body)
        if authority is not None and body is None:
            authority = _known_to_the_policy_file(authority, book)
        policy = book.resolve(args.regime, region=region, authority=authority,
                              category=args.category, subcategory=args.subcategory)
        # The note below reports a year without a decree; the library's log line would
        # only repeat it on stderr.
        national = BusinessCalendar.from_env(args.calendar_file, log_missing_decree=False)
    except (PolicyError, CalendarFileError) as exc:
        raise _UsageError(str(exc)) from None
    # The region's own days off (regional_calendar.toml, the file's [regions] tables).
    calendar = national.for_region(region)
    # As the SLA engine counts it: the policy's zone, else the authority's own (routing
    # rules' ``timezone:``, carried by the routed record), else the region's.
    tz = policy.timezone or _authority_zone(body) or region_tz
    registered_at = _parse_registered_at(args.registered_at, tz)

    ignored: list[str] = []
    changes: dict[str, Any] = {}
    if args.shift is not None:
        changes["shift"] = args.shift
    if args.working_days is not None:
        if policy.counting == "working_days":
            changes["answer"] = args.working_days
            changes["urgent_answer"] = None
        elif "final_answer" in policy.stages:
            stage = dataclasses.replace(policy.stages["final_answer"], amount=args.working_days)
            changes["stages"] = {**policy.stages, "final_answer": stage}
        else:
            ignored.append("--working-days")
    if args.hours is not None:
        if policy.counting in HOUR_COUNTINGS:
            # Explicit hours beat the urgent default: the operator asked for this number.
            changes["answer"] = args.hours
            changes["urgent_answer"] = None
        else:
            ignored.append("--hours")
    if changes:
        policy = dataclasses.replace(policy, **changes)

    due = answer_due(args.regime, registered_at, tz, policy, urgent=args.urgent,
                     calendar=calendar)
    out: dict[str, Any] = {
        "due": _iso(due),
        "regime": args.regime,
        "region": region,
        "timezone": tz,
        "registered_at": _iso(to_local(registered_at, tz)),
        "counting": policy.counting,
        "amount": _plain_number(policy.answer_amount(args.urgent)),
        "urgent": bool(args.urgent),
        "shift": policy.shift,
        "warning_at": _iso(warning_at(registered_at, due, policy.warning_share, policy,
                                      calendar)),
        "escalation_at": _iso(due + policy.escalation_after),
        "calendar": "national" if calendar.region is None else f"regional:{calendar.region}",
    }
    if "final_answer" in policy.stages:
        out["final_answer_due"] = _iso(final_answer_due(registered_at, tz, policy, calendar))
    if "redirect" in policy.stages:
        out["redirect_due"] = _iso(redirect_due(registered_at, tz, policy, calendar))
    # The stages nothing tracks (README "Stage deadlines"): 59-FZ registration within 3 days
    # of receipt (counted from the moment given), the platform's moderation, then assignment
    # counted from the moderation deadline (policies.toml: "within 1 working day of
    # moderation").
    if "registration" in policy.stages:
        out["registration_due"] = _iso(
            registration_due(registered_at, tz, policy, calendar))
    if "moderation" in policy.stages:
        moderated = stage_due("moderation", registered_at, tz, policy, calendar)
        out["moderation_due"] = _iso(moderated)
        if "assignment" in policy.stages:
            out["assignment_due"] = _iso(
                stage_due("assignment", moderated, tz, policy, calendar))
    elif "assignment" in policy.stages:
        out["assignment_due"] = _iso(
            stage_due("assignment", registered_at, tz, policy, calendar))
    if policy.extensions_allowed and policy.extension_max_days:
        out["extension_max_days"] = policy.extension_max_days
    if ignored:
        out["ignored_options"] = ignored
    undecreed = calendar.undecreed_years_used()
    if undecreed:
        out["calendar_note"] = missing_decree_note(undecreed)
    unloaded = calendar.regional_years_missing()
    if unloaded and calendar.region is not None:
        out["regional_calendar_note"] = missing_regional_note(
            national.regions[calendar.region], unloaded)
    return out


def _handle_due(args: argparse.Namespace) -> int:
    try:
        result = run_due(args)
    except (_UsageError, ValueError, LookupError, OverflowError) as exc:
        print(f"appeals sla due: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for key in ("calendar_note", "regional_calendar_note"):
        if key in result:
            print(f"appeals sla due: note: {result[key]}", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sla`` (with ``due``) to an argparse subparsers object.

    The handler is stored as ``func`` on the parsed namespace; call ``args.func(args)``. It
    prints the JSON and returns 0, or prints the error on stderr and raises
    ``SystemExit(2)``, so exit codes are right however the caller dispatches.
    """
    sla = subparsers.add_parser(
        "sla", help="SLA deadlines: compute due moments on the Russian production calendar",
        description="SLA deadline tools (regimes fz59, pos, incident, hotline).")
    sla_sub = sla.add_subparsers(dest="sla_command", metavar="COMMAND")
    sla_sub.required = True
    due = sla_sub.add_parser(
        "due", help="print the deadline of one appeal as JSON",
        description="Compute the answer deadline (fz59, pos) or the first-response deadline\n"
                    "(incident, hotline) of one appeal and print one JSON object.",
        epilog=_DUE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    due.add_argument("--regime", required=True, choices=REGIMES,
                     help="appeal regime: picks the SLA policy")
    due.add_argument("--registered-at", required=True, metavar="ISO8601",
                     help="registration moment, e.g. 2026-03-10T20:00:00Z or 2026-03-11T03:00 "
                          "(no offset = local time of the zone the deadline is counted in: "
                          "the policy's, else the authority's, else the region's)")
    due.add_argument("--region", required=True, metavar="CODE",
                     help="federal subject code, e.g. 22 (Altai Krai), 77 (Moscow): gives the "
                          "time zone, regional overrides and the region's own days off "
                          "(16 Tatarstan: 30 Aug, 6 Nov)")
    due.add_argument("--shift", choices=SHIFT_MODES,
                     help="deadline on a day off: previous/next working day or none "
                          "(default: the policy's; fz59 previous)")
    due.add_argument("--working-days", type=_working_days_arg, metavar="N",
                     help="override the working-day period: the answer of a regime counted "
                          "in working days (pos), else the final answer (incident, hotline); "
                          f"1..{MAX_PERIOD_DAYS}: about 14 years of working days, far above "
                          "any SLA, and beyond it the calendar has no meaning")
    due.add_argument("--hours", type=_hours_arg, metavar="H",
                     help="override the period in hours, working or clock hours as the "
                          "policy counts (incident/hotline first response), > 0 and at "
                          f"most {MAX_PERIOD_HOURS} (over 4 years of 9-hour working days; "
                          "first responses take hours); wins over --urgent")
    due.add_argument("--urgent", action="store_true",
                     help="urgent appeal: use the policy's shorter period (incident: 4 h)")
    due.add_argument("--authority",
                     help="authority id, in any case: its policy overrides, its own `sla:` "
                          "block and time zone in the routing rules ($APPEALS_ROUTING_RULES), "
                          "as the SLA engine counts them; an id neither the rules nor the "
                          "policy file's overrides name is an error (exit 2)")
    due.add_argument("--category", help="category code, for category overrides")
    due.add_argument("--subcategory", help="subcategory code, for subcategory overrides")
    due.add_argument("--policy-file", metavar="PATH",
                     help="policy file (default: $APPEALS_POLICY_FILE or the packaged "
                          "workers/deadlines/policies.toml)")
    due.add_argument("--calendar-file", metavar="PATH",
                     help="calendar override file (default: $APPEALS_CALENDAR_FILE)")
    due.set_defaults(func=_handle_due)
    _register_recompute(sla_sub)
    return sla


_RECOMPUTE_EPILOG = """\
how it works:
  Deadlines of open appeals are fixed when they are set (routing, extension, pause, redirect,
  reopening). After a change of the calendar override file (APPEALS_CALENDAR_FILE, e.g. the
  Government decree on next year's days off) or of the policy file (APPEALS_POLICY_FILE),
  deploy the new file to every worker at the same path, then run this command.

  It publishes one recompute request per partition of appeals.sla.lifecycle. The worker that
  owns a partition re-reads both files and recomputes every open appeal of that partition from
  its period start, extensions and pauses, inside its stream (Faust tables change only there).
  An appeal whose deadline moves gets a new timer cycle (old timers become stale) and a new
  due_at in the read model; an alert already sent whose moment is still past is not sent
  again; a breach whose new deadline lies ahead is cured. Appeals whose deadline is the same
  are left untouched, so running the command twice is harmless. Answered and closed appeals
  keep their history. A broken file is refused: the request is dead-lettered
  (reason recompute_failed) and the worker keeps its current rules. So is a policy file
  changed less than 5 s before (the routing rules watcher's poll) or while it is read: it
  may be half saved; run the command again once the file is in place.

  Kafka and the topic prefix come from APPEALS_KAFKA and APPEALS_TOPIC_PREFIX.
  Output: one JSON object {"request_id", "topic", "partitions", "reason"}; exit 2 on error.

examples:
  appeals sla recompute --reason "decree on days off in 2027"
  appeals sla recompute --partition 3
"""


def _register_recompute(sla_sub: Any) -> None:
    recompute = sla_sub.add_parser(
        "recompute", help="recompute deadlines of open appeals after a calendar/policy change",
        description="Ask the SLA workers to recompute the deadlines of every open appeal with\n"
                    "the current calendar and policy files.",
        epilog=_RECOMPUTE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    recompute.add_argument("--partition", type=int, action="append", metavar="N",
                           dest="partitions",
                           help="only this partition (repeatable; default: all partitions)")
    recompute.add_argument("--reason", metavar="TEXT",
                           help="why (kept in the request, shown in the workers' logs)")
    recompute.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                           help="how long to wait for the broker (default 30)")
    recompute.set_defaults(func=_handle_recompute)


def _handle_recompute(args: argparse.Namespace) -> int:
    from streams.settings import ConfigError, Settings
    from workers.cli import BROKER_WAIT_S, broker_unreachable
    from workers.sla.recompute import publish_recompute

    try:
        settings = Settings.load()
        # kafka-python would try for --timeout seconds with a log line per attempt.
        unreachable = broker_unreachable(settings.kafka, min(args.timeout, BROKER_WAIT_S))
        if unreachable:
            raise RuntimeError(f"cannot reach Kafka at {unreachable} "
                               f"(APPEALS_KAFKA={settings.kafka}): no connection accepted")
        result = publish_recompute(settings, args.partitions, args.reason, args.timeout)
    except (ConfigError, RuntimeError) as exc:
        print(f"appeals sla recompute: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m workers.deadlines.cli sla due ...``."""
    parser = argparse.ArgumentParser(prog="appeals", description="citizen-appeals tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register(sub)
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


if __name__ == "__main__":
    sys.exit(main())
