"""ЦУР «Инцидент Менеджмент» social-media incident -> canonical intake.

Native shape (a post the monitoring system picked up in a social network)::

    {
      "channel": "incident",
      "incident_id": "IM-22-0458812",        # -> external_id (falls back to the post URL)
      "network": "vk" | "ok" | "telegram" | "dzen" | ...,
      "post_url": "https://vk.com/wall-1234_5678",
      "published_at": "2025-01-14T07:55:00+07:00",
      "detected_at": "...",                   # when monitoring found it (kept in extra)
      "region": "22",
      "municipality": "г. Бийск",
      "author": {"handle": "@...", "display_name": "...", "profile_url": "..."},
      "text": "...",
      "importance": "low" | "normal" | "high" | "низкая" | "средняя" | "высокая",
      "topic": "Дороги",                      # monitoring's rubric -> category_hint if known
      "location": {"address": "...", "lat": .., "lon": ..},
      "media": [{"url": "...", "type": "photo"}]
    }

The importance decides the first-response deadline of the incident regime (4 working hours for
high importance is common), so an unrecognised importance is rejected rather than guessed.
The post URL and network are kept in ``extra`` (answers are published back under the post).
A native id longer than the schema's 200 characters (a post URL with tracking parameters, as
the fallback id) becomes its first 100 characters, ``:sha256:`` and a digest of the whole
(:func:`~workers.intake.adapters._common.scoped_id`): such an incident was dead-lettered
``too_long``. An explicit ``external_id`` stays as given.
"""

from __future__ import annotations

from typing import Any

from schemas.validation import InvalidEvent
from workers.intake.adapters._common import (
    as_mapping,
    attachments,
    author,
    canonical,
    category_code,
    first,
    iso_datetime,
    leftovers,
    region_code,
    scoped_id,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "incident"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("incident_id", "post_url")
_USED = (
    "channel", "incident_id", "external_id", "published_at", "region", "municipality",
    "author", "text", "importance", "topic", "location", "media",
)
_IMPORTANCE = {
    "low": "low", "низкая": "low", "низкий": "low",
    "normal": "normal", "medium": "normal", "средняя": "normal", "средний": "normal",
    "обычная": "normal",
    "high": "high", "высокая": "high", "высокий": "high", "critical": "high",
}


def _importance(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in _IMPORTANCE:
        raise InvalidEvent("invalid_value", "importance is not low/normal/high")
    return _IMPORTANCE[value.strip().lower()]


def _native_id(data: dict[str, Any]) -> str:
    """``incident_id``, else ``external_id``, else the post URL; a native one (not an
    explicit ``external_id``) digested past 200 characters (see the module docstring)."""
    own = _external_id(first(data, "incident_id", "external_id", "post_url"), "incident_id")
    if first(data, "incident_id") is None and first(data, "external_id") is not None:
        return own
    return scoped_id(None, own)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    who = as_mapping(data.get("author"), "author")
    loc = data.get("location")
    extra = leftovers(data, _USED)
    if isinstance(loc, dict):
        address = text_or_none(loc.get("address"))
        geo = {k: v for k, v in loc.items() if k != "address"}
        if geo:
            extra["address_geo"] = geo
    else:
        address = text_or_none(loc)
    profile = {k: v for k, v in who.items() if k not in ("handle", "display_name")}
    if profile:
        extra["author_profile"] = profile
    if data.get("topic") is not None:
        extra["topic"] = data["topic"]
    media = data.get("media")
    return canonical(
        CHANNEL,
        external_id=_native_id(data),
        submitted_at=iso_datetime(data.get("published_at"), region=region, field="published_at"),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        text=text_or_none(data.get("text")) or "",
        category_hint=category_code(data.get("topic")),
        importance=_importance(data.get("importance")),
        address=address,
        author=author(name=who.get("display_name"), handle=who.get("handle")),
        attachments=attachments(media, mime="type"),
        extra=extra,
    )
