"""Written appeal under 59-FZ (обращение) -> canonical intake.

Two sources share one shape: the authority's electronic reception («интернет-приёмная»), and
a paper letter scanned and registered by the office (``source: "letter"``, with an OCR'd or
typed-in body and the scan as an attachment). Native shape::

    {
      "channel": "fz59",
      "source": "portal" | "letter",
      "reg_number": "Ж-22-000123/25",      # registration number -> external_id (scoped)
      "reg_date": "14.01.2025",             # registration date (kept in extra)
      "received_at": "2025-01-13T16:40:00+07:00",  # -> submitted_at (falls back to reg_date)
      "region": "22",
      "addressee": "Министерство строительства ...",
      "applicant": {"surname": "...", "name": "...", "patronymic": "...",
                    "postal_address": "...", "email": "...", "phone": "..."},
      "subject": "...",
      "body": "...",
      "incident_address": "...",            # where the problem is -> address
      "complaint_about": "authority-id",    # a complaint about this body
      "pages": 2,
      "scan": {"url": "...", "size": 1048576, "mime": "application/pdf"},
      "attachments": [...]
    }

59-FZ counts the 3-day registration deadline from receipt, so ``submitted_at`` is the receipt
time; the office's own registration date stays in ``extra``. The applicant's postal address is
personal data for the reply and is *not* the place of the problem, so it never becomes
``address`` (routing reads ``address`` to find the municipality: a letter from Barnaul about a
road in Biysk belongs to Biysk). A letter without ``incident_address`` has no ``address``; the
municipality then comes from ``municipality``, the subject or the body. The postal address is
kept, as the reply address, in ``extra["applicant"]["postal_address"]`` with every other
applicant field that ``author`` has no place for (``snils``, a second phone, ...).

A registration number is unique only in the register of the office that gave it (``1-1/25``
is the first letter of 2025 in many offices), so the external id is
``<region>:<addressee>:<reg_number>`` (``<region>:<reg_number>`` without an ``addressee``; an
explicit ``external_id`` stays as given). Two authorities' letters ``1-1/25`` were one appeal
id, and intake dropped the second citizen's letter as a duplicate; a redelivery of one letter
(same region, addressee and number) still names one appeal. Letters without ``addressee``
from two offices of one region that number alike still collide: a source should send it.
Upgrade note: a letter delivered both before and after this change gets two appeal ids and is
registered twice.
"""

from __future__ import annotations

from typing import Any

from schemas.validation import InvalidEvent
from workers.intake.adapters._common import (
    as_mapping,
    attachment,
    attachments,
    author,
    canonical,
    first,
    iso_date_only,
    iso_datetime,
    leftovers,
    person_leftovers,
    person_name,
    region_code,
    scope_part,
    scoped_id,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "fz59"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("reg_number",)
_USED = (
    "channel", "reg_number", "external_id", "received_at", "region", "applicant", "subject",
    "body", "incident_address", "complaint_about", "scan", "attachments", "municipality",
)
# Applicant fields that become ``author``; every other one (postal_address, snils, a second
# phone, ...) is kept in ``extra["applicant"]``.
_APPLICANT_USED = ("surname", "name", "patronymic", "phone", "email")


def _scoped_reg_number(data: dict[str, Any], region: str) -> str:
    """The external id: ``reg_number`` scoped by the region and the addressee (see the module
    docstring); an explicit ``external_id`` is the sender's own id and stays as it is (the
    gateway's ``<client>:key:sha256:...`` among them)."""
    own = _external_id(first(data, "reg_number", "external_id"), "reg_number")
    if first(data, "reg_number") is None:
        return own
    addressee = scope_part(data.get("addressee"))
    return scoped_id(f"{region}:{addressee}" if addressee else region, own)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    who = as_mapping(data.get("applicant"), "applicant")
    extra = leftovers(data, _USED)
    person_leftovers(extra, "applicant", who, _APPLICANT_USED)
    received = data.get("received_at")
    if received in (None, ""):
        reg_date = iso_date_only(data.get("reg_date"))
        if reg_date is None:
            raise InvalidEvent("missing_field", "received_at (or reg_date) is missing")
        received = reg_date.isoformat()
    files = attachments(data.get("attachments"))
    if data.get("scan") is not None:
        files.insert(0, attachment(data["scan"]))
    return canonical(
        CHANNEL,
        external_id=_scoped_reg_number(data, region),
        submitted_at=iso_datetime(received, region=region, field="received_at"),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        text=text_or_none(data.get("body")) or "",
        subject=text_or_none(data.get("subject")),
        address=text_or_none(data.get("incident_address")),
        complaint_about=text_or_none(data.get("complaint_about")),
        author=author(
            name=person_name(who.get("surname"), who.get("name"), who.get("patronymic")),
            phone=who.get("phone"),
            email=who.get("email"),
        ),
        attachments=files,
        extra=extra,
    )
