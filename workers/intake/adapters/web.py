"""The authority's own site form («Обратная связь» / «Интернет-приёмная») -> canonical intake.

Native shape (what the site's form handler posts; form field names are the site's)::

    {
      "channel": "web",
      "submission_id": "minstroy-22-000512",  # -> external_id
      "site": "minstroy.example.ru",
      "form": "feedback",
      "submitted": "2025-01-14 10:21:00",     # naive = the region's local time
      "region": "22",
      "fields": {
        "fio": "...", "phone": "...", "email": "...",
        "address": "...",                      # address of the problem
        "theme": "Благоустройство",            # the form's topic select -> category_hint
        "subject": "...", "message": "...",
        "consent_pd": true,                    # consent to personal data processing (152-FZ)
        ...                                    # any other form field -> extra["form_fields"]
      },
      "files": [{"url": "...", "name": "...", "size": 1, "mime": "..."}]
    }

Sites add form fields at will, so unknown *form* fields are kept in ``extra["form_fields"]`` and
unknown top-level fields in ``extra``: nothing a citizen typed is dropped.
"""

from __future__ import annotations

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
    region_code,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "web"
_USED = ("channel", "submission_id", "external_id", "submitted", "region", "fields", "files")
_FORM_USED = (
    "fio", "name", "phone", "email", "address", "theme", "subject", "message", "municipality",
)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    form = as_mapping(data.get("fields"), "fields")
    extra = leftovers(data, _USED)
    form_extra = leftovers(form, _FORM_USED)
    if form_extra:
        extra["form_fields"] = form_extra
    if form.get("theme") is not None:
        extra["theme"] = form["theme"]
    return canonical(
        CHANNEL,
        external_id=_external_id(first(data, "submission_id", "external_id"), "submission_id"),
        submitted_at=iso_datetime(data.get("submitted"), region=region, field="submitted"),
        region=region,
        municipality=text_or_none(form.get("municipality")),
        text=text_or_none(form.get("message")) or "",
        subject=text_or_none(form.get("subject")),
        category_hint=category_code(form.get("theme")),
        address=text_or_none(form.get("address")),
        author=author(
            name=first(form, "fio", "name"), phone=form.get("phone"), email=form.get("email")
        ),
        attachments=attachments(data.get("files")),
        extra=extra,
    )
