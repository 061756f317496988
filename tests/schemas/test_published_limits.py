"""The schemas publish the limits the pipeline enforces, so a producer validating against them
is not refused later for something the contract allowed.

``intake-appeal`` allowed 20 attachments (intake takes 10), any text length (intake: 20,000
characters, ``oversize_text``), any declared attachment size (20 MiB), any URL scheme (http,
https, s3), and a text or external id of nothing but invisible characters or spaces. The
defaults are now in the schema, each listed under ``x-checked-by-intake`` with its setting; the
pipeline itself leaves those keywords to intake's own checks (configurable, with their reason
codes), so a deployment that raises a limit still takes what it allows.

``registered-appeal`` kept a fixed ``maxItems: 20`` of its own: with
``APPEALS_MAX_ATTACHMENTS=25`` intake took 25 attachments and published a record that broke
the topic's schema. The limits that are settings are left open there.

``routed-appeal``'s ``authority_id`` and ``municipality`` took any string; a ``|`` in one broke
the read model's ``a|b|c`` keys. They now carry the id patterns the routing rules enforce.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
import pytest

import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.records import SourcePosition
from schemas.validation import CHECKED_IN_CODE, InvalidEvent, load_schema, validate
from streams.settings import Settings
from workers.intake import gateway, normalize
from workers.intake.core import intake_from_dict, register
from workers.routing import load_rules
from workers.routing import loader as rules_loader
from workers.runtime import parse_event

BASE: dict[str, Any] = {"schema_version": 1, "channel": "pos", "external_id": "pos-1",
                        "submitted_at": "2026-11-25T10:00:00+07:00", "region": "22",
                        "text": "Во дворе не вывозят мусор"}
ATT = {"url": "https://example.org/a.jpg"}


def _doc(**fields: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(fields)
    return doc


REFUSED = [
    (_doc(text="я" * 20_001), "oversize_text"),
    (_doc(attachments=[ATT] * 11), "too_many_attachments"),
    (_doc(attachments=[dict(ATT, size=20 * 2**20 + 1)]), "attachment_too_large"),
    (_doc(attachments=[{"url": "ftp://example.org/a.jpg"}]), "attachment_not_url"),
    (_doc(attachments=[{"url": "data:image/png;base64,iVBORw0KGgo="}]), "attachment_not_url"),
    (_doc(text="\u200b"), "empty_text"),
    (_doc(text=" \ufeff\u200d "), "empty_text"),
    (_doc(external_id="   "), "missing_field"),
]


@pytest.mark.parametrize(("doc", "reason"), REFUSED)
def test_the_published_schema_refuses_what_intake_refuses(doc: dict[str, Any],
                                                          reason: str) -> None:
    published = jsonschema.Draft202012Validator(load_schema("intake-appeal"))
    assert not published.is_valid(doc)
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(doc)
    assert info.value.reason == reason  # intake's own code, not the schema keyword's


@pytest.mark.parametrize("doc", [
    _doc(text="я" * 20_000),
    _doc(attachments=[dict(ATT, size=20 * 2**20)] * 10),
    _doc(attachments=[{"url": "S3://bucket/a.jpg"}, {"url": "HTTP://example.org/b"}]),
])
def test_what_the_published_schema_allows_intake_takes(doc: dict[str, Any]) -> None:
    assert jsonschema.Draft202012Validator(load_schema("intake-appeal")).is_valid(doc)
    intake_from_dict(doc)


def test_the_published_values_are_intake_s_defaults_and_name_their_settings() -> None:
    schema = load_schema("intake-appeal")
    props = schema["properties"]
    attachment = props["attachments"]["items"]["properties"]
    defaults = normalize.NormaliseConfig()
    assert props["text"]["maxLength"] == Settings().max_text_length
    assert props["attachments"]["maxItems"] == defaults.max_attachments
    assert attachment["size"]["maximum"] == defaults.max_attachment_bytes
    for name in ("APPEALS_MAX_TEXT_LENGTH", "APPEALS_MAX_ATTACHMENTS",
                 "APPEALS_MAX_ATTACHMENT_BYTES"):
        assert name in schema["description"]
    assert "APPEALS_MAX_TEXT_LENGTH" in props["text"]["x-checked-by-intake"]["maxLength"]
    assert "APPEALS_MAX_ATTACHMENTS" in props["attachments"]["x-checked-by-intake"]["maxItems"]
    assert "APPEALS_MAX_ATTACHMENT_BYTES" in attachment["size"]["x-checked-by-intake"]["maximum"]


def test_a_configured_limit_above_the_published_default_is_honoured() -> None:
    """The hot path and the gateway leave the published defaults to intake's own checks."""
    old = normalize.current_config()
    doc = _doc(attachments=[ATT] * 12, text="я" * 25_000)
    try:
        normalize.configure(max_attachments=12)
        appeal = intake_from_dict(doc, max_text_length=30_000)
        assert len(appeal.attachments) == 12
        assert gateway.field_errors(doc, 0) == []
    finally:
        normalize.configure(max_attachments=old.max_attachments)


def test_a_record_registered_under_raised_limits_keeps_to_the_registered_schema() -> None:
    """25 attachments of 30 MiB and a 25,000-character text, all allowed by the deployment's
    settings: the registered record is valid for the pipeline and for a validator of the
    published schema (a consumer outside Python)."""
    old = normalize.current_config()
    doc = _doc(attachments=[dict(ATT, size=30 * 2**20)] * 25, text="я" * 25_000)
    try:
        normalize.configure(max_attachments=25, max_attachment_bytes=40 * 2**20)
        appeal = intake_from_dict(doc, max_text_length=30_000)
    finally:
        normalize.configure(max_attachments=old.max_attachments,
                            max_attachment_bytes=old.max_attachment_bytes)
    record = register(appeal, registered_at=datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
                      source=SourcePosition(topic="appeals.intake.pos", partition=0, offset=1))
    data = record.to_dict()
    assert len(data["attachments"]) == 25
    validate("registered-appeal", data)
    published = jsonschema.Draft202012Validator(load_schema("registered-appeal"))
    assert [e.message for e in published.iter_errors(data)] == []


def _checked_by_intake(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...],
                                                                           str]]:
    """(property path, keyword) of every limit intake-appeal lists as a setting's."""
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(node, dict):
        for keyword, why in node.get(CHECKED_IN_CODE, {}).items():
            if "APPEALS_" in why:
                found.append((path, keyword))
        for key, child in node.items():
            if key != CHECKED_IN_CODE:
                found += _checked_by_intake(child, (*path, key))
    return found


def test_no_record_downstream_of_intake_fixes_a_limit_that_is_a_setting() -> None:
    """Each limit intake takes from a setting is absent from the registered record's schema
    at the same place: a raised setting would otherwise break it (attachments had 20)."""
    limits = _checked_by_intake(load_schema("intake-appeal"))
    assert {k for _, k in limits} == {"maxLength", "maxItems", "maximum"}
    registered = load_schema("registered-appeal")
    for path, keyword in limits:
        node: Any = registered
        for key in path:
            node = node[key]
        assert keyword not in node, f"registered-appeal {'/'.join(path)} fixes {keyword}"
    for name in ("APPEALS_MAX_TEXT_LENGTH", "APPEALS_MAX_ATTACHMENTS",
                 "APPEALS_MAX_ATTACHMENT_BYTES"):
        assert name in registered["description"]


def _routed(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "appeal_id": "b" * 24, "regime": "fz59", "region": "22",
            "registered_at": "2026-11-25T03:00:00Z", "category": "roads", "urgent": False,
            "confidence": 0.9, "authority_id": "22-mintrans", "routing_level": "region",
            "rule_version": "v1", "routed_at": "2026-11-25T03:00:00Z", **fields}


@pytest.mark.parametrize("fields", [
    {"authority_id": "22-mintrans|22-minzdrav"}, {"authority_id": "22-Mintrans"},
    {"authority_id": ""}, {"municipality": "barnaul|biysk"}, {"municipality": "Барнаул"},
    {"parent_authority_id": "22|gov"},
])
def test_routed_ids_that_would_break_the_read_model_keys_are_refused(
        fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate("routed-appeal", _routed(**fields))
    assert info.value.reason == "invalid_value"


@pytest.mark.parametrize(("appeal_id", "reason"), [
    ("x" * 129, "too_long"), ("", "invalid_value"), ("a\nb", "invalid_value"),
    ("\x00triage-tick", "invalid_value"), ("a\x85", "invalid_value"), ("..", "invalid_value"),
])
def test_routed_appeal_ids_the_api_cannot_read_are_refused(appeal_id: str, reason: str) -> None:
    """The SLA agent stored any string as an appeal id; the API reads 1..128 characters
    without a control character from a URL path and a cursor, so the rest is dead-lettered."""
    with pytest.raises(InvalidEvent) as info:
        validate("routed-appeal", _routed(appeal_id=appeal_id))
    assert info.value.reason == reason
    with pytest.raises(InvalidEvent) as info:  # what the SLA agent reads a routed record with
        parse_event(orjson.dumps(_routed(appeal_id=appeal_id)), "routed-appeal")
    assert info.value.reason == reason
    validate("routed-appeal", _routed(appeal_id="ПОС-2026/000123 " + "я" * 112))


def test_every_id_of_the_shipped_rules_matches_the_routed_patterns() -> None:
    props = load_schema("routed-appeal")["properties"]
    authority = re.compile(props["authority_id"]["pattern"])
    municipality = re.compile(props["municipality"]["pattern"])
    assert props["parent_authority_id"]["pattern"] == props["authority_id"]["pattern"]
    rules = load_rules()
    assert rules.authorities
    for aid, body in rules.authorities.items():
        assert authority.search(aid), aid
        assert body.parent is None or authority.search(body.parent), body.parent
    for region in rules.regions.values():
        assert region.municipalities
        for mid in region.municipalities:
            assert municipality.search(mid), mid
    # the loader's own patterns, which every rules file passes, say the same
    assert rules_loader._AUTHORITY_ID.pattern.replace("?:", "") == authority.pattern
    assert rules_loader._SLUG.pattern.replace("?:", "") == municipality.pattern
    validate("routed-appeal", _routed(municipality="barnaul", parent_authority_id="22-gov"))
