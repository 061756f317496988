"""Pick the authority for a classified appeal.

Resolution order (first hit wins), each recorded as the decision's ``level``:

1. ``municipality_category`` - the municipality's table entry for the subcategory;
2. ``region_category``       - the region's table entry for the subcategory (capital repair
   goes to the krai-wide fund, whatever the town: a subcategory entry is narrower than any
   whole-category entry, and a city committee would only forward it);
3. ``municipality_category`` - the municipality's table for the category;
4. ``municipality_default``  - the municipality's administration, except for categories the
   region lists under ``regional_competence`` (hospitals, benefits: municipalities don't run
   them, so a city hall would only forward the appeal and lose days of the 7-day redirect
   window of 59-FZ art. 8 p. 3);
5. ``region_category``       - the regional ministry/agency for the category;
6. ``region_triage``         - the regional triage desk (ЦУР), also for unknown categories.

The municipality comes from intake metadata, then the address (where the problem is), then the
subject line, then the text; the first that names a place decides. A place the rules do not
list ends the search there with no municipality (so the category's regional body gets it),
never a town named in a later field: a district («Заринский район», anywhere), and in the
metadata or the address any «<adjective> район/муниципальный район/округ/городской округ», a
settlement («р.п. Тальменка», «с. Луговое») or an OKTMO code no listed municipality has. Within
the metadata or the address a listed settlement beats a district named in the same field, in
either order («Рубцовский район, г. Рубцовск» is Рубцовск).

Then the complaint rule (59-FZ art. 8 p. 6): an appeal complaining about body X never goes
to X nor to a body subordinate to X (its own department would judge X); it goes to X's
parent (level ``complaint_parent``); when X is the root (the regional government), to the
region's triage desk (level ``complaint_root``: the desk is below X, no parent of it), which
forwards it outside the region or returns it to the applicant with the explanation 59-FZ
art. 8 p. 6 requires (no body of the region may judge it).
X is identified by its id (in any case), by its name or by one of its ``aliases`` («ЦУР»), a
name in any grammatical case («Центра управления регионом»); a complaint whose body cannot be
identified (a typo, «администрация нашего района») could be about any body routing would pick,
so it goes to the region's triage desk (level ``complaint_unidentified``), where a person
reads it and forwards it with :meth:`Router.redirect`; unless it names the desk itself among
its words («оператор ЦУР не ответил»): then the desk's parent (``complaint_parent``).

An appeal from a region without rules (or an invalid region code) goes to the triage desk of
the *default region* with level ``unroutable``: never dropped, always visible to a human and
countable in metrics; the desk forwards it with :meth:`Router.redirect`.

An appeal that waited for a human triage decision longer than ``APPEALS_TRIAGE_MAX_WAIT`` goes
to its region's triage desk whatever its category (:meth:`Router.triage_desk`, level
``triage_timeout``), where its deadlines are tracked like any routed appeal's.

``route`` reads the rules reference once, so a concurrent :meth:`Router.swap` (rule reload)
never mixes two rule versions in one decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from schemas.records import CATEGORIES
from streams.log_limit import LogLimiter
from workers.geo.regions import UnknownRegion, get_region
from workers.routing.gazetteer import UnlistedDistrict, name_lemmas, normalize_token, tokenize
from workers.routing.model import (
    Authority,
    RegionRules,
    RouteDecision,
    RouteInput,
    RouteLevel,
    RoutingRules,
    UnknownAuthority,
)

__all__ = [
    "RedirectRejected",
    "Router",
    "UnknownAuthority",
    "detect_municipality",
    "identify_authority",
    "resolve_municipality",
]

log = logging.getLogger(__name__)
_CATEGORIES = frozenset(CATEGORIES)


_UNROUTABLE_LOG = LogLimiter()
"""One warning a minute per region without rules: every such appeal is counted in
``appeals_routed_total{level="unroutable"}``; one line per appeal flooded the log at the rate
of a misconfigured intake."""


def _log_unroutable(appeal: RouteInput, desk_region: str) -> None:
    code = _valid_code(appeal.region_code)
    skipped = _UNROUTABLE_LOG.allow(code)  # None: an invalid code, all of them one key
    if skipped is None:
        return
    log.warning(
        "appeal %s: no routing rules for region %s, sent to the triage desk of region %s "
        "(level unroutable; %d more such appeals of that region since the last such line, "
        "all counted in appeals_routed_total{level=\"unroutable\"})",
        appeal.appeal_id, code or "(an invalid region code)", desk_region, skipped,
    )


class RedirectRejected(ValueError):
    """A redirect that the law forbids (to the body the complaint is about)."""


def _decision(
    rules: RoutingRules,
    appeal_id: str,
    authority: Authority,
    level: RouteLevel,
    municipality: str | None,
    region_code: str | None,
    complaint_about: str | None = None,
) -> RouteDecision:
    return RouteDecision(
        appeal_id=appeal_id,
        authority_id=authority.id,
        authority_name=authority.name,
        municipality=municipality,
        level=level,
        rule_version=rules.version,
        parent_authority_id=authority.parent,
        region_code=region_code,
        timezone=authority.timezone,
        complaint_about=complaint_about,
    )


def _name_key(value: str) -> str:
    """An authority's id as compared: case, «ё», quotes and punctuation ignored."""
    return " ".join(normalize_token(t) for t in tokenize(value))


@dataclass(frozen=True, slots=True)
class _NameIndex:
    """The rules' bodies by the keys a person may write them with (built once per rules)."""

    ids: Mapping[str, str]
    """:func:`_name_key` of each id -> the id."""
    names: Mapping[tuple[str, ...], tuple[tuple[str, str, bool], ...]]
    """:func:`name_lemmas` of each name and alias -> (region code, id, is an alias)."""
    keys: Mapping[str, tuple[tuple[str, ...], ...]]
    """Each id -> the keys of its name and aliases."""


def _name_index(rules: RoutingRules) -> _NameIndex:
    """The index of ``rules``, built once per rules object (:meth:`RoutingRules.derived`)."""
    return rules.derived("router.name_index", _build_name_index)


def _build_name_index(rules: RoutingRules) -> _NameIndex:
    ids: dict[str, str] = {}
    names: dict[tuple[str, ...], list[tuple[str, str, bool]]] = {}
    keys: dict[str, tuple[tuple[str, ...], ...]] = {}
    for authority in rules.authorities.values():
        ids.setdefault(_name_key(authority.id), authority.id)
        own: list[tuple[str, ...]] = []
        for name, alias in ((authority.name, False), *((a, True) for a in authority.aliases)):
            key = name_lemmas(name)
            if key and key not in own:
                own.append(key)
                names.setdefault(key, []).append((authority.region_code, authority.id, alias))
        keys[authority.id] = tuple(own)
    return _NameIndex(ids, {k: tuple(v) for k, v in names.items()}, keys)


def identify_authority(
    rules: RoutingRules, value: str | None, region_code: str | None = None
) -> str | None:
    """The id of the authority ``value`` names: its id (any case), its full name or one of its
    ``aliases`` in any grammatical case («Центра управления регионом Алтайского края», «ЦУР»);
    else None.

    ``region_code``: the region of the appeal. A short name («ЦУР», «Администрация района»)
    is every region's, so an alias names a body of that region only; a full name that two
    regions share names the body of that region. The exact id is one dict lookup; the rest
    (rare: a complaint field filled by hand) lemmatises the few words of ``value``.
    """
    if value is None:
        return None
    if value in rules.authorities:
        return value
    key = _name_key(value)
    if not key:
        return None
    index = _name_index(rules)
    by_id = index.ids.get(key)
    if by_id is not None:
        return by_id
    found = [
        (region, aid)
        for region, aid, alias in index.names.get(name_lemmas(value), ())
        if not alias or region_code is None or region == region_code
    ]
    if len({aid for _, aid in found}) > 1 and region_code is not None:
        found = [(region, aid) for region, aid in found if region == region_code]
    ids = {aid for _, aid in found}
    return ids.pop() if len(ids) == 1 else None


def _mentions(rules: RoutingRules, authority_id: str, value: str) -> bool:
    """Does ``value`` name the body somewhere in it, by its name or an alias («оператор ЦУР
    не ответил»), though it names no body as a whole?"""
    words = name_lemmas(value)
    for key in _name_index(rules).keys.get(authority_id, ()):
        n = len(key)
        if any(words[i : i + n] == key for i in range(len(words) - n + 1)):
            return True
    return False


def _judges_itself(
    rules: RoutingRules, complained: str | None, target_id: str, region_code: str | None = None
) -> bool:
    """59-FZ art. 8 p. 6: is ``target_id`` the body complained about, or below it?

    The one test behind both :meth:`Router.route` and :meth:`Router.redirect`; the body is
    identified by :func:`identify_authority`. A value that names no authority constrains
    nothing here (:meth:`Router.route` sends such a complaint to the triage desk instead).
    """
    body = identify_authority(rules, complained, region_code)
    if body is None:
        return False
    return body == target_id or body in rules.ancestors(target_id)


class _UnknownCode:
    """The type of :data:`_UNKNOWN_CODE` (one instance)."""

    __slots__ = ()


_UNKNOWN_CODE: Final = _UnknownCode()
"""An OKTMO code that no listed municipality's code covers."""


def _oktmo_prefix(code: str) -> str:
    """The prefix every OKTMO code inside a municipality starts with.

    Digits 3-5 number a municipal district or city okrug, 6-8 its settlements (``000``: the
    district or okrug itself), 9-11 their localities. So a district's code «01616000»
    (Каменский район) covers its town «01616101» and villages «01616404101», which its own
    code as a prefix never matched.
    """
    if len(code) == 8 and code.endswith("000"):
        return code[:5]
    return code


def resolve_municipality(region: RegionRules, value: str | None) -> str | None:
    """Municipality id from intake metadata: an id, an OKTMO code or a place name."""
    found = _metadata_place(region, value)
    return found if isinstance(found, str) else None


def _metadata_place(
    region: RegionRules, value: str | None
) -> str | UnlistedDistrict | _UnknownCode | None:
    """:func:`resolve_municipality`, telling an unlisted place and an unknown code apart
    from no place."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    if value in region.municipalities:
        return value
    if value.isdigit() and value.isascii():
        best: tuple[int, str] | None = None
        for mun in region.municipalities.values():
            if not mun.oktmo:
                continue
            covered = _oktmo_prefix(mun.oktmo)
            if (
                value.startswith(covered)
                or (len(value) >= 8 and mun.oktmo.startswith(value))
            ) and (best is None or len(covered) > best[0]):
                best = (len(covered), mun.id)
        return best[1] if best else _UNKNOWN_CODE
    return region.gazetteer.lookup(value, strict=False, place_field=True)


def detect_municipality(region: RegionRules, appeal: RouteInput) -> str | None:
    """Metadata first (explicit), then the address (structured), the subject line, the text.

    The first field that names a place decides: a place the rules do not list ends the
    search with None (the appeal is about a place outside every listed municipality; a town
    in a later field is where people travel to, or whom they already asked). Metadata and
    the address say where the problem is, so any place they name explicitly counts there;
    in the subject and text only a district does (a village there is as often a visit).

    An OKTMO code no listed code covers rules out only the municipalities that declare a
    code: a later field may still name one the rules list without a code (its villages'
    codes are unknown to us), never a town whose declared code differs.
    """
    found = _metadata_place(region, appeal.municipality)
    if found is not None and found is not _UNKNOWN_CODE:
        return found if isinstance(found, str) else None
    gazetteer = region.gazetteer
    later: str | UnlistedDistrict | None = None
    for field, place_field in (
        (appeal.address, True),
        (appeal.subject, False),
        (appeal.text, False),
    ):
        later = gazetteer.lookup(field, place_field=place_field)
        if later is not None:
            break
    if not isinstance(later, str):
        return None
    mun = region.municipalities.get(later)
    if found is _UNKNOWN_CODE and (mun is None or mun.oktmo is not None):
        return None
    return later


def _table_target(
    region: RegionRules, municipality: str | None, category: str, subcategory: str | None
) -> tuple[str | None, RouteLevel]:
    """The target of the routing tables, most specific first (the module docstring's order).

    A subcategory entry is the narrower statement: the region's («overhaul» goes to the
    krai-wide capital-repair fund) beats a municipality's whole-category entry or its
    administration, which know nothing of it; only the municipality's own entry for that
    subcategory comes before it.
    """
    mun = region.municipalities.get(municipality) if municipality else None
    mun_route = mun.routes.get(category) if mun is not None else None
    region_route = region.routes.get(category)
    if subcategory is not None:
        if mun_route is not None and subcategory in mun_route.subcategories:
            return mun_route.subcategories[subcategory], "municipality_category"
        if region_route is not None and subcategory in region_route.subcategories:
            return region_route.subcategories[subcategory], "region_category"
    if mun is not None:
        if mun_route is not None and mun_route.default is not None:
            return mun_route.default, "municipality_category"
        if mun.default is not None and category not in region.regional_competence:
            return mun.default, "municipality_default"
    if region_route is not None and region_route.default is not None:
        return region_route.default, "region_category"
    return None, "region_triage"


def _valid_code(code: object) -> str | None:
    """Canonical code of a real federal subject (even one without rules), else None."""
    try:
        return get_region(code).code  # type: ignore[arg-type]
    except (UnknownRegion, TypeError):
        return None


def _check_rules(rules: RoutingRules) -> None:
    """The invariants :meth:`Router.route` relies on to never raise (load_rules checks them
    with file and key path; this guards rules built or swapped in any other way)."""
    if rules.default_region is None or rules.default_region not in rules.regions:
        raise ValueError(
            "routing rules have no default region for unroutable appeals "
            f"({len(rules.regions)} regions loaded: set default_for_unknown_regions: true "
            "in one file)"
        )
    for region in rules.regions.values():
        desk = rules.authorities.get(region.triage)
        if desk is None or desk.parent is None:
            # A complaint about a root body falls back to the triage desk: a root desk
            # would receive complaints about itself.
            raise ValueError(
                f"region {region.code}: triage desk {region.triage!r} must be a defined "
                "authority with a parent"
            )


class Router:
    """Stateless apart from the current rules; safe to share between coroutines."""

    __slots__ = ("_rules",)

    def __init__(self, rules: RoutingRules) -> None:
        _check_rules(rules)
        self._rules = rules

    @property
    def rules(self) -> RoutingRules:
        return self._rules

    def swap(self, rules: RoutingRules) -> None:
        """Replace the rules atomically (a single reference assignment).

        Raises ValueError (and keeps the current rules) for rules ``route`` cannot use.
        """
        _check_rules(rules)
        self._rules = rules
        log.info("routing rules swapped in: version=%s", rules.version)

    def route(self, appeal: RouteInput) -> RouteDecision:
        """Decide the authority for ``appeal``. Never raises for any text or category."""
        rules = self._rules  # one read: the whole decision uses one rule version
        region = self._region(rules, appeal.region_code)
        if region is None:
            fallback = rules.regions[rules.default_region]  # type: ignore[index]
            desk = rules.authorities[fallback.triage]
            _log_unroutable(appeal, fallback.code)
            return self._complaint_checked(
                rules, appeal, desk, "unroutable", None, fallback, _valid_code(appeal.region_code)
            )

        municipality = detect_municipality(region, appeal)
        category = appeal.category if appeal.category in _CATEGORIES else None
        target: str | None = None
        level: RouteLevel = "region_triage"
        if category is not None:
            target, level = _table_target(region, municipality, category, appeal.subcategory)
        if target is None:
            target, level = region.triage, "region_triage"
        return self._complaint_checked(
            rules, appeal, rules.authorities[target], level, municipality, region, region.code
        )

    def triage_desk(self, appeal: RouteInput) -> RouteDecision:
        """The triage desk of ``appeal``'s region (level ``triage_timeout``): an appeal nobody
        triaged in time goes where a person reads it, whatever the classifier guessed. The
        municipality is detected as :meth:`route` detects it (the figures count the appeal
        there, and a later decision is routed from it without the text). A region without
        rules is the default region's desk, as for :meth:`route` (level ``unroutable``). The
        complaint rule still applies: a complaint about the desk itself or a body above it
        goes to the complained body's parent (``complaint_parent``), or for the root to the
        desk (``complaint_root``), as :meth:`route` sends it. Never raises."""
        rules = self._rules
        region = self._region(rules, appeal.region_code)
        if region is None:
            fallback = rules.regions[rules.default_region]  # type: ignore[index]
            return self._complaint_checked(
                rules, appeal, rules.authorities[fallback.triage], "unroutable", None, fallback,
                _valid_code(appeal.region_code))
        return self._complaint_checked(
            rules, appeal, rules.authorities[region.triage], "triage_timeout",
            detect_municipality(region, appeal), region, region.code)

    def redirect(
        self,
        appeal_id: str,
        to_authority_id: str,
        *,
        complaint_about: str | None = None,
        from_authority_id: str | None = None,
    ) -> RouteDecision:
        """Re-route an appeal to a named body (an authority's ``redirected`` event).

        Raises :class:`UnknownAuthority` for an id the rules don't define, and
        :class:`RedirectRejected` when the target is one :meth:`route` would never pick for
        the complaint (the body it is about, or a body below it: its own department would
        judge it), or the body that holds the appeal now (``from_authority_id``): that is no
        redirect, and taken as one it would restart that body's own answer clock and clear
        its breach.
        """
        rules = self._rules
        authority = rules.authority(to_authority_id)
        region_code = authority.region_code
        if _judges_itself(rules, complaint_about, to_authority_id, region_code):
            body = identify_authority(rules, complaint_about, region_code)
            what = (
                "the body it complains about"
                if body == to_authority_id
                else f"a body below {body!r}, the body it complains about"
            )
            raise RedirectRejected(
                f"appeal {appeal_id}: cannot redirect a complaint to {to_authority_id!r}, "
                f"{what} (59-FZ art. 8 p. 6: never to the body complained about, nor below it)"
            )
        if from_authority_id is not None and from_authority_id == to_authority_id:
            raise RedirectRejected(
                f"appeal {appeal_id}: {to_authority_id!r} already holds it; a redirect to "
                "the same body would restart its answer clock"
            )
        return _decision(
            rules, appeal_id, authority, "redirect", authority.municipality, authority.region_code
        )

    def authority(self, authority_id: str) -> Authority:
        """Look an authority up in the current rules (raises :class:`UnknownAuthority`)."""
        return self._rules.authority(authority_id)

    @staticmethod
    def _region(rules: RoutingRules, code: str) -> RegionRules | None:
        try:
            return rules.regions.get(get_region(code).code)
        except (UnknownRegion, TypeError):
            return None

    @staticmethod
    def _complaint_checked(
        rules: RoutingRules,
        appeal: RouteInput,
        target: Authority,
        level: RouteLevel,
        municipality: str | None,
        region: RegionRules,
        region_code: str | None,
    ) -> RouteDecision:
        """Apply 59-FZ art. 8 p. 6: never to the body complained about, nor below it.

        A complaint about a body the rules cannot identify goes to the triage desk (level
        ``complaint_unidentified``): any target might be that body or below it; when its words
        name the desk, to the desk's parent. An ``unroutable`` appeal is on the default
        region's desk already and keeps that level.
        """
        if appeal.complaint_about is None or not appeal.complaint_about.strip():
            return _decision(rules, appeal.appeal_id, target, level, municipality, region_code)
        # An unroutable appeal's region has no rules: no alias («ЦУР») names a body of it.
        complained = identify_authority(rules, appeal.complaint_about, region_code or "")
        if complained is None:
            desk = region.triage
            if level != "unroutable" and _mentions(rules, desk, appeal.complaint_about):
                # About the desk (and perhaps bodies nobody identified): the desk may not
                # judge it, and any other target might be the unnamed body: the desk's parent.
                parent = rules.authorities[desk].parent
                return _decision(rules, appeal.appeal_id, rules.authorities[parent or desk],
                                 "complaint_parent", municipality, region_code,
                                 complaint_about=desk)
            if level not in ("unroutable", "triage_timeout"):  # both on the desk already
                target, level = rules.authorities[desk], "complaint_unidentified"
            return _decision(rules, appeal.appeal_id, target, level, municipality, region_code)
        if not _judges_itself(rules, complained, target.id, region_code):
            return _decision(rules, appeal.appeal_id, target, level, municipality, region_code,
                             complaint_about=complained)
        candidates = [*rules.ancestors(complained), region.triage]
        # The parent; for the root (the regional government itself) the triage desk, which
        # forwards outside the region. Validation guarantees every non-root has a parent, and
        # (load_rules, _check_rules) that the triage desk is not a root, so ``chosen`` is never
        # ``complained``. We refuse such rules up front rather than here because route() must
        # not raise: its callers (intake, triage, bench) treat an exception as a crash.
        chosen = next(c for c in candidates if c != complained)
        return _decision(
            rules,
            appeal.appeal_id,
            rules.authorities[chosen],
            # The desk is no parent of the root: the level says why it got the complaint.
            "complaint_root" if chosen == region.triage and len(candidates) == 1
            else "complaint_parent",
            municipality,
            region_code,
            complaint_about=complained,
        )
