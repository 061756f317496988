"""E-mail gateway message -> canonical intake.

Native shape (the mail gateway's JSON rendering of a received message)::

    {
      "channel": "email",
      "message_id": "<20250114.0912.4471@mail.example.ru>",  # -> external_id
      "from": "Иванова Мария <m.ivanova@example.ru>",         # RFC 5322 mailbox
      "to": "priemnaya@minstroy.example.ru",
      "subject": "...",
      "body": "...",                 # text/plain part (the gateway strips HTML)
      "received": "Tue, 14 Jan 2025 09:12:05 +0700",          # RFC 2822 or ISO 8601
      "region": "22",                # the authority's region (set by the gateway per mailbox)
      "phone": "...",                # when the gateway extracted one from a signature
      "address": "...",
      "attachments": [{"filename": "...", "url": "...", "size": 1, "content_type": "..."}]
    }

Since 30 March 2025 e-mail is not a valid channel for a 59-FZ appeal, so the regime is chosen
downstream (``Settings.email_regime``); this adapter only maps fields. The Message-ID is the
external id because mail retries and forwards keep it. Recipient and headers stay in ``extra``.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from workers.intake.adapters._common import (
    attachments,
    author,
    canonical,
    first,
    iso_datetime,
    leftovers,
    region_code,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "email"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("message_id",)
_USED = (
    "channel", "message_id", "external_id", "from", "subject", "body", "received", "region",
    "phone", "address", "attachments", "municipality",
)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    extra = leftovers(data, _USED)
    sender = text_or_none(data.get("from"))
    name, mailbox = parseaddr(sender) if sender else ("", "")
    subject = text_or_none(data.get("subject"))
    body = text_or_none(data.get("body"))
    return canonical(
        CHANNEL,
        external_id=_external_id(first(data, "message_id", "external_id"), "message_id"),
        submitted_at=iso_datetime(data.get("received"), region=region, field="received"),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        # An e-mail with only a subject line is still an appeal: the subject becomes its text.
        text=body or subject or "",
        subject=subject,
        address=text_or_none(data.get("address")),
        author=author(name=name or None, email=mailbox or sender, phone=data.get("phone")),
        attachments=attachments(data.get("attachments"), name="filename", mime="content_type"),
        extra=extra,
    )
