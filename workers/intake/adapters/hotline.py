"""Regional 122 hotline call record -> canonical intake.

Native shape (the call-centre system's export, one record per finished call)::

    {
      "channel": "hotline",
      "call_id": "122-22-20250114-000731",   # -> external_id (scoped by region)
      "operator_id": "op-0417",
      "call_started": "2025-01-14 09:03:12",  # naive = the region's local time
      "duration_s": 244,
      "region": "22",
      "caller": {"phone": "8 (913) 000-00-00", "name": "..."},
      "summary": "...",                       # the operator's summary -> text
      "transcript": "...",                    # speech-to-text; -> text when there is no summary
      "topic": "ЖКХ",
      "address": "...",
      "urgent": true,                         # the operator's flag -> importance "high"
      "callback_requested": true
    }

The operator's summary is the appeal text because it is what the authority must answer; the
raw transcript, when both exist, stays in ``extra`` for the record. The operator id and call
metadata stay in ``extra``, and so do caller fields other than name and phone (a second
number, ...) in ``extra["caller"]``. The operator's ``urgent`` flag is a person's judgement of
the call, so it becomes the appeal's importance ``high`` (routed as urgent, whatever the
classifier reads in the summary); it also stays in ``extra`` as given.

A call id is the call-centre system's own counter, and every region runs its own 122 centre,
so the external id is ``<region>:<call_id>`` (an explicit ``external_id`` stays as given): two
regions' call ``000731`` were one appeal id, and the second caller's appeal was dropped as a
duplicate. Upgrade note: a call record delivered both before and after this change gets two
appeal ids and is registered twice.
"""

from __future__ import annotations

from typing import Any

from workers.intake.adapters._common import (
    as_mapping,
    author,
    canonical,
    category_code,
    first,
    iso_datetime,
    leftovers,
    person_leftovers,
    region_code,
    scoped_id,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "hotline"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("call_id",)
_USED = (
    "channel", "call_id", "external_id", "call_started", "region", "caller", "summary",
    "transcript", "topic", "address", "municipality",
)


def _scoped_call_id(data: dict[str, Any], region: str) -> str:
    """``<region>:<call_id>``; an explicit ``external_id`` (the sender's own, or the gateway's
    ``<client>:key:sha256:...``) stays as it is."""
    own = _external_id(first(data, "call_id", "external_id"), "call_id")
    if first(data, "call_id") is None:
        return own
    return scoped_id(region, own)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    caller = as_mapping(data.get("caller"), "caller")
    extra = leftovers(data, _USED)
    person_leftovers(extra, "caller", caller, ("name", "phone"))
    summary = text_or_none(data.get("summary"))
    transcript = text_or_none(data.get("transcript"))
    if summary and transcript:
        extra["transcript"] = transcript
    if data.get("topic") is not None:
        extra["topic"] = data["topic"]
    return canonical(
        CHANNEL,
        external_id=_scoped_call_id(data, region),
        submitted_at=iso_datetime(data.get("call_started"), region=region, field="call_started"),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        text=summary or transcript or "",
        category_hint=category_code(data.get("topic")),
        address=text_or_none(data.get("address")),
        author=author(name=caller.get("name"), phone=caller.get("phone")),
        importance="high" if data.get("urgent") is True else None,
        extra=extra,
    )
