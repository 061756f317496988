"""Helpers shared by the channel adapters.

Every source system spells times, regions and people differently; the adapters only decide
*which* native field means what, and these helpers decide *how* a value becomes canonical, so
two adapters never disagree about what a valid timestamp or region code is.

Adapters raise :class:`~schemas.validation.InvalidEvent` with a short reason code when a native
payload cannot be mapped (the code becomes a bounded metric label on the dead-letter topic).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from schemas.records import CATEGORIES
from schemas.validation import InvalidEvent
from workers.geo.regions import UnknownRegion, normalize_code, region_timezone

__all__ = [
    "attachment",
    "category_code",
    "first",
    "iso_datetime",
    "leftovers",
    "person_leftovers",
    "region_code",
    "text_or_none",
]

# Moscow time: the offset assumed for a naive timestamp when the region is unknown.
_MSK = timezone(timedelta(hours=3))


def first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-empty value among ``keys`` (source systems rename fields)."""
    for key in keys:
        value = data.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def text_or_none(value: Any, limit: int | None = None) -> str | None:
    """A string field or ``None``; numbers are accepted (registration numbers, ids)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidEvent("wrong_type", f"expected text, got {type(value).__name__}")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    return value[:limit] if limit else value


def external_id(value: Any, field: str) -> str:
    """The source's own id for the appeal: required, because exact dedupe is keyed on it.

    A numeric id must be a JSON integer. orjson reads integers outside the 64-bit range
    (and anything written with a fraction or exponent) as floats, and ``str(float)`` loses
    digits: ``18446744073709551616`` and ``...617`` would both become ``1.8446744073709552e+19``,
    one appeal id, and the second appeal would be dropped as a duplicate. Such ids are rejected
    (``invalid_value``); a source with ids that large must send them as strings.
    """
    if isinstance(value, float):
        raise InvalidEvent(
            "invalid_value",
            f"{field} must be a string or an integer within 64 bits (send large ids as text)",
        )
    text = text_or_none(value)
    if text is None:
        raise InvalidEvent("missing_field", f"{field} (the source's id) is missing")
    return text


#: The schema's longest ``external_id``: a longer native id is digested (:func:`scoped_id`).
MAX_ID_LENGTH = 200


def scoped_id(scope: str | None, source_id: str) -> str:
    """``<scope>:<source id>`` for ids that are unique only within their source (a site's
    submission counter, an office's registration numbers); ``source_id`` alone when there is
    no scope.

    A digest when the id would pass the schema's 200 characters: the first 100 characters
    of the scope (or, unscoped, of the id) then ``:sha256:`` and the digest of the whole.
    Stable, so a redelivery names the same appeal; an over-long native id (a post URL with
    tracking parameters, the incident adapter's fallback) was dead-lettered ``too_long``.
    """
    scoped = f"{scope}:{source_id}" if scope else source_id
    if len(scoped) > MAX_ID_LENGTH:
        digest = hashlib.sha256(scoped.encode("utf-8", "surrogateescape")).hexdigest()
        scoped = f"{(scope or source_id)[:100]}:sha256:{digest}"
    return scoped


def scope_part(value: Any) -> str | None:
    """A native field as part of an id's scope: its text with whitespace runs folded, or
    ``None`` when it is not a text or a number (an object or a flag names nothing; such a
    value stays in ``extra`` as sent). Folded, so a redelivery that spaces an authority's
    name differently still names the same appeal."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = text_or_none(value)
    return " ".join(text.split()) if text else None


def region_code(value: Any) -> str:
    """Canonical two-digit region code; plate aliases (``122``, ``777``) are accepted."""
    if value is None or value == "":
        raise InvalidEvent("missing_field", "region is missing")
    try:
        return normalize_code(value)
    except UnknownRegion:
        raise InvalidEvent("unknown_region", "region code is not a federal subject") from None


def _zone_for(region: str | None) -> Any:
    if region:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(region_timezone(region))
        except (UnknownRegion, KeyError, ValueError):
            pass
    return _MSK


def iso_datetime(value: Any, *, region: str | None = None, field: str = "submitted_at") -> str:
    """An ISO 8601 timestamp with an offset, as the intake schema demands.

    Accepted: ISO 8601 (with ``Z``, an offset, or naive), ``DD.MM.YYYY[ HH:MM[:SS]]`` (Russian
    office style, used by registries and scanned letters), RFC 2822 (e-mail ``Date:``; a zone
    by name only when Python knows it or it is Russian, :data:`RUSSIAN_ZONES`, else
    ``invalid_value``), and Unix epoch seconds or milliseconds. A naive time is taken as local
    time of the appeal's region (a hotline in Barnaul logs Barnaul time), or Moscow time when
    the region is unknown.
    """
    if value is None or value == "":
        raise InvalidEvent("missing_field", f"{field} is missing")
    dt: datetime | None = None
    if isinstance(value, bool):
        raise InvalidEvent("invalid_value", f"{field} is not a timestamp")
    if isinstance(value, int | float):
        seconds = float(value) / 1000.0 if value > 1e11 else float(value)
        try:
            dt = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidEvent("invalid_value", f"{field} is out of range") from None
    elif isinstance(value, str):
        raw = value.strip()
        try:
            dt = _parse_text_datetime(raw)
        except UnknownZone:
            # the name is not echoed: an unparsed word of the payload
            raise InvalidEvent(
                "invalid_value",
                f"{field} names a time zone intake does not know; send a numeric offset "
                "(+0300) or a Russian zone's abbreviation (MSK, YEKT, ...)") from None
    if dt is None:
        raise InvalidEvent("invalid_value", f"{field} is not a recognised timestamp")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone_for(region))
    if not 1990 <= dt.year <= 2200:
        raise InvalidEvent("invalid_value", f"{field} is out of range")
    return dt.isoformat(timespec="seconds")


_UNKNOWN_LOCAL_ZONE = re.compile(r"\s-0000\s*(\([^()]*\))?\s*$")
# A zone named by letters at the end of an RFC 2822 date, before an optional comment.
_ZONE_NAME = re.compile(r"\s([A-Za-z]+)\s*(\([^()]*\))?\s*$")
#: Russia's zone abbreviations, which Python's RFC 2822 parser does not know (it knows UT,
#: GMT, Z and the US zones): ``09:12:05 MSK`` came back with no zone and was taken as the
#: region's local time, 4 hours off in Barnaul. Each names its IANA zone rather than an offset,
#: because the offsets moved (MSK was +04 from 2011 to 2014, NOVT +06 until 2016).
RUSSIAN_ZONES = {
    "KALT": "Europe/Kaliningrad", "MSK": "Europe/Moscow", "SAMT": "Europe/Samara",
    "YEKT": "Asia/Yekaterinburg", "OMST": "Asia/Omsk", "NOVT": "Asia/Novosibirsk",
    "KRAT": "Asia/Krasnoyarsk", "IRKT": "Asia/Irkutsk", "YAKT": "Asia/Yakutsk",
    "VLAT": "Asia/Vladivostok", "MAGT": "Asia/Magadan", "SAKT": "Asia/Sakhalin",
    "PETT": "Asia/Kamchatka",
}


class UnknownZone(ValueError):
    """A date ends in a zone name that is neither Python's nor in :data:`RUSSIAN_ZONES`."""


def _parse_text_datetime(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        pass
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None and _UNKNOWN_LOCAL_ZONE.search(raw):
        # RFC 5322 3.3: "-0000" is UTC with the sender's zone unknown. Python gives it naive,
        # and as naive it was taken as the region's local time: 7 h off in Barnaul.
        parsed = parsed.replace(tzinfo=UTC)
    named = _ZONE_NAME.search(raw) if parsed.tzinfo is None else None
    if named:
        # A zone name Python does not know also comes back naive. A Russian one is read as
        # its zone; any other (CET, IST: some are ambiguous) is refused, not guessed.
        zone = RUSSIAN_ZONES.get(named.group(1).upper())
        if zone is None:
            raise UnknownZone(named.group(1))
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed


def iso_date_only(value: Any) -> date | None:
    """A date from ``YYYY-MM-DD`` or ``DD.MM.YYYY`` (registration dates), else ``None``."""
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    return None


def attachment(item: Any, *, url: str = "url", name: str = "name", size: str = "size",
               mime: str = "mime") -> dict[str, Any]:
    """One attachment's metadata in canonical form; content is never carried, only a URL."""
    if isinstance(item, str):
        return {"url": item}
    if not isinstance(item, Mapping):
        raise InvalidEvent("wrong_type", "attachment must be an object or a URL")
    out: dict[str, Any] = {"url": text_or_none(item.get(url)) or ""}
    if not out["url"]:
        raise InvalidEvent("missing_field", "attachment url is missing")
    n = text_or_none(item.get(name))
    if n is not None:
        out["name"] = n
    s = item.get(size)
    if s is not None:
        if isinstance(s, bool) or not isinstance(s, int | float | str):
            raise InvalidEvent("wrong_type", "attachment size must be a number")
        if isinstance(s, float):
            out["size"] = whole_bytes(s)
        else:
            try:
                out["size"] = int(s)
            except ValueError:
                raise InvalidEvent("wrong_type", "attachment size must be a number") from None
    m = text_or_none(item.get(mime))
    if m is not None:
        out["mime"] = m
    return out


def whole_bytes(size: float, where: str = "attachment size") -> int:
    """A size written as a JSON float (``3e7``, ``30000000.0``: orjson reads both as floats,
    and JSON Schema's ``integer`` accepts them) as the int it is; ``wrong_type`` when it is not
    a whole number. The size limit compared ints only, so 30000000.0 and 1e300 passed 20 MiB,
    and an adapter's ``int()`` cut 3.7 to 3 where the canonical path refused it."""
    if not math.isfinite(size) or not size.is_integer():
        raise InvalidEvent("wrong_type", f"{where} must be a whole number of bytes")
    return int(size)


def attachments(items: Any, **names: str) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidEvent("wrong_type", "attachments must be a list")
    return [attachment(item, **names) for item in items]


def leftovers(data: Mapping[str, Any], used: Iterable[str]) -> dict[str, Any]:
    """Native fields the adapter did not map: kept verbatim in ``extra``, never dropped.

    Only the top level of ``data``: an adapter that maps some fields of a nested object (the
    applicant, the author, the caller) keeps that object's other fields with
    :func:`person_leftovers`.
    """
    used_set = set(used)
    return {k: v for k, v in data.items() if k not in used_set}


def person_leftovers(
    extra: dict[str, Any], name: str, person: Mapping[str, Any], used: Iterable[str]
) -> None:
    """Keep the fields of a nested person object the adapter did not map in ``extra[name]``.

    A 59-FZ applicant's postal address (where the answer goes), a SNILS, a second phone: the
    canonical ``author`` has no field for them and must not lose them. They are personal data:
    like ``author`` they travel only on the intake and registered topics (never the routed
    one) and are never logged.
    """
    rest = leftovers(person, used)
    if rest:
        extra[name] = rest


# Category names as source systems write them (lower-case, ё→е) -> our operational codes.
# Only a hint for the classifier: an unknown name maps to None and the classifier decides.
_CATEGORY_NAMES: dict[str, str] = {
    "жкх": "housing_utilities",
    "жилищно-коммунальное хозяйство": "housing_utilities",
    "коммунальные услуги": "housing_utilities",
    "дороги": "roads",
    "дорожное хозяйство": "roads",
    "автомобильные дороги": "roads",
    "общественный транспорт": "transport",
    "транспорт": "transport",
    "благоустройство": "landscaping",
    "здравоохранение": "healthcare",
    "медицина": "healthcare",
    "образование": "education",
    "социальная защита": "social",
    "социальное обслуживание": "social",
    "экология": "ecology",
    "связь": "connectivity",
    "связь и телекоммуникации": "connectivity",
    "безопасность": "safety",
    "торговля": "trade_services",
    "торговля и услуги": "trade_services",
    "потребительский рынок": "trade_services",
    "прочее": "other",
    "другое": "other",
}


def category_code(name: Any) -> str | None:
    """Our category code for a source's category name or code, or ``None`` when unknown."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower().replace("ё", "е")
    if key in CATEGORIES:
        return key
    return _CATEGORY_NAMES.get(key)


def person_name(*parts: Any) -> str | None:
    """Full name from its parts (surname, given name, patronymic), skipping empty ones."""
    words = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
    return " ".join(words) or None


def author(name: Any = None, phone: Any = None, email: Any = None,
           handle: Any = None) -> dict[str, Any] | None:
    """Canonical author object, or ``None`` when the source gave nothing about the person."""
    out = {
        "name": text_or_none(name),
        "phone": text_or_none(phone),
        "email": text_or_none(email),
        "handle": text_or_none(handle),
    }
    out = {k: v for k, v in out.items() if v is not None}
    return out or None


def canonical(channel: str, **fields: Any) -> dict[str, Any]:
    """The canonical dict: ``schema_version`` set, ``None`` fields left out."""
    out: dict[str, Any] = {"schema_version": 1, "channel": channel}
    for key, value in fields.items():
        if value is None or value == [] or value == {}:
            continue
        out[key] = value
    return out


def as_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent("wrong_type", f"{field} must be an object")
    return value
