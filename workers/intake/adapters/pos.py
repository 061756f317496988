"""ПОС (Платформа обратной связи, Госуслуги «Решаем вместе») platform message -> canonical intake.

Native shape (what the platform's outbound integration delivers, one message per event)::

    {
      "channel": "pos",                       # optional on the pos topic
      "id": "1834521907",                     # platform message id -> external_id
      "created": "2025-01-14T08:12:44+07:00", # or epoch ms; naive = region's local time
      "region_code": "22",                    # federal subject code (plate aliases accepted)
      "municipality": "г. Барнаул",
      "category": {"id": 12, "name": "ЖКХ"},  # or a bare string
      "subcategory": {"id": 1203, "name": "Отопление"},
      "title": "Нет отопления",                # -> subject
      "text": "...",
      "fast_track": false,                     # platform flags stay in extra
      "author": {"last_name": "...", "first_name": "...", "middle_name": "...",
                 "phone": "+7 913 000-00-00", "email": "..."},
      "address": {"full": "...", "lat": 53.35, "lon": 83.77, "fias_id": "..."} | "...",
      "attachments": [{"url": "...", "file_name": "...", "size": 123, "content_type": "..."}]
    }

The platform's category name is mapped to our code as ``category_hint`` when we know it (the
classifier still decides); the platform's own category and subcategory objects are kept in
``extra`` because routing and the ПОС SLA policy depend on the platform's subcategory id.
``subcategory`` carries the subcategory *name* (the SLA policy key of the pos regime).
Unknown native fields go to ``extra`` verbatim; author fields ``author`` has no place for go to
``extra["pos_author"]``. Of two native spellings of one field (``region_code``/``region``,
``id``/``external_id``, ``created``/``created_at``) the first present one is used and the other,
when present too, is kept in ``extra`` under its own name, verbatim: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.intake.adapters._common import (
    as_mapping,
    attachments,
    author,
    canonical,
    category_code,
    first,
    iso_datetime,
    leftovers,
    person_leftovers,
    person_name,
    region_code,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "pos"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("id",)
_USED = (
    "channel", "id", "external_id", "created", "created_at", "region_code", "region",
    "municipality", "category", "subcategory", "title", "text", "author", "address",
    "attachments",
)
# Author fields that become ``author`` (``name`` last: used only without the name parts); the
# others (a second phone, SNILS, ...) are kept in ``extra["pos_author"]``.
_AUTHOR_USED = ("last_name", "first_name", "middle_name", "phone", "email", "name")


def _named(value: Any) -> str | None:
    if isinstance(value, dict):
        return text_or_none(value.get("name"))
    return text_or_none(value)


def _pick(data: Mapping[str, Any], keys: tuple[str, ...], unused: dict[str, Any]) -> Any:
    """:func:`first` of ``keys``; every other of ``keys`` with a value in ``data`` is put into
    ``unused`` verbatim (``region`` may be the name «Алтайский край, Бийский район» next to
    ``region_code``: not the same information)."""
    chosen = next((k for k in keys if first(data, k) is not None), None)
    for key in keys:
        if key != chosen and first(data, key) is not None:
            unused[key] = data[key]
    return data[chosen] if chosen is not None else None


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    extra = leftovers(data, _USED)
    # Alternatives of a field the adapter maps, other than the one it used: kept, not dropped.
    region = region_code(_pick(data, ("region_code", "region"), extra))
    source_id = _pick(data, ("id", "external_id"), extra)
    created = _pick(data, ("created", "created_at"), extra)
    who = as_mapping(data.get("author"), "author")
    addr = data.get("address")
    if isinstance(addr, dict):
        address = text_or_none(addr.get("full"))
        geo = {k: v for k, v in addr.items() if k != "full"}
        if geo:
            extra["address_geo"] = geo
    else:
        address = text_or_none(addr)
    category = data.get("category")
    subcategory = data.get("subcategory")
    if category is not None:
        extra["pos_category"] = category
    if subcategory is not None:
        extra["pos_subcategory"] = subcategory
    full_name = person_name(who.get("last_name"), who.get("first_name"), who.get("middle_name"))
    # "name" stands in only when the parts are missing; otherwise it is kept in extra.
    person_leftovers(extra, "pos_author", who,
                     _AUTHOR_USED if full_name is None else _AUTHOR_USED[:-1])
    return canonical(
        CHANNEL,
        external_id=_external_id(source_id, "id"),
        submitted_at=iso_datetime(created, region=region),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        text=text_or_none(data.get("text")) or "",
        subject=text_or_none(data.get("title")),
        category_hint=category_code(_named(category)),
        subcategory=_named(subcategory),
        address=address,
        author=author(
            name=full_name or who.get("name"),
            phone=who.get("phone"),
            email=who.get("email"),
        ),
        attachments=attachments(
            data.get("attachments"), name="file_name", mime="content_type"
        ),
        extra=extra,
    )
