"""E-mail gateway message -> canonical intake.

Native shape (the mail gateway's JSON rendering of a received message)::

    {
      "channel": "email",
      "message_id": "<20250114.0912.4471@mail.example.ru>",  # -> external_id (scoped)
      "from": "Иванова Мария <m.ivanova@example.ru>",         # RFC 5322 mailbox
      "to": "priemnaya@minstroy.example.ru",                # the receiving mailbox
      "subject": "...",
      "body": "...",                 # text/plain part (the gateway strips HTML)
      "received": "Tue, 14 Jan 2025 09:12:05 +0700",          # RFC 2822 (MSK too) or ISO 8601
      "region": "22",                # the authority's region (set by the gateway per mailbox)
      "phone": "...",                # when the gateway extracted one from a signature
      "address": "...",
      "attachments": [{"filename": "...", "url": "...", "size": 1, "content_type": "..."}]
    }

Since 30 March 2025 e-mail is not a valid channel for a 59-FZ appeal, so the regime is chosen
downstream (``Settings.email_regime``); this adapter only maps fields. The Message-ID names
the appeal because mail retries and forwards keep it. Recipient and headers stay in ``extra``.

One message sent to two authorities (``To:`` both mailboxes) reaches each mailbox's gateway with
one Message-ID, and the second authority's copy was dropped as a duplicate: the external id
is therefore the Message-ID scoped by the receiving mailbox, ``<region>:<to>:<message id>``
(``to``'s addresses lower-cased, sorted and comma-joined; ``<region>:<message id>`` without
a ``to``; an explicit ``external_id`` stays as given). ``region`` is the authority's, set by
the gateway per mailbox, so it is always there; ``to`` tells two mailboxes of one region
apart when the gateway gives the receiving mailbox (as here) and not the whole ``To:``
header. A retry of one message to one mailbox still names one appeal. Upgrade note: a
message delivered both before and after this change gets two appeal ids and is registered
twice.

The sender is read from ``from`` by :func:`workers.intake.mailbox.split_mailbox`: an address
counts only with an ``@`` (``Петров, Иван <ivan@example.ru>`` gave ``петров`` as the e-mail and
no name), and the display name is kept. A ``from`` over 998 characters (RFC 5322's line
limit), or whose comments nest too deeply to read, is refused (``invalid_value``); the latter
was an ``internal_error`` after a thousand-frame traceback in the log.
"""

from __future__ import annotations

from typing import Any

from schemas.validation import InvalidEvent
from workers.intake.adapters._common import (
    attachments,
    author,
    canonical,
    first,
    iso_datetime,
    leftovers,
    region_code,
    scope_part,
    scoped_id,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id
from workers.intake.mailbox import MAX_HEADER_LENGTH, UnreadableMailbox, addresses, split_mailbox

CHANNEL = "email"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("message_id",)
_USED = (
    "channel", "message_id", "external_id", "from", "subject", "body", "received", "region",
    "phone", "address", "attachments", "municipality",
)


def _sender(value: Any) -> tuple[str | None, str | None]:
    """``(display name, address)`` of the ``from`` header (see the module docstring)."""
    sender = text_or_none(value)
    if sender is None:
        return None, None
    if len(sender) > MAX_HEADER_LENGTH:
        raise InvalidEvent("invalid_value", f"from is longer than {MAX_HEADER_LENGTH} "
                           "characters (RFC 5322's line limit)")
    try:
        return split_mailbox(sender)
    except UnreadableMailbox as exc:
        raise InvalidEvent("invalid_value", f"from is not a readable mailbox: {exc}") from None


def _scoped_message_id(data: dict[str, Any], region: str) -> str:
    """The Message-ID scoped by the region and the receiving mailbox (see the module
    docstring); an explicit ``external_id`` (the sender's own, or the gateway's
    ``<client>:key:sha256:...``) stays as it is."""
    own = _external_id(first(data, "message_id", "external_id"), "message_id")
    if first(data, "message_id") is None:
        return own
    recipient = scope_part(data.get("to"))
    if recipient is not None:
        recipient = ",".join(addresses(recipient)) or recipient.lower()
    return scoped_id(f"{region}:{recipient}" if recipient else region, own)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    extra = leftovers(data, _USED)
    name, mailbox = _sender(data.get("from"))
    subject = text_or_none(data.get("subject"))
    body = text_or_none(data.get("body"))
    return canonical(
        CHANNEL,
        external_id=_scoped_message_id(data, region),
        submitted_at=iso_datetime(data.get("received"), region=region, field="received"),
        region=region,
        municipality=text_or_none(data.get("municipality")),
        # An e-mail with only a subject line is still an appeal: the subject becomes its text.
        text=body or subject or "",
        subject=subject,
        address=text_or_none(data.get("address")),
        author=author(name=name, email=mailbox, phone=data.get("phone")),
        attachments=attachments(data.get("attachments"), name="filename", mime="content_type"),
        extra=extra,
    )
