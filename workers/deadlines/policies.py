"""SLA policies per regime, as data, with overrides per region/authority/category/subcategory.

Why data: DESIGN.md §2 says every deadline value is a default that a region, an authority
or a category may change; regional regulations change more often than our code. So the
defaults live in ``policies.toml`` next to this module (or a file named by
``APPEALS_POLICY_FILE``) and this module only validates and resolves them.

Resolution: start from the regime's defaults and apply every matching override, least
specific first, so the most specific value wins but unrelated fields from broader rules
still apply. Specificity is the number of selectors among region/authority/category/
subcategory; ties break subcategory > category > authority > region > regime (a narrower
subject beats a wider organisation, an authority beats its region).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workers.deadlines.calendar import (
    MAX_PERIOD_DAYS,
    MAX_PERIOD_HOURS,
    SHIFT_MODES,
    ShiftMode,
    valid_hours,
)

__all__ = [
    "COUNTING_KINDS",
    "HOUR_COUNTINGS",
    "POLICY_FILE_ENV",
    "REGIMES",
    "STAGE_END_EVENTS",
    "STAGE_RESTART_EVENTS",
    "Counting",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "Stage",
]

POLICY_FILE_ENV = "APPEALS_POLICY_FILE"
Counting = Literal["calendar_days", "working_days", "working_hours", "hours"]
COUNTING_KINDS: tuple[Counting, ...] = ("calendar_days", "working_days", "working_hours",
                                        "hours")
#: The countings in hours: their amounts may be fractional and their deadlines are exact
#: moments, not ends of days. ``hours`` is clock time in the region's zone, every hour of
#: every day (a 122 line that works round the clock: DESIGN.md §2 leaves its deadline to the
#: region); ``working_hours`` only the policy's working hours on working days.
HOUR_COUNTINGS: frozenset[Counting] = frozenset({"working_hours", "hours"})
REGIMES: tuple[str, ...] = ("fz59", "pos", "incident", "hotline")

_SELECTORS = ("regime", "region", "authority", "category", "subcategory")
# Tie-break order on equal selector counts (later = more specific).
_SELECTOR_RANK = ("regime", "region", "authority", "category", "subcategory")
_FIELDS = (
    "counting", "answer", "urgent_answer", "shift", "work_start", "work_end",
    "warning_share", "escalation_after_hours", "extensions_allowed", "extension_max_days",
    "timezone", "stages",
)
_REQUIRED = ("counting", "answer", "shift", "warning_share", "escalation_after_hours")


class PolicyError(ValueError):
    """The policy file or an override is invalid; the message says where."""


#: A stage's name: the pattern of ``stage`` in ``sla-alert.v1`` and of ``kind`` in ``sla-tick.v1``.
STAGE_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Lifecycle events that can end a tracked stage, and those that can start it again.
STAGE_END_EVENTS: tuple[str, ...] = ("accepted", "answered", "redirected", "closed")
STAGE_RESTART_EVENTS: tuple[str, ...] = ("redirected", "reopened")


@dataclass(frozen=True)
class Stage:
    """A stage deadline other than the answer (registration, redirect, moderation, ...).

    A stage with ``ended_by`` is *tracked*: the SLA engine starts it with the answer clock and
    warns at the policy's share of it. One of the ``ended_by`` events completes the stage; after
    the deadline that is a breach. With ``breach_timer`` the deadline itself fires the breach
    (the incident's final answer: not closing in time is the breach); without it only a late
    completion does (59-FZ art. 8 p.3 binds a redirect, so the breach is a late redirect, not
    the 7th day passing). ``cancelled_by`` events make the stage moot, quietly (the body accepts
    the appeal as its own, answers it); closing the appeal ends every stage, quietly unless
    ``closed`` is in ``ended_by``. ``restarted_by`` starts it again at the receiving body (a
    redirect) or for a new answer period (a reopen). A stage without ``ended_by``
    (registration, the platform's moderation and assignment: done before an appeal reaches
    this system, or by it) is computed by ``appeals sla due`` only.
    """

    counting: Counting
    amount: float
    ended_by: frozenset[str] = frozenset()
    restarted_by: frozenset[str] = frozenset()
    cancelled_by: frozenset[str] = frozenset()
    breach_timer: bool = True

    @property
    def tracked(self) -> bool:
        return bool(self.ended_by)


@dataclass(frozen=True)
class Policy:
    """Resolved SLA policy for one appeal; immutable so it can be cached and shared."""

    regime: str
    counting: Counting
    answer: float
    shift: ShiftMode
    warning_share: float
    escalation_after: dt.timedelta
    urgent_answer: float | None = None
    work_start: dt.time = dt.time(9, 0)
    work_end: dt.time = dt.time(18, 0)
    extensions_allowed: int = 0
    extension_max_days: int = 0
    timezone: str | None = None
    stages: Mapping[str, Stage] = field(default_factory=dict)

    def answer_amount(self, urgent: bool = False) -> float:
        """Answer period in the policy's unit; urgent uses ``urgent_answer`` when set, never
        longer than the ordinary period: an authority's override that shortens ``answer``
        (a ЦУР's 2 working hours) kept the book's 4-hour ``urgent_answer``, and an urgent
        incident got more time than an ordinary one (review of session 15)."""
        if urgent and self.urgent_answer is not None:
            return min(self.urgent_answer, self.answer)
        return self.answer

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise PolicyError(
                f"regime {self.regime!r} has no stage {name!r} "
                f"(has: {', '.join(sorted(self.stages)) or 'none'})") from None


#: ``work_end = "24:00"``: the working day ends at midnight, the start of the next day. Held as
#: 00:00, which the calendar reads as that midnight for a closing time (``calendar.day_end``);
#: 23:59:59, the closest time a ``dt.time`` holds, lost a second of working time every day.
_MIDNIGHT_END = ("24:00", "24:00:00")


def _parse_time(value: Any, where: str, *, end: bool = False) -> dt.time:
    if end and value in _MIDNIGHT_END:
        return dt.time(0)
    parsed: dt.time | None = value if isinstance(value, dt.time) else None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = dt.time.fromisoformat(value)
    if parsed is None:
        raise PolicyError(f"{where}: expected a time HH:MM"
                          f"{' (or 24:00, the end of the day)' if end else ''}, got {value!r}")
    if end and parsed == dt.time(0):
        # One spelling for midnight at the end of a day; 00:00 reads as the day's start.
        raise PolicyError(f"{where}: a working day ending at midnight is written \"24:00\", "
                          f"got {value!r}")
    return parsed


def _number(value: Any, where: str, *, integer: bool, minimum: float, strict: bool,
            maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise PolicyError(f"{where}: expected a finite number, got {value!r}")
    if integer and not float(value).is_integer():
        raise PolicyError(f"{where}: expected a whole number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise PolicyError(f"{where}: must be {op} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise PolicyError(f"{where}: must be at most {maximum}, got {value!r}")
    return int(value) if integer else float(value)


def _counting(value: Any, where: str) -> Counting:
    if value not in COUNTING_KINDS:
        raise PolicyError(f"{where}: counting must be one of {', '.join(COUNTING_KINDS)}, "
                          f"got {value!r}")
    return cast(Counting, value)


def _amount(value: Any, counting: Counting, where: str) -> float:
    # Days are whole by law and by the calendar; hours may be fractional (e.g. 1.5 h).
    # Upper bounds: see MAX_PERIOD_DAYS / MAX_PERIOD_HOURS in calendar.py.
    hours = counting in HOUR_COUNTINGS
    return _number(value, where, integer=not hours, minimum=0, strict=True,
                   maximum=MAX_PERIOD_HOURS if hours else MAX_PERIOD_DAYS)


def _build_stage(name: str, raw: Any, where: str) -> Stage:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}.stages.{name}: must be a table")
    if not STAGE_NAME.fullmatch(name) or name == "answer":
        # The name becomes part of timer members, alert ids and the `stage` of the tick and
        # alert schemas (the same pattern), and a metric label whose "answer" is the answer
        # period's own.
        raise PolicyError(f"{where}.stages.{name}: a stage name is lower-case Latin letters, "
                          "digits and underscores, starting with a letter, and not 'answer'")
    unknown = set(raw) - {"counting", "amount", "ended_by", "restarted_by", "cancelled_by",
                          "breach_timer"}
    if unknown:
        raise PolicyError(f"{where}.stages.{name}: unknown key(s) {sorted(unknown)}")
    for key in ("counting", "amount"):
        if key not in raw:
            raise PolicyError(f"{where}.stages.{name}: missing {key!r}")
    counting = _counting(raw["counting"], f"{where}.stages.{name}.counting")
    here = f"{where}.stages.{name}"
    ended = _events(raw.get("ended_by", []), STAGE_END_EVENTS, f"{here}.ended_by")
    cancelled = _events(raw.get("cancelled_by", []), STAGE_END_EVENTS, f"{here}.cancelled_by")
    if ended & cancelled:
        raise PolicyError(f"{here}: {sorted(ended & cancelled)} both in ended_by and "
                          "cancelled_by")
    timer = raw.get("breach_timer", True)
    if not isinstance(timer, bool):
        raise PolicyError(f"{here}.breach_timer: must be true or false, got {timer!r}")
    return Stage(counting, _amount(raw["amount"], counting, f"{here}.amount"),
                 ended_by=ended,
                 restarted_by=_events(raw.get("restarted_by", []), STAGE_RESTART_EVENTS,
                                      f"{here}.restarted_by"),
                 cancelled_by=cancelled, breach_timer=timer)


def _events(value: Any, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: must be a list of lifecycle events ({', '.join(allowed)})")
    bad = sorted(set(value) - set(allowed))
    if bad:
        raise PolicyError(f"{where}: {bad} not allowed here; use {', '.join(allowed)}")
    return frozenset(value)


def _build_policy(regime: str, raw: Mapping[str, Any], where: str) -> Policy:
    unknown = set(raw) - set(_FIELDS)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {list(_FIELDS)}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise PolicyError(f"{where}: missing required key(s) {missing}")
    counting = _counting(raw["counting"], f"{where}.counting")
    shift = raw["shift"]
    if shift not in SHIFT_MODES:
        raise PolicyError(f"{where}.shift: must be one of {', '.join(SHIFT_MODES)}, got {shift!r}")
    share = _number(raw["warning_share"], f"{where}.warning_share", integer=False, minimum=0,
                    strict=True)
    if share > 1:
        raise PolicyError(f"{where}.warning_share: must be in (0, 1], got {share}")
    urgent = raw.get("urgent_answer")
    work_start = _parse_time(raw.get("work_start", "09:00"), f"{where}.work_start")
    work_end = _parse_time(raw.get("work_end", "18:00"), f"{where}.work_end", end=True)
    if not valid_hours(work_start, work_end):
        raise PolicyError(f"{where}: work_start {work_start} must be before work_end {work_end}")
    tz = raw.get("timezone")
    if tz is not None:
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"{where}.timezone: unknown IANA zone {tz!r}") from None
    stages_raw = raw.get("stages", {})
    if not isinstance(stages_raw, Mapping):
        raise PolicyError(f"{where}.stages: must be a table of stages")
    return Policy(
        regime=regime,
        counting=counting,
        answer=_amount(raw["answer"], counting, f"{where}.answer"),
        urgent_answer=None if urgent is None else _amount(urgent, counting,
                                                          f"{where}.urgent_answer"),
        shift=cast(ShiftMode, shift),
        warning_share=share,
        escalation_after=dt.timedelta(hours=_number(
            raw["escalation_after_hours"], f"{where}.escalation_after_hours", integer=False,
            minimum=0, strict=False, maximum=MAX_PERIOD_HOURS)),
        work_start=work_start,
        work_end=work_end,
        extensions_allowed=int(_number(raw.get("extensions_allowed", 0),
                                       f"{where}.extensions_allowed", integer=True, minimum=0,
                                       strict=False)),
        extension_max_days=int(_number(raw.get("extension_max_days", 0),
                                       f"{where}.extension_max_days", integer=True, minimum=0,
                                       strict=False, maximum=MAX_PERIOD_DAYS)),
        timezone=None if tz is None else str(tz),
        stages={name: _build_stage(name, s, where) for name, s in stages_raw.items()},
    )


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Shallow merge, except ``stages`` merges per stage and per field.

    A partial stage patch (no ``counting``) for a stage the regime lacks is dropped, so
    an authority-wide ``stages.final_answer.amount`` does not break regimes without it.
    """
    merged = dict(base)
    for key, value in patch.items():
        if key == "stages" and isinstance(value, Mapping):
            stages = {k: dict(v) for k, v in dict(base.get("stages", {})).items()}
            for name, stage_patch in value.items():
                if not isinstance(stage_patch, Mapping):
                    stages[name] = stage_patch  # let validation report it
                elif name in stages:
                    stages[name].update(stage_patch)
                elif "counting" in stage_patch:
                    stages[name] = dict(stage_patch)
            merged["stages"] = stages
        else:
            merged[key] = value
    if ("counting" in patch and patch["counting"] != base.get("counting")
            and "urgent_answer" not in patch):
        # The inherited urgent period is in the old unit: an incident override to 10 working
        # days kept the book's 4 (hours) as 4 working days (review of session 15).
        merged.pop("urgent_answer", None)
    return merged


def _normalize_region(code: Any) -> str:
    from workers.geo.regions import normalize_code

    return normalize_code(code)


def _check_regime_names(regimes: Mapping[Any, Any], source: str) -> None:
    """Every regime of :data:`REGIMES` has its table and no other name is one.

    A misspelt table (``[regimes.fz95]``) or a deleted one used to load: the workers started
    and ``appeals sla recompute`` took the file, then every appeal of the missing regime
    failed with "unknown regime 'fz59'" (the SLA worker dead-lettered the whole regime).
    """
    valid = ", ".join(REGIMES)
    unknown = [str(name) for name in regimes if name not in REGIMES]
    missing = [name for name in REGIMES if name not in regimes]
    if unknown:
        also = f" (missing: {', '.join(f'regimes.{m}' for m in missing)})" if missing else ""
        raise PolicyError(f"{source}: regimes.{unknown[0]}: unknown regime {unknown[0]!r}"
                          f"{also}; the regimes are {valid}: rename the table")
    if missing:
        raise PolicyError(f"{source}: regimes.{missing[0]}: missing; every regime needs its "
                          f"table ({valid})")


@dataclass(frozen=True)
class _Override:
    selectors: Mapping[str, str]
    settings: Mapping[str, Any]
    where: str

    @property
    def specificity(self) -> tuple[int, ...]:
        count = sum(1 for k in self.selectors if k != "regime")
        return (count, *[int(k in self.selectors) for k in reversed(_SELECTOR_RANK)])

    def matches(self, wanted: Mapping[str, str | None]) -> bool:
        return all(wanted.get(k) == v for k, v in self.selectors.items())


class PolicyBook:
    """All regime defaults plus overrides; ``resolve`` gives the policy for one appeal."""

    def __init__(self, data: Mapping[str, Any], source: str = "<policies>") -> None:
        self.source = source
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: top level must be a table")
        unknown = set(data) - {"regimes", "overrides"}
        if unknown:
            raise PolicyError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
        regimes = data.get("regimes")
        if not isinstance(regimes, Mapping) or not regimes:
            raise PolicyError(f"{source}: 'regimes' must be a non-empty table")
        _check_regime_names(regimes, source)
        self._defaults: dict[str, dict[str, Any]] = {}
        for regime, raw in regimes.items():
            if not isinstance(raw, Mapping):
                raise PolicyError(f"{source}: regimes.{regime} must be a table")
            _build_policy(regime, raw, f"{source}: regimes.{regime}")  # validate now
            self._defaults[regime] = dict(raw)
        self._overrides: list[_Override] = []
        seen: dict[tuple[tuple[str, str], ...], str] = {}
        raw_overrides = data.get("overrides", [])
        if not isinstance(raw_overrides, list):
            raise PolicyError(f"{source}: 'overrides' must be an array of tables")
        for i, entry in enumerate(raw_overrides):
            where = f"{source}: overrides[{i}]"
            override = self._parse_override(entry, where)
            key = tuple(sorted(override.selectors.items()))
            if key in seen:
                raise PolicyError(f"{where}: same selectors as {seen[key]}; merge them")
            seen[key] = where
            self._overrides.append(override)
        # Stable sort: file order decides nothing because duplicate selectors are refused.
        self._overrides.sort(key=lambda o: o.specificity)
        self._cache: dict[tuple[str | None, ...], Policy] = {}
        self._subcategories = frozenset(o.selectors["subcategory"] for o in self._overrides
                                        if "subcategory" in o.selectors)

    def _parse_override(self, entry: Any, where: str) -> _Override:
        if not isinstance(entry, Mapping):
            raise PolicyError(f"{where}: must be a table")
        selectors: dict[str, str] = {}
        settings: dict[str, Any] = {}
        for key, value in entry.items():
            if key in _SELECTORS:
                if not isinstance(value, str | int) or isinstance(value, bool):
                    raise PolicyError(f"{where}.{key}: must be a string")
                selectors[key] = str(value)
            elif key in _FIELDS:
                settings[key] = value
            else:
                raise PolicyError(f"{where}: unknown key {key!r}; selectors are "
                                  f"{list(_SELECTORS)}, settings are {list(_FIELDS)}")
        if not selectors:
            raise PolicyError(f"{where}: needs at least one selector {list(_SELECTORS)}")
        if not settings:
            raise PolicyError(f"{where}: sets nothing")
        if "region" in selectors:
            try:
                selectors["region"] = _normalize_region(selectors["region"])
            except KeyError as exc:
                raise PolicyError(f"{where}.region: {exc}") from None
        regime = selectors.get("regime")
        if regime is not None and regime not in self._defaults:
            raise PolicyError(f"{where}.regime: unknown regime {regime!r}")
        for target in [regime] if regime else list(self._defaults):
            _build_policy(target, _merge(self._defaults[target], settings),
                          f"{where} (applied to {target})")
        return _Override(selectors, settings, where)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> PolicyBook:
        """Explicit path, else ``$APPEALS_POLICY_FILE``, else the packaged ``policies.toml``."""
        return cls(*cls.read_data(path))

    @staticmethod
    def read_data(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], str]:
        """(the policy file's data, its name), not yet validated: :meth:`load` without the
        book, for callers that add overrides first (``deadline_service.load_book``)."""
        chosen = path or os.environ.get(POLICY_FILE_ENV)
        if chosen:
            p = Path(chosen)
            try:
                text = p.read_text("utf-8")
            except OSError as exc:
                raise PolicyError(f"{p}: cannot read policy file: {exc}") from exc
            source = str(p)
        else:
            text = resources.files("workers.deadlines").joinpath("policies.toml").read_text(
                "utf-8")
            source = "workers/deadlines/policies.toml"
        return PolicyBook.parse_data(text, source), source

    @staticmethod
    def parse_data(text: str, source: str) -> dict[str, Any]:
        """The data of a policy file's ``text`` (YAML when ``source`` says so, else TOML),
        not yet validated: for a caller that read the bytes itself (the routing rules
        loader keeps the file as read with the rules, see ``deadline_service.rules_book``)."""
        if source.endswith((".yaml", ".yml")):
            import yaml

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise PolicyError(f"{source}: invalid YAML: {exc}") from exc
        else:
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise PolicyError(f"{source}: invalid TOML: {exc}") from exc
        return cast(dict[str, Any], data)

    @property
    def regimes(self) -> tuple[str, ...]:
        return tuple(self._defaults)

    def subcategories(self) -> frozenset[str]:
        """The subcategories the overrides select: the only ones whose deadline differs, so
        the only ones the routed record needs to carry (see ``route.agent.routed_record``,
        which asks for every appeal: computed once)."""
        return self._subcategories

    def authorities(self) -> frozenset[str]:
        """The authority ids the overrides select: ``sla due --authority`` accepts a body the
        routing rules do not list (yet) when the policy file names it."""
        return frozenset(o.selectors["authority"] for o in self._overrides
                         if "authority" in o.selectors)

    def resolve(
        self,
        regime: str,
        region: str | int | None = None,
        authority: str | None = None,
        category: str | None = None,
        subcategory: str | None = None,
    ) -> Policy:
        """Policy for an appeal with these attributes; unknown regime -> ``PolicyError``."""
        if regime not in self._defaults:
            raise PolicyError(f"unknown regime {regime!r}; known: {', '.join(self._defaults)}")
        region_code = None if region is None else _normalize_region(region)
        key = (regime, region_code, authority, category, subcategory)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        wanted = dict(zip(_SELECTORS, key, strict=True))
        raw: dict[str, Any] = dict(self._defaults[regime])
        for override in self._overrides:
            if override.matches(wanted):
                raw = _merge(raw, override.settings)
        policy = _build_policy(regime, raw, f"{self.source}: resolved {regime}")
        self._cache[key] = policy
        return policy
