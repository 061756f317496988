"""Bridges the SLA state machine (Unix seconds) and the deadline rules (aware datetimes).

Policy resolution is cached per (regime, region, authority, category, subcategory): an appeal
stream repeats a small set of such tuples, and resolving merges several override layers.

Every deadline is counted on the production calendar of the appeal's region
(``BusinessCalendar.for_region``: the national days off plus the region's own, e.g. 30 August
in Tatarstan), so every per-day cache below is keyed by the region as well.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import (
    answer_due,
    day_count_deadlines,
    default_calendar,
    extend,
    pause_shift,
    pause_shift_warning,
    shift_warning_days,
    stage_due,
    warning_at,
    working_day_share,
)
from workers.deadlines.policies import (
    HOUR_COUNTINGS,
    POLICY_FILE_ENV,
    Policy,
    PolicyBook,
    PolicyError,
)
from workers.sla.engine import PAUSE_IN_UNITS, SlaParams, SlaRules, StageRule, State, zone

log = logging.getLogger(__name__)

# How an authority's `sla:` block in the routing rules names a period, per regime: each unit
# key is the policy file's counting of that name (`days` keeps the regime's own day unit).
# `hours` is clock hours: it was taken for working hours, so a round-the-clock 122 line
# written `hotline: {hours: 2}` skipped nights, weekends and holidays.
_UNIT_KEYS = {"working_days": "working_days", "calendar_days": "calendar_days",
              "days": None, "working_hours": "working_hours", "hours": "hours"}


def authority_overrides(authorities: Iterable[Any]) -> list[dict[str, Any]]:
    """Policy-book overrides from the routing rules' per-authority ``sla`` blocks.

    ``{pos: {working_days: 8}, incident: {first_response: {working_hours: 4}}, shift: next}``
    becomes overrides selected by (authority[, regime]): an authority's own deadlines live
    with its routing entry, where regional administrators maintain them.
    """
    out: list[dict[str, Any]] = []
    for auth in authorities:
        sla: Mapping[str, Any] = getattr(auth, "sla", None) or {}
        common = {k: sla[k] for k in ("shift", "warning_share", "escalation_after_hours")
                  if k in sla}
        if common:
            out.append({"authority": auth.id, **common})
        for regime, spec in sla.items():
            if not isinstance(spec, Mapping):
                continue
            period = spec.get("first_response", spec) if regime == "incident" else spec
            entry: dict[str, Any] = {"authority": auth.id, "regime": regime}
            for key, unit in _UNIT_KEYS.items():
                if isinstance(period, Mapping) and key in period:
                    entry["answer"] = period[key]
                    if unit:
                        entry["counting"] = unit
            for key in ("shift", "urgent_answer", "extensions_allowed", "extension_max_days"):
                if key in spec:
                    entry[key] = spec[key]
            if len(entry) > 2:
                out.append(entry)
    return out


def load_book(authorities: Iterable[Any] = (), path: str | None = None, *,
              snapshot: tuple[str, bytes | None] | None = None) -> PolicyBook:
    """The policy file (``snapshot``, the file's path and bytes as already read; else
    ``path``, else ``$APPEALS_POLICY_FILE``, TOML or YAML, else the packaged one) plus the
    authorities' own blocks.

    The file is parsed once per version of it (its bytes, or its stat): a routing rules load
    checks every authority's block with a book of its own (twelve in the demo rules), and
    each used to read and parse the file again.
    """
    if snapshot is not None:
        data, source = _snapshot_data(*snapshot)
    else:
        path = path or os.environ.get(POLICY_FILE_ENV) or None
        data, source = _policy_data(path, _stamp(path))
    data = copy.deepcopy(data)  # the cached parse stays as it was read
    extra = authority_overrides(authorities)
    if extra:
        data = {**data, "overrides": [*data.get("overrides", []), *extra]}
    return PolicyBook(data, source)


Stamp = tuple[int, int, int, int]
"""``(size, mtime_ns, inode, ctime_ns)`` of a policy file: the mtime alone stays the same
across a truncate and the write after it on a coarse clock (kernels before 6.13)."""


def _stat_stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _stamp(path: str | None) -> Stamp:
    if path is None:
        return (0, 0, 0, 0)
    try:
        return _stat_stamp(os.stat(path))
    except OSError:
        return (-1, -1, -1, -1)  # read_data reports the file


@lru_cache(maxsize=8)
def _policy_data(path: str | None, _stamp: Stamp) -> tuple[dict[str, Any], str]:
    return PolicyBook.read_data(path)


@lru_cache(maxsize=8)
def _snapshot_data(path: str, raw: bytes | None) -> tuple[dict[str, Any], str]:
    if raw is None:
        raise PolicyError(f"{path}: cannot read policy file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from exc
    return PolicyBook.parse_data(text, path), path


SETTLE_S = 5.0
"""How long a policy file must have been left alone before ``appeals sla recompute`` reads
it: the rules watcher's poll interval (``workers.routing.watcher.POLL_INTERVAL_S``), after
which the watcher takes a changed file too."""


def settled_policy_file(path: str, settle: float | None = None) -> tuple[str, bytes]:
    """``(path, bytes)`` of the policy file as it is now, for ``appeals sla recompute``;
    raises ``ValueError`` when it may be mid-save: changed while read (its stat before and
    after differ) or less than ``settle`` seconds ago (default :data:`SETTLE_S`).

    Why: a file saved in place is, between the truncate and the last write, valid TOML with
    overrides and subcategories missing, and a recompute that read it then applied those
    deadlines to every open appeal. A refused request changes nothing; repeat it once the
    file is saved.
    """
    window = SETTLE_S if settle is None else settle
    try:
        before = os.stat(path)
        raw = Path(path).read_bytes()
        after = os.stat(path)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from exc
    if _stat_stamp(before) != _stat_stamp(after):
        raise ValueError(f"the policy file {path} changed while it was read (being saved?); "
                         "nothing recomputed: repeat the recompute once it is saved")
    age = (time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns)) / 1e9
    # A moment further ahead than the window is another clock's (a file server's), not a
    # save in progress: refusing it would refuse every recompute until that moment.
    if -window < age < window:
        raise ValueError(f"the policy file {path} changed {max(age, 0.0):.1f} s ago, within "
                         f"the rules watcher's {window:g} s poll: it may still be being saved; "
                         f"nothing recomputed: repeat the recompute in {window:g} s")
    return path, raw


@dataclasses.dataclass(frozen=True)
class _Shared:
    rules: Any
    path: str | None  # $APPEALS_POLICY_FILE when the book was built (or refused)
    book: PolicyBook
    own: bool
    error: str = ""  # why these rules' own book could not be built (``own`` False)


_shared: _Shared | None = None
_shared_lock = threading.Lock()


def _snapshot_of(rules: Any, path: str | None) -> tuple[str, bytes | None] | None:
    """The policy file as ``rules`` were loaded with it; None (read it now) for rules loaded
    with another file or none, or built without the loader."""
    from workers.routing.loader import policy_file_path  # the loader imports this module

    snapshot: tuple[str, bytes | None] | None = getattr(rules, "policy_file", None)
    # Named as the loader names it (``policy_file_path``); compared raw, "/a//b.toml" or
    # "./b.toml" never matched and every book was read from disk again, not from the bytes the
    # rules were checked with.
    if path is not None and snapshot is not None and snapshot[0] == str(policy_file_path()):
        return snapshot
    return None


def rules_book(rules: Any, *, reload: bool = True) -> tuple[PolicyBook, bool]:
    """The policy book of the routing rules ``rules`` (:func:`load_book` with their
    authorities' blocks and the policy file as the rules were loaded with it,
    ``RoutingRules.policy_file``), the same object for every agent of the process, and
    whether it is these rules' own.

    Why one: intake (a 59-FZ appeal's latest registration), route (the subcategories the
    routed record may carry) and the SLA agent (deadlines) each read the policy file on their
    own; the SLA agent rebuilt its book when the rules watcher swapped the rules, the other
    two kept the one read at start. A subcategory an edited policy file selected then got its
    deadline in the SLA agent, but route still dropped it from the routed record as unknown.
    Now the book follows the rules object: the first agent to call after a reload builds it,
    the others get the same one.

    Why the file as the rules read it, and not the file's version on disk at each call: a
    file caught mid-save (truncated, half written) was used at once, dropping a subcategory
    from the appeals routed meanwhile for good, and with a coarse mtime could stay in use
    after the save completed. The rules watcher takes a policy file edit as it takes a rule
    file's, once it has settled, as new rules; no call here stats the file.

    A book that cannot be built on a reload (``reload``: new rules) is logged once and the
    book before stays in use by every agent: ``(book, False)``. At a worker's start
    (``reload=False``) it raises, as a worker must not start without policies.
    """
    global _shared
    path = os.environ.get(POLICY_FILE_ENV) or None
    current = _shared
    if (current is not None and current.rules is rules and current.path == path
            and (current.own or reload)):
        return current.book, current.own
    with _shared_lock:
        current = _shared
        if (current is None or current.rules is not rules or current.path != path
                or not (current.own or reload)):
            try:
                book = load_book(rules.authorities.values(), path,
                                 snapshot=_snapshot_of(rules, path))
                current = _Shared(rules, path, book, True)
            except Exception as exc:
                if current is None or not reload:
                    raise
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.error("the SLA policies cannot be built for the routing rules %s and the "
                          "policy file in place; every agent keeps the policies in use: %s",
                          getattr(rules, "version", "?"), error)
                current = _Shared(rules, path, current.book, False, error)
            _shared = current
    return current.book, current.own


def refresh_book(rules: Any, *, settle: float | None = None) -> PolicyBook:
    """The book of ``rules`` (None: the policy file's alone) with the policy file as it is
    now (``appeals sla recompute``), made the shared one for every agent of the process;
    raises ``ValueError`` naming why when the file may be mid-save
    (:func:`settled_policy_file`) or the book cannot be built, the book in use staying."""
    global _shared
    path = os.environ.get(POLICY_FILE_ENV) or None
    snapshot = settled_policy_file(path, settle) if path is not None else None
    authorities = rules.authorities.values() if rules is not None else ()
    if rules is None:
        return load_book(authorities, path, snapshot=snapshot)  # its PolicyError names the key
    try:
        book = load_book(authorities, path, snapshot=snapshot)
    except Exception as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    with _shared_lock:
        _shared = _Shared(rules, path, book, True)
    return book


def policy_book(rules: Any = None, *, reload: bool = True) -> PolicyBook:
    """The policy book agents and tools use: that of ``rules`` (:func:`rules_book`; at a
    worker's start ``reload=False``: raises rather than keep another book), or without
    routing rules the policy file's alone, built once per version of the file (one-shot
    tools)."""
    if rules is not None:
        return rules_book(rules, reload=reload)[0]
    path = os.environ.get(POLICY_FILE_ENV) or None
    return _file_book(path, _stamp(path))


@lru_cache(maxsize=8)
def _file_book(path: str | None, _stamp: Stamp) -> PolicyBook:
    return load_book((), path)


class DeadlineService:
    """Deadlines of the SLA engine; ``calendar`` is the national calendar whose regions are
    used (default: the process-wide ``default_calendar()``, read at each call so a reload
    after ``default_calendar.cache_clear()`` applies)."""

    def __init__(self, book: PolicyBook | None = None,
                 calendar: BusinessCalendar | None = None) -> None:
        self.book = book or policy_book()
        self.calendar = calendar
        self._policy = lru_cache(maxsize=4096)(self._resolve)
        self._stage_rules = lru_cache(maxsize=4096)(self._tracked)
        self._day_stage_due = lru_cache(maxsize=16384)(self._day_due)
        self._day_answer_due = lru_cache(maxsize=16384)(self._day_answer)
        self._working_day_warning = lru_cache(maxsize=16384)(self._day_warning)

    def _calendar(self, region: str | None) -> BusinessCalendar:
        """The production calendar of ``region`` (national for a region without a table)."""
        return (self.calendar or default_calendar()).for_region(region)

    def _resolve(self, regime: str, region: str, authority: str, category: str | None,
                 subcategory: str | None) -> Policy:
        return self.book.resolve(regime, region=region, authority=authority, category=category,
                                 subcategory=subcategory)

    def due(self, regime: str, start_ts: float, tz: str, urgent: bool, authority: str,
            category: str | None, subcategory: str | None, region: str) -> float:
        """Answer deadline; a policy's ``timezone`` wins over the region's ``tz``, as in
        ``appeals sla due`` (an authority working on Moscow time counts its days there)."""
        policy = self._policy(regime, region, authority, category, subcategory)
        tz = policy.timezone or tz
        start = dt.datetime.fromtimestamp(start_ts, zone(tz))
        if policy.counting not in HOUR_COUNTINGS:
            # A day-counted deadline ends on a day that depends on the start's local date
            # only: remembered per day, as every appeal of a day and policy shares it.
            return self._day_answer_due(regime, region, authority, category, subcategory, tz,
                                        urgent, start.date())
        return answer_due(regime, start, tz, policy, urgent=urgent,
                          calendar=self._calendar(region)).timestamp()

    def _day_answer(self, regime: str, region: str, authority: str, category: str | None,
                    subcategory: str | None, tz: str, urgent: bool, day: dt.date) -> float:
        policy = self._policy(regime, region, authority, category, subcategory)
        start = dt.datetime.combine(day, dt.time(12), zone(tz))
        return answer_due(regime, start, tz, policy, urgent=urgent,
                          calendar=self._calendar(region)).timestamp()

    def extend(self, regime: str, due_ts: float, days: int, tz: str, authority: str,
               category: str | None, subcategory: str | None, region: str) -> float:
        policy = self._policy(regime, region, authority, category, subcategory)
        due = dt.datetime.fromtimestamp(due_ts, zone(policy.timezone or tz))
        return extend(due, days, policy, self._calendar(region)).timestamp()

    def _state_policy(self, state: State) -> tuple[Policy, ZoneInfo]:
        policy = self._policy(state["regime"], state["region"], state["auth"], state["cat"],
                              state["sub"])
        return policy, zone(policy.timezone or state["tz"])

    def warning(self, state: State, start_ts: float, due_ts: float, share: float) -> float:
        """Warning moment: ``share`` of the period used, in the policy's unit
        (``deadlines.compute.warning_at``): working time for ``incident`` and ``hotline``,
        working days for ``pos`` (on a working day), the wall-clock share for calendar days
        and clock hours.
        """
        policy, tz = self._state_policy(state)
        return self._warning_in(policy, policy.counting, state["region"], tz, start_ts,
                                due_ts, share)

    def _warning_in(self, policy: Policy, counting: str, region: str, tz: ZoneInfo,
                    start_ts: float, due_ts: float, share: float) -> float:
        """The warning of a period of ``policy`` counted in ``counting`` (the answer's unit,
        or a stage's)."""
        if counting in ("calendar_days", "hours"):
            # Computed here as it always was, so a calendar-day warning does not move.
            return start_ts + (due_ts - start_ts) * share
        if counting == "working_days":
            # It depends on the start's local date only (the registration day never counts):
            # remembered, as every appeal of a day and deadline shares it.
            day = dt.datetime.fromtimestamp(start_ts, tz).date()
            moment = self._working_day_warning(region, tz.key, day, due_ts, share)
            if moment is not None:
                return moment
            # No working day in the period (a hand-made deadline): the wall-clock share.
            return start_ts + (due_ts - start_ts) * share
        start = dt.datetime.fromtimestamp(start_ts, tz)
        due = dt.datetime.fromtimestamp(due_ts, tz)
        if policy.counting != "working_hours":  # a working-hour stage of a day-counted policy
            policy = dataclasses.replace(policy, counting="working_hours")
        return warning_at(start, due, share, policy, self._calendar(region)).timestamp()

    def _day_warning(self, region: str, tz: str, day: dt.date, due_ts: float,
                     share: float) -> float | None:
        start = dt.datetime.combine(day, dt.time(12), zone(tz))
        due = dt.datetime.fromtimestamp(due_ts, zone(tz))
        moment = working_day_share(start, due, share, self._calendar(region))
        return None if moment is None else moment.timestamp()

    def pause(self, state: State, due_ts: float, warn_ts: float, paused_ts: float,
              resumed_ts: float) -> tuple[float, float]:
        """(due, warning) after a pause, in the policy's unit (``deadlines.compute.pause_shift``
        and ``pause_shift_warning``), in the zone the deadline was counted in. A moment the
        pause does not move comes back as the very number it was."""
        policy, tz = self._state_policy(state)
        due = dt.datetime.fromtimestamp(due_ts, tz)
        warn = dt.datetime.fromtimestamp(warn_ts, tz)
        paused = dt.datetime.fromtimestamp(paused_ts, tz)
        resumed = dt.datetime.fromtimestamp(resumed_ts, tz)
        cal = self._calendar(state["region"])
        moved_due = pause_shift(due, paused, resumed, policy, cal)
        moved_warn = pause_shift_warning(warn, due, moved_due, paused, resumed, policy, cal)
        return (due_ts if moved_due == due else moved_due.timestamp(),
                warn_ts if moved_warn == warn else moved_warn.timestamp())

    def recount(self, state: State, adjustments: list[list[Any]],
                share: float) -> tuple[float, float] | None:
        """(due, warning) of a day-counted answer period from its start and ``adjustments``
        (the state's ``adj`` entries, in order), each counted from the statutory last day
        (``deadlines.compute.day_count_deadlines``); None for a working-hours policy and for
        a pause stored before pauses counted in policy units: those keep the step-by-step
        arithmetic (``extend``, ``pause``). Raises ValueError for an extension the policy
        does not allow.

        The warning is ``share`` of the period with all its extensions (in the policy's
        unit, as :meth:`warning`), moved by each pause that began before it as far as that
        pause moved the deadline (``pos``: by as many working days,
        ``deadlines.compute.shift_warning_days``): paused time is not time used. It depends
        on the extensions and the pauses, not on their order: a pause enters ``adj`` at its
        resume, so an extension declared during the pause came before it and was moved by
        it, while one declared after the resume reset the warning to ``share`` of the whole
        span, pause included (fz59 registered 2 March 2026, paused 10-20 March, extended by
        30 days: 22 April, or 24 April when extended during the pause; the same deadline,
        8 May).
        """
        policy, tz = self._state_policy(state)
        if policy.counting in HOUR_COUNTINGS:
            return None
        steps: list[tuple[Any, ...]] = []
        for entry in adjustments:
            if entry[0] == "e":
                steps.append(("e", int(entry[1])))
            elif len(entry) > 3 and entry[3] == PAUSE_IN_UNITS:
                steps.append(("p", dt.datetime.fromtimestamp(float(entry[1]), tz),
                              dt.datetime.fromtimestamp(float(entry[2]), tz)))
            else:
                return None
        start_ts = float(state["start"])
        start = dt.datetime.fromtimestamp(start_ts, tz)
        region = state["region"]
        cal = self._calendar(region)
        urgent = bool(state["urgent"])
        dues = day_count_deadlines(start, tz, policy, steps, urgent=urgent, calendar=cal)
        # The warning's track: every extension first, then the pauses in their order.
        extensions = [step for step in steps if step[0] == "e"]
        pauses = [step for step in steps if step[0] == "p"]
        ordered = [*extensions, *pauses]
        track = dues if ordered == steps else day_count_deadlines(
            start, tz, policy, ordered, urgent=urgent, calendar=cal)
        before = track[len(extensions)].timestamp()
        warn = self._warning_in(policy, policy.counting, region, tz, start_ts, before, share)
        for step, after in zip(pauses, track[len(extensions) + 1:], strict=True):
            moved = after.timestamp()
            if step[1].timestamp() < warn:
                if policy.counting == "working_days":
                    warn = shift_warning_days(dt.datetime.fromtimestamp(warn, tz),
                                              dt.datetime.fromtimestamp(before, tz), after,
                                              policy, cal).timestamp()
                else:
                    warn += max(0.0, moved - before)
            before = moved
        due = dues[-1].timestamp()
        return due, min(warn, due)

    def tracked_stages(self, state: State) -> dict[str, StageRule]:
        """The appeal's policy's tracked stages (those with ``ended_by``); asked at every
        lifecycle event, so remembered per policy key like the policy itself."""
        return self._stage_rules(state["regime"], state["region"], state["auth"], state["cat"],
                                 state["sub"])

    def _tracked(self, regime: str, region: str, authority: str, category: str | None,
                 subcategory: str | None) -> dict[str, StageRule]:
        policy = self._policy(regime, region, authority, category, subcategory)
        return {name: StageRule(stage.ended_by, stage.restarted_by, stage.cancelled_by,
                                stage.breach_timer)
                for name, stage in policy.stages.items() if stage.tracked}

    def stage_deadline(self, state: State, name: str, start_ts: float,
                       share: float) -> tuple[float, float]:
        """(due, warning) of stage ``name`` started at ``start_ts``, in the zone the answer is
        counted in; the warning at ``share`` of the stage, in the stage's unit (as
        :meth:`warning` does for the answer)."""
        policy, tz = self._state_policy(state)
        stage = policy.stage(name)
        if stage.counting not in HOUR_COUNTINGS:
            # A day-counted stage ends on a day that depends on its start's local date only.
            day = dt.datetime.fromtimestamp(start_ts, tz).date()
            due_ts = self._day_stage_due(state["regime"], state["region"], state["auth"],
                                         state["cat"], state["sub"], name, tz.key, day)
        else:
            start = dt.datetime.fromtimestamp(start_ts, tz)
            due_ts = stage_due(name, start, tz.key, policy, self._calendar(state["region"])
                               ).timestamp()
        # Counted in the stage's unit, whatever the answer's unit is.
        return due_ts, self._warning_in(policy, stage.counting, state["region"], tz, start_ts,
                                        due_ts, share)

    def _day_due(self, regime: str, region: str, authority: str, category: str | None,
                 subcategory: str | None, name: str, tz: str, day: dt.date) -> float:
        policy = self._policy(regime, region, authority, category, subcategory)
        start = dt.datetime.combine(day, dt.time(12), zone(tz))
        return stage_due(name, start, tz, policy, self._calendar(region)).timestamp()

    def params(self, state: State, warning_share: float | None = None,
               escalation_after: float | None = None) -> SlaParams:
        """The appeal's own policy numbers; a given number overrides its policy's (drills)."""
        policy = self._policy(state["regime"], state["region"], state["auth"], state["cat"],
                              state["sub"])
        return SlaParams(
            warning_share=policy.warning_share if warning_share is None else warning_share,
            escalation_after=(policy.escalation_after.total_seconds()
                              if escalation_after is None else escalation_after),
            max_extensions=policy.extensions_allowed,
        )

    def rules(self, warning_share: float | None = None,
              escalation_after: float | None = None) -> SlaRules:
        """Rules whose numbers come from each appeal's policy (per regime, region, authority,
        category, subcategory: DESIGN.md §2), unless a number is given to override them all
        (``APPEALS_WARNING_SHARE`` / ``APPEALS_ESCALATION_AFTER``, for drills and tests)."""

        def params(state: State) -> SlaParams:
            return self.params(state, warning_share, escalation_after)

        return SlaRules(
            due=self.due,
            extend=self.extend,
            warning_share=0.75 if warning_share is None else warning_share,
            escalation_after=3 * 86400.0 if escalation_after is None else escalation_after,
            params=params,
            warning=self.warning,
            pause=self.pause,
            recount=self.recount,
            stages=self.tracked_stages,
            stage_due=self.stage_deadline,
        )
