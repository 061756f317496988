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
unknown top-level fields in ``extra``: nothing a citizen typed is dropped. The same holds for
alternatives the adapter did not use: ``name`` when ``fio`` gave the author's name goes to
``extra["form_fields"]["name"]`` (a form may ask for both: the person and the organisation),
``external_id`` when ``submission_id`` gave the id to ``extra["external_id"]``, verbatim.
Like ``author``, ``extra["form_fields"]`` may hold personal data and is never logged.

A submission id is the site's own counter, so the external id is ``<site>:<submission id>``
when the payload names its ``site`` as a text (an explicit ``external_id`` stays as given):
two sites' submission ``1001`` were one appeal id, and intake dropped the second citizen's
appeal as a duplicate (review of session 15). The gateway fills ``site`` with the client's id
when a form handler leaves it out. Upgrade note: a form resent across this change gets a new
appeal id and is registered again.
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
    region_code,
    scoped_id,
    text_or_none,
)
from workers.intake.adapters._common import external_id as _external_id

CHANNEL = "web"
#: Native fields that carry the source's own id (the gateway adds none of its own then).
ID_FIELDS = ("submission_id",)
_USED = ("channel", "submission_id", "external_id", "submitted", "region", "fields", "files")
_FORM_USED = (
    "fio", "name", "phone", "email", "address", "theme", "subject", "message", "municipality",
)


def _pick(data: Mapping[str, Any], keys: tuple[str, ...], unused: dict[str, Any]) -> Any:
    """:func:`first` of ``keys``; every other of ``keys`` with a value in ``data`` is put into
    ``unused`` verbatim (a site that sends both ``fio`` and ``name`` means two things)."""
    chosen = next((k for k in keys if first(data, k) is not None), None)
    for key in keys:
        if key != chosen and first(data, key) is not None:
            unused[key] = data[key]
    return data[chosen] if chosen is not None else None


def _scoped_submission(data: Mapping[str, Any], source_id: Any) -> str:
    """The external id: a ``submission_id`` scoped by the payload's ``site`` (a text), else
    as given. An explicit ``external_id`` is the sender's own id and stays as it is (the
    gateway's key-made id, :func:`~workers.intake.gateway.scoped_external_id`, was scoped a
    second time)."""
    own = _external_id(source_id, "submission_id")
    site = data.get("site")
    if (first(data, "submission_id") is None or isinstance(site, bool)
            or not isinstance(site, str | int | float)):
        return own  # an object or a flag names no site: kept in ``extra`` as sent
    return scoped_id(text_or_none(site), own)


def adapt(data: dict[str, Any]) -> dict[str, Any]:
    region = region_code(data.get("region"))
    form = as_mapping(data.get("fields"), "fields")
    extra = leftovers(data, _USED)
    form_extra = leftovers(form, _FORM_USED)
    # Alternatives of a field the adapter maps, other than the one it used: kept, not dropped.
    source_id = _pick(data, ("submission_id", "external_id"), extra)
    name = _pick(form, ("fio", "name"), form_extra)
    if form_extra:
        extra["form_fields"] = form_extra
    if form.get("theme") is not None:
        extra["theme"] = form["theme"]
    return canonical(
        CHANNEL,
        external_id=_scoped_submission(data, source_id),
        submitted_at=iso_datetime(data.get("submitted"), region=region, field="submitted"),
        region=region,
        municipality=text_or_none(form.get("municipality")),
        text=text_or_none(form.get("message")) or "",
        subject=text_or_none(form.get("subject")),
        category_hint=category_code(form.get("theme")),
        address=text_or_none(form.get("address")),
        author=author(name=name, phone=form.get("phone"), email=form.get("email")),
        attachments=attachments(data.get("files")),
        extra=extra,
    )
