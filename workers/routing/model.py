"""Immutable routing data: authorities, municipalities, per-region rules and decisions.

Everything here is frozen because a :class:`RoutingRules` object is shared by every routing
call and replaced as a whole on reload (see :mod:`workers.routing.watcher`): nobody may
mutate the rules another coroutine is reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from workers.routing.gazetteer import Gazetteer

AUTHORITY_KINDS = ("government", "ministry", "agency", "municipality", "triage")
"""``government`` is the root of a region's escalation tree (the regional government)."""

RouteLevel = Literal[
    "municipality_category",
    "municipality_default",
    "region_category",
    "region_triage",
    "complaint_parent",
    "complaint_root",
    "complaint_unidentified",
    "redirect",
    "unroutable",
    "triage_timeout",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Supervisor:
    """Who hears about SLA warnings/breaches of an authority. Role names, never people."""

    role: str
    webhook: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Authority:
    """A body that receives appeals.

    ``sla`` is passed through untouched to the SLA engine (DESIGN.md §2: every deadline is
    configurable per authority); routing does not read it, but the loader checks it with the
    SLA worker's own policy book so that a bad block is refused with the rules file's name.
    """

    id: str
    name: str
    kind: str
    region_code: str
    timezone: str
    parent: str | None = None
    municipality: str | None = None
    supervisors: tuple[Supervisor, ...] = ()
    sla: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    aliases: tuple[str, ...] = ()
    """Other names people write for the body («ЦУР», «Администрация Барнаула»): a complaint
    naming it so is about this body (59-FZ art. 8 p. 6), not an unidentified one."""


@dataclass(frozen=True, slots=True)
class CategoryRoute:
    """Where one category goes: per-subcategory targets first, then ``default``."""

    default: str | None = None
    subcategories: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipal formation of a region, with its own routing table."""

    id: str
    name: str
    default: str | None
    routes: Mapping[str, CategoryRoute]
    oktmo: str | None = None


@dataclass(frozen=True, slots=True)
class RegionRules:
    """The rules of one federal subject (one rules file)."""

    code: str
    name: str
    timezone: str
    triage: str
    routes: Mapping[str, CategoryRoute]
    municipalities: Mapping[str, Municipality]
    regional_competence: frozenset[str]
    gazetteer: Gazetteer
    source: str
    version: str


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """All loaded regions plus a global authority index.

    ``version`` identifies the whole loaded set by its content: the declared ``version:``
    (kept for people) plus a content hash, e.g. ``22-altai-krai/2025-06-01.1+3f2a9c0d1e4b``,
    or ``sha256:<16 hex>`` when no file declares one (format: :mod:`workers.routing.loader`).
    Every decision records it so a routed appeal can be traced back to the exact rules that
    routed it. ``fingerprint`` is the hash of the file names and bytes the rules were built
    from; :class:`~workers.routing.watcher.RulesWatcher` compares the disk against it.
    """

    regions: Mapping[str, RegionRules]
    authorities: Mapping[str, Authority]
    version: str
    default_region: str | None
    source: str
    fingerprint: str | None = None
    policy_file: tuple[str, bytes | None] | None = None
    """The SLA policy file (``$APPEALS_POLICY_FILE``) as :func:`~workers.routing.loader.load_rules`
    read it with the rule files: ``(path, bytes)``, bytes None when it could not be read;
    None without such a file (the packaged policies). The policy book of these rules is built
    from these bytes (``deadline_service.rules_book``), so the rules watcher's settling keeps
    a policy file caught mid-save out of use as it does a rule file."""
    _derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                     compare=False)
    """What :meth:`derived` built from these rules, by name. Not an ``__init__`` argument,
    so ``dataclasses.replace`` (and a reload, which builds new rules) starts empty."""

    def derived(self, name: str, build: Callable[[RoutingRules], _T]) -> _T:
        """``build(self)``, built on first use and kept with these rules (the router's name
        index, the route agent's subcategory set).

        Why here and not in a module global keyed by the rules: the value lives and dies with
        the rules it was built from, so rules loaded on a reload can never be given the
        index of the rules before, and two rules in use at once (a worker's and a test's, the
        API's and a tool's) do not evict each other's. ``build`` must depend on the rules
        only. Two threads building at once both build; the first one stored is kept and
        returned to both, as the rules never change.
        """
        try:
            value: _T = self._derived[name]
        except KeyError:
            value = self._derived.setdefault(name, build(self))
        return value

    def authority(self, authority_id: str) -> Authority:
        """The authority by id; raises :class:`UnknownAuthority`."""
        try:
            return self.authorities[authority_id]
        except KeyError:
            raise UnknownAuthority(authority_id) from None

    def day_zone(self, region: str | None) -> str:
        """The zone whose calendar days the figures of ``region``'s places are kept on and
        the API cuts their windows on: the ``timezone:`` of the region's rules, Moscow's for a
        region without rules.

        The one answer for the SLA agent that buckets a place's figures and the API that cuts
        them: the agent took the geo catalogue's capital zone, the API the rules', and with
        rules naming another zone for their region an answer at 21:30 Moscow time landed on
        the next day of the place's figures and out of its 1d window.
        """
        from workers.geo.regions import FALLBACK_TIMEZONE, UnknownRegion, get_region

        rules = self.regions.get(region or "")
        if rules is None and region:
            try:
                rules = self.regions.get(get_region(region).code)
            except (UnknownRegion, TypeError):
                rules = None
        return rules.timezone if rules is not None else FALLBACK_TIMEZONE

    def category_zone(self) -> str:
        """The zone whose days the categories' figures are kept on and cut on: the default
        region's (:meth:`day_zone`). A category gathers appeals of every region and
        ``/v1/categories`` cuts one day for all of them; bucketed on the appeal's own region's
        day, an appeal of a region without rules answered at 01:30 in Barnaul went to the
        Moscow day before, out of the category's 1d window."""
        return self.day_zone(self.default_region)

    def ancestors(self, authority_id: str) -> list[str]:
        """Parent chain, nearest first (validation guarantees it is finite)."""
        chain: list[str] = []
        current = self.authorities.get(authority_id)
        while current is not None and current.parent is not None:
            chain.append(current.parent)
            current = self.authorities.get(current.parent)
        return chain


class UnknownAuthority(KeyError):
    """An authority id that the loaded rules do not define."""

    def __str__(self) -> str:
        return f"unknown authority id {self.args[0]!r}: not defined in the loaded routing rules"


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What routing needs from a classified appeal (no personal data beyond the text)."""

    appeal_id: str
    region_code: str
    category: str
    subcategory: str | None = None
    municipality: str | None = None
    """Intake metadata: a municipality id, its name, or an OKTMO code."""
    text: str = ""
    address: str | None = None
    """Where the problem is (never the citizen's own postal address)."""
    complaint_about: str | None = None
    """The authority the citizen complains about (its id, in any case, or its name); routing
    never sends the appeal there, and one it cannot identify goes to the triage desk."""
    subject: str | None = None
    """The title / subject line (a ПОС message's title, a letter's subject)."""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where an appeal goes and why (``level``), under which rules (``rule_version``)."""

    appeal_id: str
    authority_id: str
    authority_name: str
    municipality: str | None
    level: RouteLevel
    rule_version: str
    parent_authority_id: str | None
    region_code: str | None = None
    timezone: str | None = None
    complaint_about: str | None = None
    """The id of the body a complaint is about, when the rules identify it (whether or not
    the complaint rule changed the target); None otherwise. The routed record carries this,
    never the citizen's own words (which may name an official)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "appeal_id": self.appeal_id,
            "authority_id": self.authority_id,
            "authority_name": self.authority_name,
            "municipality": self.municipality,
            "level": self.level,
            "rule_version": self.rule_version,
            "parent_authority_id": self.parent_authority_id,
            "region_code": self.region_code,
            "timezone": self.timezone,
            "complaint_about": self.complaint_about,
        }
