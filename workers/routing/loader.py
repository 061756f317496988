"""Load and validate routing rules (one YAML file per region).

Why strict validation: rules are edited by people who run the regional desks, and a typo
(an unknown category code, a parent id that does not exist) would otherwise surface as
appeals silently landing on the wrong desk. Every problem is reported together, each as
``file: path.to.key: what was expected`` (a list item with its id:
``municipalities[6](slavgorod).authorities[1](22-slavgorod-ugkh).parent``), and a bad file
never replaces good rules.

File format: see ``workers/routing/data/22-altai-krai.yaml`` (commented).

Route targets must be more than existing ids: a region's ``routes:`` and ``triage:`` name
bodies of that region listed under its top-level ``authorities:``, and a municipality's
``routes:`` and ``default:`` name those or the municipality's own bodies (never another
municipality's, nor another region's): such an edit loaded cleanly and misrouted.

Beyond the format, two checks protect what other code relies on: every authority listed under
a municipality sits below that municipality's administration (the complaint rule excludes
only bodies *below* the one complained about), and every ``sla:`` block is built into the
SLA worker's policy book, so a block the book would refuse (or keys it would ignore) is
reported here, against the rules file, instead of failing the SLA worker later.

Rule version: every loaded set records a version that identifies its *content*, so two
different rule sets never share one. A file's ``version:`` is kept for people and suffixed
with the first 12 hex digits of the SHA-256 of the file's bytes (``2025-06-01.1+3f2a9c...``);
a file without one gets ``sha256:<16 hex digits>``. A directory of several files records its
declared versions, comma-separated, plus a hash over every file's name and content
(``22/v1,54/v3+<12 hex>``), or ``sha256:<16 hex>`` when no file declares one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from schemas.records import CATEGORIES
from streams.urls import http_url_problem
from workers.geo.regions import UnknownRegion, get_region
from workers.routing.gazetteer import (
    Gazetteer,
    GazetteerConflict,
    name_lemmas,
    place_key,
    tokenize,
)
from workers.routing.model import (
    AUTHORITY_KINDS,
    Authority,
    CategoryRoute,
    Municipality,
    RegionRules,
    RoutingRules,
    Supervisor,
)

__all__ = [
    "ENV_VAR",
    "RulesError",
    "content_fingerprint",
    "default_rules_path",
    "load_rules",
    "policy_entry",
    "policy_file_path",
    "rule_files",
]

ENV_VAR = "APPEALS_ROUTING_RULES"
PACKAGED_DATA = Path(__file__).with_name("data")
log = logging.getLogger(__name__)
SCHEMA = 1

_AUTHORITY_ID = re.compile(r"^[0-9]{2}(?:-[a-z0-9]+)+$")
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_OKTMO = re.compile(r"^[0-9]{8}(?:[0-9]{3})?$")
_TOP_KEYS = frozenset(
    {
        "schema",
        "version",
        "region",
        "name",
        "timezone",
        "triage",
        "default_for_unknown_regions",
        "regional_competence",
        "routes",
        "authorities",
        "municipalities",
    }
)
_AUTH_KEYS = frozenset(
    {"id", "name", "aliases", "kind", "parent", "timezone", "supervisors", "sla", "description"}
)
_MUN_KEYS = frozenset(
    {
        "id",
        "name",
        "oktmo",
        "names",
        "adjectives",
        "district_of",
        "forms",
        "ambiguous",
        "ambiguous_names",
        "default",
        "routes",
        "authorities",
    }
)
_SUPERVISOR_KEYS = frozenset({"role", "webhook", "email"})


class RulesError(ValueError):
    """Invalid routing rules. ``problems`` holds ``(file, key path, message)`` triples.

    ``fingerprint`` is the :func:`content_fingerprint` of the files that were validated when
    :func:`load_rules` raised it (None otherwise): the watcher uses it so that the same bad
    content is not validated again on every poll.
    """

    def __init__(
        self, problems: list[tuple[str, str, str]], *, fingerprint: str | None = None
    ) -> None:
        self.problems = problems
        self.fingerprint = fingerprint
        lines = [f"{f}: {p or '<root>'}: {m}" for f, p, m in problems]
        super().__init__(
            f"invalid routing rules ({len(problems)} problem(s)):\n  " + "\n  ".join(lines)
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:  # «? [a, b]» or «? {a: 1}»: a complex key, never a rules key
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a mapping key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def default_rules_path() -> Path:
    """``$APPEALS_ROUTING_RULES`` if set, else the packaged ``data/`` directory."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else PACKAGED_DATA


def rule_files(path: str | os.PathLike[str]) -> list[Path]:
    """The rule files a path stands for: the file itself, or ``*.yaml|*.yml`` in a dir."""
    p = Path(path)
    if p.is_dir():
        return sorted(
            f for f in p.iterdir() if f.suffix in {".yaml", ".yml"} and not f.name.startswith(".")
        )
    return [p]


def content_fingerprint(contents: Iterable[tuple[str, bytes | None]]) -> str:
    """Hash over ``(file name, bytes)`` pairs (None: unreadable), in the given order.

    :func:`load_rules` records it for the bytes it actually parsed, and
    :class:`~workers.routing.watcher.RulesWatcher` compares the files on disk against it.
    """
    digest = hashlib.sha256()
    for name, data in contents:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        if data is None:
            digest.update(b"\1unreadable\0")
        else:
            digest.update(b"%d\0" % len(data) + data)
    return digest.hexdigest()


def policy_file_path() -> Path | None:
    """The SLA policy file the rules are loaded with (``$APPEALS_POLICY_FILE``), None for the
    packaged one (part of the installed code, never edited in place)."""
    from workers.deadlines.policies import POLICY_FILE_ENV

    chosen = os.environ.get(POLICY_FILE_ENV)
    return Path(chosen) if chosen else None


def policy_entry(path: Path) -> str:
    """The name the policy file has among the rule files in :func:`content_fingerprint`: no
    rule file can have it, so a rule file of the same name is another entry."""
    return f"\0policy:{path}"


def _freeze(value: Any) -> Any:
    """Deep read-only copy so SLA overrides shared across coroutines cannot be mutated."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


class _Ctx:
    """Problem collector for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[tuple[str, str, str]] = []

    def err(self, path: str, message: str) -> None:
        self.problems.append((self.file, path, message))

    def str_(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> Any:
        value = data.get(key)
        if value is None:
            if required:
                self.err(f"{path}.{key}" if path else key, "required, expected a string")
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            where = f"{path}.{key}" if path else key
            self.err(where, f"expected a non-empty string, got {value!r}")
            return None
        return value.strip()

    def unknown_keys(self, data: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.err(
                    f"{path}.{key}" if path else str(key),
                    f"unknown key; expected one of {', '.join(sorted(allowed))}",
                )


def _parse_routes(ctx: _Ctx, raw: Any, path: str) -> dict[str, dict[str, Any]]:
    """``category -> id | {default: id, subcategories: {sub: id}}``, ids unchecked yet."""
    routes: dict[str, dict[str, Any]] = {}
    if raw is None:
        return routes
    if not isinstance(raw, Mapping):
        ctx.err(path, "expected a mapping of category code -> authority id")
        return routes
    for category, target in raw.items():
        cpath = f"{path}.{category}"
        if category not in CATEGORIES:
            ctx.err(cpath, f"unknown category code; expected one of {', '.join(CATEGORIES)}")
            continue
        if isinstance(target, str):
            routes[category] = {
                "default": target,
                "subcategories": {},
                "path": cpath,
                "short": True,
            }
        elif isinstance(target, Mapping):
            ctx.unknown_keys(target, frozenset({"default", "subcategories"}), cpath)
            default = target.get("default")
            if default is not None and not isinstance(default, str):
                ctx.err(f"{cpath}.default", f"expected an authority id, got {default!r}")
                default = None
            subs_raw = target.get("subcategories") or {}
            subs: dict[str, str] = {}
            if not isinstance(subs_raw, Mapping):
                ctx.err(f"{cpath}.subcategories", "expected a mapping subcategory -> authority id")
            else:
                for sub, sub_target in subs_raw.items():
                    spath = f"{cpath}.subcategories.{sub}"
                    if not isinstance(sub, str) or not _SLUG.match(sub):
                        ctx.err(spath, "subcategory must be a lower-case slug like 'stray_dogs'")
                    elif not isinstance(sub_target, str):
                        ctx.err(spath, f"expected an authority id, got {sub_target!r}")
                    else:
                        subs[sub] = sub_target
            if default is None and not subs:
                ctx.err(cpath, "expected 'default' and/or 'subcategories'")
            routes[category] = {"default": default, "subcategories": subs, "path": cpath}
        else:
            ctx.err(cpath, f"expected an authority id or a mapping, got {target!r}")
    return routes


def _parse_authority(
    ctx: _Ctx,
    raw: Any,
    path: str,
    region_code: str,
    region_tz: str,
    municipality: str | None,
) -> Authority | None:
    if not isinstance(raw, Mapping):
        ctx.err(path, "expected a mapping with id, name, kind")
        return None
    ctx.unknown_keys(raw, _AUTH_KEYS, path)
    aid = ctx.str_(raw, "id", path)
    name = ctx.str_(raw, "name", path)
    kind = ctx.str_(raw, "kind", path)
    parent = ctx.str_(raw, "parent", path, required=False)
    own_tz = ctx.str_(raw, "timezone", path, required=False)
    tz = own_tz or region_tz
    if aid is not None and not _AUTHORITY_ID.match(aid):
        ctx.err(f"{path}.id", f"{aid!r}: expected '<region code>-<slug>', e.g. '22-minzhkh'")
    elif aid is not None and not aid.startswith(f"{region_code}-"):
        ctx.err(f"{path}.id", f"{aid!r}: must start with the region code '{region_code}-'")
    if kind is not None and kind not in AUTHORITY_KINDS:
        ctx.err(f"{path}.kind", f"{kind!r}: expected one of {', '.join(AUTHORITY_KINDS)}")
    if own_tz is not None:  # the region's zone is checked once, where it is written
        _check_timezone(ctx, own_tz, f"{path}.timezone")
    supervisors: list[Supervisor] = []
    sup_raw = raw.get("supervisors") or []
    if not isinstance(sup_raw, list):
        ctx.err(f"{path}.supervisors", "expected a list of {role, webhook?, email?}")
    else:
        for j, s in enumerate(sup_raw):
            spath = f"{path}.supervisors[{j}]"
            if not isinstance(s, Mapping):
                ctx.err(spath, "expected a mapping {role, webhook?, email?}")
                continue
            ctx.unknown_keys(s, _SUPERVISOR_KEYS, spath)
            role = ctx.str_(s, "role", spath)
            webhook = ctx.str_(s, "webhook", spath, required=False)
            email = ctx.str_(s, "email", spath, required=False)
            # The settings' URL check: the prefix alone let through a host with a space or
            # one IDNA cannot encode (``hooks..example.ru``), which failed at the first alert.
            # The problem names the host, never the URL (a hook's path may hold a secret).
            problem = "" if webhook is None else http_url_problem(webhook)
            if problem:
                ctx.err(f"{spath}.webhook", f"expected an http(s) URL ({problem})")
            if email is not None and "@" not in email:
                ctx.err(f"{spath}.email", f"{email!r}: expected an e-mail address")
            if role is not None:
                supervisors.append(Supervisor(role, webhook, email))
    sla = raw.get("sla") or {}
    if not isinstance(sla, Mapping):
        ctx.err(f"{path}.sla", "expected a mapping of SLA policy overrides")
        sla = {}
    aliases: list[str] = []
    aliases_raw = raw.get("aliases")
    if aliases_raw is not None and not isinstance(aliases_raw, list):
        ctx.err(f"{path}.aliases", f"expected a list of names, got {aliases_raw!r}")
    else:
        for k, v in enumerate(aliases_raw or ()):
            if not isinstance(v, str) or not v.strip():
                ctx.err(f"{path}.aliases[{k}]", f"expected a non-empty string, got {v!r}")
            elif not tokenize(v):
                ctx.err(f"{path}.aliases[{k}]", f"{v!r}: contains no letters or digits")
            else:
                aliases.append(v.strip())
    if aid is None or name is None or kind is None:
        return None
    return Authority(
        id=aid,
        name=name,
        kind=kind,
        region_code=region_code,
        timezone=tz,
        parent=parent,
        municipality=municipality,
        supervisors=tuple(supervisors),
        sla=_freeze(sla),
        aliases=tuple(aliases),
    )


_RUSSIAN_OFFSETS = (timedelta(hours=2), timedelta(hours=12))
"""UTC offsets of Russia's time zones: Kaliningrad (+2) to Kamchatka (+12)."""


def _offset_instants() -> tuple[datetime, datetime]:
    """A January and a July instant of the current year: a zone whose offset differs between
    them keeps daylight saving time, which Russia abolished in 2011 (a body there is in no such
    zone; Europe/Zaporozhye and Europe/Kiev are Kyiv time, UTC+2 in winter and +3 in summer)."""
    year = datetime.now(UTC).year
    return datetime(year, 1, 15, tzinfo=UTC), datetime(year, 7, 15, tzinfo=UTC)

_NOT_ZONES = frozenset({"localtime", "posixrules"})
"""Files of the host's zone database that name no zone of their own (they copy another)."""


def _check_timezone(ctx: _Ctx, tz: str | None, path: str) -> None:
    """An IANA zone a Russian body can be in (UTC+2..+12).

    The zone database also holds names no body here can have: «Etc/GMT+7» is UTC−7 (POSIX
    signs, the classic mistake for Barnaul's UTC+7), «posixrules» is New York on Debian,
    «Factory» is UTC. Each loaded, and the SLA counted the body's working hours in it.
    """
    if tz is None:
        return
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: «Asia» is a dir
        ctx.err(path, f"{tz!r}: not an IANA time zone (e.g. 'Asia/Barnaul')")
        return
    if tz in _NOT_ZONES:
        ctx.err(
            path,
            f"{tz!r}: a file of the host's zone database that copies another zone; name "
            "the body's city zone (e.g. 'Asia/Barnaul')",
        )
        return
    january, july = (instant.astimezone(zone).utcoffset() for instant in _offset_instants())
    low, high = _RUSSIAN_OFFSETS
    if january is None or not low <= january <= high:
        ctx.err(
            path,
            f"{tz!r}: UTC offset {_format_offset(january)}, outside Russia's UTC+2..+12; "
            "name the body's city zone (Etc/GMT+7 is UTC−7: use Asia/Barnaul)",
        )
    elif july != january:
        ctx.err(
            path,
            f"{tz!r}: keeps daylight saving time (UTC{_format_offset(january)} in January, "
            f"UTC{_format_offset(july)} in July), which Russia does not; name the body's "
            "Russian city zone (e.g. 'Europe/Moscow', 'Asia/Barnaul')",
        )


def _format_offset(offset: timedelta | None) -> str:
    """``+07:00``, ``-05:00`` (``timedelta`` prints UTC−5 as «-1 day, 19:00:00»)."""
    if offset is None:
        return "unknown"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _item_path(key: str, index: int, item: Any) -> str:
    """``municipalities[6](slavgorod)``: a list item's path names its id too, when it has one
    (the index alone made the editor count list items to find it)."""
    item_id = item.get("id") if isinstance(item, Mapping) else None
    if isinstance(item_id, str) and item_id.strip():
        return f"{key}[{index}]({item_id.strip()})"
    return f"{key}[{index}]"


def _parse_file(file: Path, raw: bytes) -> tuple[_Ctx, dict[str, Any] | None]:
    """Parse one region file into plain parts; cross-file checks happen in load_rules."""
    ctx = _Ctx(str(file))
    sha = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        ctx.err(
            "",
            f"not valid UTF-8 (line {line}, byte {exc.start}: {exc.reason}); "
            "save the file as UTF-8, and check it was not cut off mid-write",
        )
        return ctx, None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        ctx.err("", f"not valid YAML: {exc}")
        return ctx, None
    except (ValueError, TypeError, RecursionError) as exc:
        # PyYAML's constructors raise plain errors for some scalars, e.g. «2025-13-45»
        # resolves to a date and fails with "month must be in 1..12".
        ctx.err("", f"not valid YAML: {type(exc).__name__}: {exc}")
        return ctx, None
    if not isinstance(data, Mapping):
        ctx.err("", "expected a mapping at the top level (region, triage, authorities, ...)")
        return ctx, None
    ctx.unknown_keys(data, _TOP_KEYS, "")
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        ctx.err("schema", f"{schema!r}: this version of the router reads schema {SCHEMA}")
    code_raw = ctx.str_(data, "region", "")
    region = None
    if code_raw is not None:
        try:
            region = get_region(code_raw)
        except UnknownRegion as exc:
            ctx.err("region", str(exc))
    if region is None:
        return ctx, None
    code = region.code
    tz = ctx.str_(data, "timezone", "", required=False) or region.timezone
    _check_timezone(ctx, tz, "timezone")
    version = ctx.str_(data, "version", "", required=False)
    triage = ctx.str_(data, "triage", "")
    default_flag = data.get("default_for_unknown_regions", False)
    if not isinstance(default_flag, bool):
        ctx.err("default_for_unknown_regions", f"expected true or false, got {default_flag!r}")
        default_flag = False

    competence_raw = data.get("regional_competence") or []
    competence: set[str] = set()
    if not isinstance(competence_raw, list):
        ctx.err("regional_competence", "expected a list of category codes")
    else:
        for j, c in enumerate(competence_raw):
            if c not in CATEGORIES:
                ctx.err(
                    f"regional_competence[{j}]",
                    f"{c!r}: unknown category code; expected one of {', '.join(CATEGORIES)}",
                )
            else:
                competence.add(c)

    authorities: list[tuple[Authority, str]] = []
    auth_raw = data.get("authorities") or []
    if not isinstance(auth_raw, list):
        ctx.err("authorities", "expected a list of authorities")
        auth_raw = []
    for j, a in enumerate(auth_raw):
        path = _item_path("authorities", j, a)
        auth = _parse_authority(ctx, a, path, code, tz, None)
        if auth is not None:
            authorities.append((auth, path))

    region_routes = _parse_routes(ctx, data.get("routes"), "routes")

    municipalities: list[dict[str, Any]] = []
    mun_raw = data.get("municipalities") or []
    if not isinstance(mun_raw, list):
        ctx.err("municipalities", "expected a list of municipalities")
        mun_raw = []
    seen_mun: dict[str, str] = {}
    for j, m in enumerate(mun_raw):
        path = _item_path("municipalities", j, m)
        if not isinstance(m, Mapping):
            ctx.err(path, "expected a mapping with id, name, default, ...")
            continue
        ctx.unknown_keys(m, _MUN_KEYS, path)
        mid = ctx.str_(m, "id", path)
        mname = ctx.str_(m, "name", path)
        if mid is not None and not _SLUG.match(mid):
            ctx.err(f"{path}.id", f"{mid!r}: expected a lower-case slug like 'kamen-na-obi'")
        if mid is not None and mid in seen_mun:
            ctx.err(f"{path}.id", f"duplicate municipality id {mid!r} (also {seen_mun[mid]})")
        if mid is not None:
            seen_mun[mid] = path
        opath = f"{path}.oktmo"
        oktmo_raw = m.get("oktmo")
        oktmo = ctx.str_(m, "oktmo", path, required=False)
        if oktmo is not None and not _OKTMO.match(oktmo):
            if isinstance(oktmo_raw, int) and not isinstance(oktmo_raw, bool):
                # YAML 1.1 reads an unquoted 01701000 as the octal number 492032: the value
                # reported would be one the editor never wrote.
                ctx.err(opath, f"written as a number, which YAML read as {oktmo_raw} (with a "
                               "leading 0 it is octal: 01701000 becomes 492032); quote the "
                               "code, e.g. oktmo: \"01701000\"")
            else:
                ctx.err(opath, f"{oktmo!r}: expected 8 or 11 digits (quote it in YAML)")
        # The gazetteer is built from this validated copy only: a bad value (``names: 5``,
        # a number or an empty item in the list) is reported, never handed to it.
        spec: dict[str, Any] = {}
        for key in ("names", "adjectives", "district_of", "forms", "ambiguous_names"):
            val = m.get(key)
            if val is None:
                continue
            if not isinstance(val, list):
                ctx.err(f"{path}.{key}", f"expected a list of non-empty strings, got {val!r}")
                continue
            good: list[str] = []
            for k, v in enumerate(val):
                if not isinstance(v, str) or not v.strip():
                    ctx.err(f"{path}.{key}[{k}]", f"expected a non-empty string, got {v!r}")
                elif not tokenize(v):
                    ctx.err(f"{path}.{key}[{k}]", f"{v!r}: contains no letters or digits")
                else:
                    good.append(v)
            spec[key] = good
        ambiguous = m.get("ambiguous", False)
        if not isinstance(ambiguous, bool):
            ctx.err(f"{path}.ambiguous", "expected true or false")
        else:
            spec["ambiguous"] = ambiguous
        # A flag on a name the municipality does not have would protect nothing: most
        # likely a typo, and the ordinary word would go on matching the listed name.
        own = {place_key(v) for key in ("names", "forms") for v in spec.get(key, ())}
        for k, v in enumerate(spec.get("ambiguous_names", ())):
            if place_key(v) not in own:
                ctx.err(
                    f"{path}.ambiguous_names[{k}]",
                    f"{v!r} is none of this municipality's names: or forms:; "
                    "list it there, or fix the spelling",
                )
        default = ctx.str_(m, "default", path, required=False)
        routes = _parse_routes(ctx, m.get("routes"), f"{path}.routes")
        m_auth_raw = m.get("authorities") or []
        if not isinstance(m_auth_raw, list):
            ctx.err(f"{path}.authorities", "expected a list of authorities")
            m_auth_raw = []
        for k, a in enumerate(m_auth_raw):
            apath = _item_path(f"{path}.authorities", k, a)
            auth = _parse_authority(ctx, a, apath, code, tz, mid)
            if auth is not None:
                authorities.append((auth, apath))
        if mid is not None and mname is not None:
            municipalities.append(
                {
                    "id": mid,
                    "name": mname,
                    "oktmo": oktmo,
                    "default": default,
                    "default_path": f"{path}.default",
                    "routes": routes,
                    "spec": spec,
                    "path": path,
                }
            )

    return ctx, {
        "code": code,
        "name": ctx.str_(data, "name", "", required=False) or region.name_ru,
        "timezone": tz,
        "triage": triage,
        "default": default_flag,
        "competence": frozenset(competence),
        "routes": region_routes,
        "authorities": authorities,
        "municipalities": municipalities,
        "version": _file_version(version, sha),
        "explicit_version": version,
        "sha256": sha,
    }


def _target_problem(
    target: str, known: Mapping[str, Authority], region_code: str, municipality: str | None
) -> str | None:
    """Why ``target`` cannot receive the appeals of a route, default or triage desk of
    ``region_code`` (and of ``municipality``, None for the region's own tables), or None.

    Existence alone let an edit route Biysk's roads to Barnaul's committee, the region-wide
    housing fallback to a city committee, or appeals to another region's ministry: all
    loaded cleanly and misrouted. A region's tables name its region-level bodies (the
    top-level ``authorities:``); a municipality's name those or its own bodies.
    """
    auth = known.get(target)
    if auth is None:
        return f"unknown authority id {target!r}"
    if auth.region_code != region_code:
        return (
            f"{target!r} belongs to region {auth.region_code}, not {region_code}: "
            "name a body of this region"
        )
    if auth.municipality is None or auth.municipality == municipality:
        return None
    if municipality is None:
        return (
            f"{target!r} is a body of municipality {auth.municipality!r}: a region-wide "
            "setting must name a region-level body (one under the top-level authorities:)"
        )
    return (
        f"{target!r} is a body of municipality {auth.municipality!r}, not {municipality!r}: "
        f"name a body of {municipality!r} or a region-level body (top-level authorities:)"
    )


def _route_objects(
    ctx: _Ctx,
    routes: dict[str, dict[str, Any]],
    known: Mapping[str, Authority],
    region_code: str,
    municipality: str | None,
) -> dict[str, CategoryRoute]:
    """Routes with every target checked by :func:`_target_problem`."""
    result: dict[str, CategoryRoute] = {}
    for category, r in routes.items():
        targets = [("default", r["default"])] + [
            (f"subcategories.{s}", t) for s, t in r["subcategories"].items()
        ]
        for key, target in targets:
            if target is None:
                continue
            problem = _target_problem(target, known, region_code, municipality)
            if problem is not None:
                kpath = r["path"] if r.get("short") else f"{r['path']}.{key}"
                ctx.err(kpath, problem)
        result[category] = CategoryRoute(
            default=r["default"], subcategories=MappingProxyType(dict(r["subcategories"]))
        )
    return result


def load_rules(
    path: str | os.PathLike[str] | None = None, *, default_region: str | None = None
) -> RoutingRules:
    """Load every region file under ``path`` (a file or a directory of ``*.yaml``).

    ``path`` defaults to :func:`default_rules_path`. ``default_region`` (the region whose
    triage desk receives appeals from regions without rules) overrides the files'
    ``default_for_unknown_regions`` flag; with a single region loaded it defaults to it.
    Raises :class:`RulesError` listing every problem found.
    """
    root = Path(path) if path is not None else default_rules_path()
    files = rule_files(root)
    problems: list[tuple[str, str, str]] = []
    # Each file is read exactly once; the rules, their version and the fingerprint the
    # watcher compares against all come from these same bytes.
    contents: list[tuple[str, bytes | None]] = []
    parsed: list[tuple[_Ctx, dict[str, Any]]] = []
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            contents.append((file.name, None))
            problems.append((str(file), "", f"cannot read: {exc.strerror or exc}"))
            continue
        contents.append((file.name, raw))
        try:
            ctx, result = _parse_file(file, raw)
        except Exception as exc:  # a bug here must still name the file, not crash a reload
            problems.append((str(file), "", f"could not be validated: {type(exc).__name__}: {exc}"))
            continue
        problems.extend(ctx.problems)
        if result is not None:
            parsed.append((ctx, result))
    # The policy file is read here too, once, and is part of the fingerprint: its book is
    # built from these bytes (``deadline_service.rules_book``), so an edit of it reaches the
    # agents as new rules, once the watcher has seen it settle like a rule file. Read per
    # batch instead, a file caught mid-save was used at once (a subcategory and an override
    # missing), and could stay in use when the rest of the save kept its mtime.
    policy: tuple[str, bytes | None] | None = None
    policy_path = policy_file_path()
    if policy_path is not None:
        try:
            policy = (str(policy_path), policy_path.read_bytes())
        except OSError:
            policy = (str(policy_path), None)  # the book reports it (the rules are fine)
        contents.append((policy_entry(policy_path), policy[1]))
    fingerprint = content_fingerprint(contents)
    if not files:
        raise RulesError([(str(root), "", "no *.yaml rule files found")], fingerprint=fingerprint)
    # No early exit: the cross-file checks below still run, so one edit round shows every
    # problem at once.
    for ctx, _ in parsed:
        ctx.problems.clear()  # already copied into ``problems``

    # Cross-file checks: unique ids, parents exist, no cycles, routes point somewhere.
    authorities: dict[str, Authority] = {}
    where: dict[str, str] = {}
    region_file: dict[str, str] = {}
    for ctx, r in parsed:
        if r["code"] in region_file:
            ctx.err("region", f"region {r['code']!r} is also defined in {region_file[r['code']]}")
        region_file[r["code"]] = ctx.file
        for auth, apath in r["authorities"]:
            if auth.id in authorities:
                ctx.err(
                    f"{apath}.id", f"duplicate authority id {auth.id!r} (also {where[auth.id]})"
                )
                continue
            authorities[auth.id] = auth
            where[auth.id] = f"{ctx.file}: {apath}"

    # A municipality id names one place in every region: the figures key it alone
    # (``muni:<id>``), so a «pervomayskiy-rayon» of region 22 and one of region 70 would
    # merge into one municipality on the dashboards and in the API.
    municipality_where: dict[str, tuple[str, str]] = {}
    for ctx, r in parsed:
        for m in r["municipalities"]:
            first = municipality_where.get(m["id"])
            if first is None:
                municipality_where[m["id"]] = (r["code"], f"{ctx.file}: {m['path']}")
            elif first[0] != r["code"]:  # twice in one region is reported by _parse_file
                ctx.err(
                    f"{m['path']}.id",
                    f"municipality id {m['id']!r} of region {r['code']} is also a "
                    f"municipality of region {first[0]} ({first[1]}); figures are keyed by "
                    "the id alone and would merge the two: make it unique across regions, "
                    f"e.g. '{r['code']}-{m['id']}'",
                )

    regions: dict[str, RegionRules] = {}
    for ctx, r in parsed:
        for candidate, apath in r["authorities"]:
            own = authorities.get(candidate.id)
            if own is None or own is not candidate:  # a duplicate, already reported
                continue
            if own.parent is not None and own.parent not in authorities:
                ctx.err(f"{apath}.parent", f"unknown parent authority id {own.parent!r}")
            elif own.parent is None and own.kind != "government":
                ctx.err(
                    f"{apath}.parent",
                    "required for every authority except kind 'government' "
                    "(escalation needs somewhere to go)",
                )
        triage = r["triage"]
        if triage is not None:
            t = authorities.get(triage)
            problem = _target_problem(triage, authorities, r["code"], None)
            if t is None or problem is not None:
                ctx.err("triage", problem or f"unknown authority id {triage!r}")
            elif t.parent is None:
                # A complaint about a root body goes to the triage desk (which forwards it
                # outside the region). If the desk *is* a root, a complaint about it would go
                # to itself (59-FZ art. 8 p. 6 forbids that) and route() must never raise,
                # so such a configuration is refused here, where the editor sees why.
                ctx.err(
                    "triage",
                    f"{triage!r} has no parent (kind {t.kind!r}): a complaint about it would "
                    "be routed to itself; name a triage desk (kind 'triage') under the "
                    "regional government",
                )
        routes = _route_objects(ctx, r["routes"], authorities, r["code"], None)
        munis: dict[str, Municipality] = {}
        for m in r["municipalities"]:
            if m["default"] is not None:
                problem = _target_problem(m["default"], authorities, r["code"], m["id"])
                if problem is not None:
                    ctx.err(m["default_path"], problem)
            mun_routes = _route_objects(ctx, m["routes"], authorities, r["code"], m["id"])
            munis[m["id"]] = Municipality(
                id=m["id"],
                name=m["name"],
                default=m["default"],
                routes=MappingProxyType(mun_routes),
                oktmo=m["oktmo"],
            )
        try:
            gazetteer = Gazetteer.build((m["id"], m["spec"]) for m in r["municipalities"])
        except GazetteerConflict as exc:
            ctx.err("municipalities", str(exc))
            gazetteer = Gazetteer({})
        problems.extend(ctx.problems)
        if triage is None:
            continue
        regions[r["code"]] = RegionRules(
            code=r["code"],
            name=r["name"],
            timezone=r["timezone"],
            triage=triage,
            routes=MappingProxyType(routes),
            municipalities=MappingProxyType(munis),
            regional_competence=r["competence"],
            gazetteer=gazetteer,
            source=ctx.file,
            version=r["version"],
        )
    cycles = _cycles(authorities, where)
    problems.extend(cycles)
    if not cycles:  # the checks below walk parent chains
        problems.extend(_departments_outside_their_municipality(parsed, authorities))
    problems.extend(_sla_problems(parsed, authorities, policy))
    problems.extend(_name_clashes(parsed, authorities))
    if problems:
        raise RulesError(problems, fingerprint=fingerprint)

    flagged = [r["code"] for _, r in parsed if r["default"]]
    if default_region is not None:
        try:
            default_region = get_region(default_region).code
        except UnknownRegion as exc:
            raise RulesError(
                [(str(root), "default_region", str(exc))], fingerprint=fingerprint
            ) from None
        if default_region not in regions:
            raise RulesError(
                [(str(root), "default_region", f"no rules loaded for region {default_region!r}")],
                fingerprint=fingerprint,
            )
    elif len(flagged) > 1:
        raise RulesError(
            [
                (
                    region_file[c],
                    "default_for_unknown_regions",
                    "set in more than one file: " + ", ".join(region_file[x] for x in flagged),
                )
                for c in flagged[:1]
            ],
            fingerprint=fingerprint,
        )
    elif flagged:
        default_region = flagged[0]
    elif len(regions) == 1:
        default_region = next(iter(regions))

    return RoutingRules(
        regions=MappingProxyType(regions),
        authorities=MappingProxyType(authorities),
        version=_set_version(parsed),
        default_region=default_region,
        source=str(root),
        fingerprint=fingerprint,
        policy_file=policy,
    )


def _file_version(declared: str | None, sha256_hex: str) -> str:
    """``<declared>+<12 hex>`` or ``sha256:<16 hex>``: always names the file's content.

    The declared version alone would let an edit without a bumped version (or a file caught
    half-written) record the same version as the rules before it.
    """
    if declared:
        return f"{declared}+{sha256_hex[:12]}"
    return "sha256:" + sha256_hex[:16]


def _set_version(parsed: Sequence[tuple[_Ctx, dict[str, Any]]]) -> str:
    """Version of the whole set: see the module docstring for the format."""
    if len(parsed) == 1:
        return str(parsed[0][1]["version"])
    items = sorted((Path(ctx.file).name, r["sha256"], r["explicit_version"]) for ctx, r in parsed)
    digest = hashlib.sha256("\n".join(f"{n}\t{h}" for n, h, _ in items).encode()).hexdigest()
    declared = [str(v) for _, _, v in items if v]
    if declared:
        return ",".join(declared) + "+" + digest[:12]
    return "sha256:" + digest[:16]


def _cycles(
    authorities: Mapping[str, Authority], where: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """Parent chains must end: a cycle would make complaint escalation loop forever."""
    problems: list[tuple[str, str, str]] = []
    reported: set[str] = set()
    for start in authorities:
        seen: list[str] = []
        current: str | None = start
        while current is not None and current in authorities:
            if current in seen:
                cycle = seen[seen.index(current) :]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    file, _, path = where[current].partition(": ")
                    problems.append(
                        (file, f"{path}.parent", "parent cycle: " + " -> ".join([*cycle, current]))
                    )
                break
            seen.append(current)
            current = authorities[current].parent
    return problems


def _departments_outside_their_municipality(
    parsed: Sequence[tuple[_Ctx, dict[str, Any]]], authorities: Mapping[str, Authority]
) -> list[tuple[str, str, str]]:
    """Every authority listed under a municipality sits below that municipality's
    administration (its ``default``).

    A municipal department is run by its administration (local self-government is not part
    of the regional ministries). With a regional ministry as its parent, a complaint about
    the city administration was routed to the administration's own department: the
    complaint rule only excludes bodies *below* the one complained about.
    """
    problems: list[tuple[str, str, str]] = []
    for ctx, r in parsed:
        admin_of = {m["id"]: m["default"] for m in r["municipalities"]}
        for candidate, apath in r["authorities"]:
            own = authorities.get(candidate.id)
            if own is not candidate or own.municipality is None:
                continue
            admin = admin_of.get(own.municipality)
            if admin is None or admin not in authorities or own.id == admin:
                continue
            chain: list[str] = []
            current = own.parent
            while current is not None and current in authorities and current not in chain:
                chain.append(current)
                current = authorities[current].parent
            if current is not None and current not in authorities:
                continue  # an unknown parent, reported as such: one problem, at its source
            if admin not in chain:
                problems.append(
                    (
                        ctx.file,
                        f"{apath}.parent",
                        f"{own.id!r} belongs to municipality {own.municipality!r} but does "
                        f"not sit below its administration {admin!r} (parent chain: "
                        f"{' -> '.join([own.id, *chain]) or own.id}); set parent: {admin}, "
                        "or a complaint about the administration would go to its own "
                        "department",
                    )
                )
    return problems


def _name_clashes(
    parsed: Sequence[tuple[_Ctx, dict[str, Any]]], authorities: Mapping[str, Authority]
) -> list[tuple[str, str, str]]:
    """No two bodies of a region share a name or alias as routing compares them (word normal
    forms, :func:`~workers.routing.gazetteer.name_lemmas`).

    A complaint naming such a body could not tell which one it is about, and would go to
    the triage desk however plainly it was written: refused here, where the editor sees why.
    """
    problems: list[tuple[str, str, str]] = []
    for ctx, r in parsed:
        seen: dict[tuple[str, ...], str] = {}
        for candidate, apath in r["authorities"]:
            own = authorities.get(candidate.id)
            if own is not candidate:  # a duplicate id, already reported
                continue
            names = [(f"{apath}.name", own.name)] + [
                (f"{apath}.aliases[{k}]", alias) for k, alias in enumerate(own.aliases)
            ]
            mine: set[tuple[str, ...]] = set()
            for path, name in names:
                key = name_lemmas(name)
                other = seen.get(key)
                if other is not None and other != own.id:
                    problems.append((
                        ctx.file, path,
                        f"{name!r} also names {other!r}: a complaint naming it could be "
                        "about either body; make the names differ",
                    ))
                elif key not in mine:
                    seen[key] = own.id
                mine.add(key)
    return problems


def _policy_reason(exc: Exception) -> tuple[str | None, str]:
    """``(field, message)`` from a policy book error, without the book's own location
    (``policies.toml: overrides[7] (applied to pos)``), which means nothing to the person
    editing the routing rules."""
    m = re.match(r"^(?:.*?overrides\[\d+\])?(?: \(applied to [^)]*\))?\.?(.*)$", str(exc), re.S)
    text = m.group(1) if m else str(exc)
    field, sep, rest = text.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+(?:\.[a-z_]+)*", field):
        return field, rest
    return None, text


def _sla_problems(
    parsed: Sequence[tuple[_Ctx, dict[str, Any]]],
    authorities: Mapping[str, Authority],
    policy: tuple[str, bytes | None] | None = None,
) -> list[tuple[str, str, str]]:
    """Check the authorities' ``sla:`` blocks the way the SLA worker will use them.

    The SLA worker turns each block into policy-book overrides
    (:func:`workers.sla.deadline_service.authority_overrides`) and builds its book with
    :func:`~workers.sla.deadline_service.load_book`. Both are reused here, so the rules
    cannot accept what the book refuses (nor the other way round), and a reload with a bad
    block keeps the working rules instead of failing the SLA worker at its next start or
    recompute with a message naming the policy file. A key the conversion ignores (a typo
    such as ``workingdays``) is reported too. ``policy`` is the policy file as read with the
    rules (:attr:`RoutingRules.policy_file`), the one their book is built from.
    """
    located: list[tuple[Authority, str, str]] = []
    for ctx, r in parsed:
        pairs: list[tuple[Authority, str]] = r["authorities"]
        for auth, apath in pairs:
            if auth.sla and authorities.get(auth.id) is auth:  # not a reported duplicate
                located.append((auth, ctx.file, apath))
    if not located:
        return []
    from workers.deadlines.policies import PolicyError
    from workers.sla.deadline_service import load_book

    try:
        regimes = load_book((), snapshot=policy).regimes
    except (PolicyError, OSError, ValueError) as exc:
        # Not a problem of the rules file: the SLA worker reports it on its own.
        log.warning("SLA overrides in the routing rules not checked: %s", exc)
        return []

    problems: list[tuple[str, str, str]] = []
    for auth, file, apath in located:
        found: list[tuple[tuple[str, ...], str]] = []
        _sla_unused(auth.id, (), auth.sla, found)
        for key, value in auth.sla.items():
            found.extend(_sla_key_problems(auth.id, str(key), value, regimes, policy))
        if not found:
            # The whole block, resolved as the SLA worker will resolve it: overrides that
            # pass one by one may still combine into an invalid policy.
            try:
                book = load_book([auth], snapshot=policy)
                for regime in book.regimes:
                    for category in (None, *CATEGORIES):
                        book.resolve(regime, auth.region_code, auth.id, category)
            except PolicyError as exc:
                field, message = _policy_reason(exc)
                found.append(((), f"{field}: {message}" if field else message))
        problems.extend(
            (file, ".".join((f"{apath}.sla", *keys)), f"authority {auth.id!r}: {message}")
            for keys, message in found
        )
    return problems


def _sla_converted(auth_id: str, keys: tuple[str, ...], value: Any) -> list[dict[str, Any]]:
    """The SLA worker's overrides for an ``sla:`` block holding only ``keys -> value``."""
    from workers.sla.deadline_service import authority_overrides

    for key in reversed(keys):
        value = {key: value}
    return authority_overrides([_SlaProbe(auth_id, value)])


def _sla_unused(
    auth_id: str,
    keys: tuple[str, ...],
    value: Any,
    found: list[tuple[tuple[str, ...], str]],
) -> None:
    """Report the keys the SLA worker's conversion drops, and periods set twice."""
    if isinstance(value, Mapping) and value:
        periods: list[str] = []
        for k, v in value.items():
            sub = (*keys, str(k))
            out = _sla_converted(auth_id, sub, v)
            if not out or isinstance(v, Mapping):
                _sla_unused(auth_id, sub, v, found)
            if keys and any("answer" in o for o in out):
                periods.append(str(k))
        if len(periods) > 1:  # the conversion would silently keep one of them
            found.append((keys, f"sets the period more than once ({', '.join(periods)}); "
                                "keep one"))
        return
    if not _sla_converted(auth_id, keys, value):
        what = "empty" if isinstance(value, Mapping) else "unknown key or wrong shape"
        found.append((keys, f"ignored by the SLA engine ({what}); expected e.g. "
                            "'pos: {working_days: 5}', "
                            "'incident: {first_response: {working_hours: 4}}' or 'shift: next'"))


def _sla_key_problems(
    auth_id: str,
    key: str,
    value: Any,
    regimes: Sequence[str],
    policy: tuple[str, bytes | None] | None = None,
) -> list[tuple[tuple[str, ...], str]]:
    """One top-level key of an ``sla:`` block through the policy book, on its own, so an
    error names that key (and, within a regime, the unit or setting at fault)."""
    from workers.deadlines.policies import PolicyError
    from workers.sla.deadline_service import load_book

    try:
        load_book([_SlaProbe(auth_id, {key: value})], snapshot=policy)
    except PolicyError as exc:
        field, message = _policy_reason(exc)
    else:
        return []
    keys: tuple[str, ...] = (key,)
    if field == "regime":
        return [(keys, f"unknown SLA regime {key!r}; expected one of {', '.join(regimes)}")]
    if isinstance(value, Mapping):
        period = value.get("first_response", value) if key == "incident" else value
        inner: tuple[str, ...] = ("first_response",) if period is not value else ()
        if field is not None and field in value:
            return [((key, field), message)]
        if field in ("answer", "counting") and isinstance(period, Mapping):
            units = [
                str(k)
                for k, v in period.items()
                if any("answer" in o for o in _sla_converted(auth_id, (key, *inner, str(k)), v))
            ]
            if len(units) == 1:  # the book's «answer» is this unit key
                return [((key, *inner, units[0]), message)]
    if field is not None and field != key:
        message = f"{field}: {message}"
    return [(keys, message)]


class _SlaProbe:
    """The two attributes :func:`authority_overrides` reads from an authority."""

    __slots__ = ("id", "sla")

    def __init__(self, id: str, sla: Mapping[str, Any]) -> None:
        self.id = id
        self.sla = sla
