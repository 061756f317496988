"""The HTTP gateway names a fault of an intake appeal as the Kafka path does.

The gateway lists per-field errors from a Draft 2020-12 validator with a reason table of its
own and checked no version first: a ``schema_version`` 2 that renamed ``text`` was answered
``schema_version invalid_value`` and ``text missing_field`` (the intake agent dead-letters it
``unsupported_schema_version``), a ``submitted_at`` without seconds or a one-digit region
``invalid_format`` (the agent: ``invalid_value``). Both now check the version first with
``check_record_version`` and map each fault with ``schemas.validation.reason_for``, which
reads the codes a field's schema names (``x-reason-codes``: an empty text is ``empty_text``, as
a blank one is).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import workers.intake.adapters  # registers the channel adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.validation import InvalidEvent
from streams.settings import Settings
from workers.intake.core import intake_from_dict
from workers.intake.gateway import ApiError, Client, Gateway, GatewayConfig, field_errors

GOOD = {"schema_version": 1, "channel": "pos", "external_id": "p-1",
        "submitted_at": "2026-03-02T10:00:00+03:00", "region": "22", "text": "Яма на дороге"}
DROP = object()

#: One fault each: (changes, the field the gateway names).
CASES: list[tuple[dict[str, Any], str]] = [
    ({"schema_version": 2}, "schema_version"),
    ({"schema_version": 2, "text": DROP}, "schema_version"),
    ({"schema_version": 2, "text": DROP, "body": "Яма", "region": 22}, "schema_version"),
    ({"schema_version": "1"}, "schema_version"),
    ({"schema_version": True}, "schema_version"),
    ({"submitted_at": "2026-03-02T10:00+03:00"}, "submitted_at"),
    ({"submitted_at": "2026-03-02 10:00:00+03:00"}, "submitted_at"),
    ({"submitted_at": DROP}, "submitted_at"),
    ({"region": "2"}, "region"),
    ({"region": 22}, "region"),
    ({"text": 5}, "text"),
    ({"external_id": "x" * 201}, "external_id"),
    ({"importance": "urgent"}, "importance"),
    ({"author": {"name": "И", "nick": "x"}}, "author"),
    ({"author": {"phone": "1" * 201}}, "author.phone"),
    ({"attachments": [{"name": "a.jpg"}]}, "attachments.0.url"),
    ({"attachments": [{"url": "https://e.org/a", "size": -1}]}, "attachments.0.size"),
    ({"idempotency_key": ""}, "idempotency_key"),
]


def _doc(changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**GOOD, **changes}
    return {k: v for k, v in merged.items() if v is not DROP}


def _kafka_reason(doc: dict[str, Any]) -> str:
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(doc)
    return info.value.reason


@pytest.mark.parametrize(("changes", "field"), CASES,
                         ids=[f"{i}-{field}" for i, (_, field) in enumerate(CASES)])
def test_the_gateway_and_the_kafka_path_give_one_reason(changes: dict[str, Any],
                                                         field: str) -> None:
    doc = _doc(changes)
    errors = field_errors(doc, 3)
    assert [(e["field"], e["reason"]) for e in errors] == [(field, _kafka_reason(doc))]
    assert errors[0]["index"] == 3


def test_another_version_is_the_only_error_whatever_else_it_breaks() -> None:
    doc = _doc({"schema_version": 2, "text": DROP, "region": 22, "channel": "pos"})
    [error] = field_errors(doc, 0)
    assert (error["field"], error["reason"]) == ("schema_version", "unsupported_schema_version")
    assert "reads version 1" in error["message"]
    assert _kafka_reason(doc) == "unsupported_schema_version"


def test_several_faults_are_each_listed_with_the_kafka_path_s_code() -> None:
    """The gateway still lists every fault (the Kafka path stops at the first)."""
    doc = _doc({"region": "2", "submitted_at": "2026-03-02T10:00+03:00", "text": 5})
    got = {(e["field"], e["reason"]) for e in field_errors(doc, 0)}
    assert got == {("region", "invalid_value"), ("submitted_at", "invalid_value"),
                   ("text", "wrong_type")}
    for field, reason in got:
        assert _kafka_reason(_doc({field: doc[field]})) == reason


def test_a_valid_appeal_has_no_field_errors() -> None:
    assert field_errors(dict(GOOD), 0) == []
    intake_from_dict(dict(GOOD))


#: An empty value and one with nothing visible are one fault: (field, value, reason).
EMPTIES = [
    ("text", "", "empty_text"),
    ("text", "   ", "empty_text"),
    ("text", "\u200b", "empty_text"),
    ("external_id", "", "missing_field"),
    ("external_id", "  ", "missing_field"),
    ("external_id", "\u200b", "missing_field"),
]


@pytest.mark.parametrize(("field", "value", "reason"), EMPTIES)
def test_an_empty_value_gets_the_code_of_a_blank_one(field: str, value: str,
                                                     reason: str) -> None:
    """``text: ""`` was ``invalid_value`` (the schema's ``minLength``) while ``"  "`` or a
    zero-width space was ``empty_text``; ``external_id: ""`` ``invalid_value`` while ``"  "``
    was ``missing_field``. The schema names the code (``x-reason-codes``)."""
    doc = _doc({field: value})
    assert _kafka_reason(doc) == reason
    with pytest.raises(ApiError) as info:
        _gateway().prepare(doc, 2, CLIENT, None)
    assert [(e["index"], e["field"], e["reason"]) for e in info.value.errors] == [
        (2, field, reason)]


@pytest.mark.parametrize("url", ["", " ", "\u200b"])
def test_an_empty_attachment_url_is_not_a_url(url: str) -> None:
    doc = _doc({"attachments": [{"url": url}]})
    assert _kafka_reason(doc) == "attachment_not_url"
    with pytest.raises(ApiError) as info:
        _gateway().prepare(doc, 0, CLIENT, None)
    assert [e["reason"] for e in info.value.errors] == ["attachment_not_url"]


def test_an_empty_text_is_listed_beside_the_other_faults() -> None:
    doc = _doc({"text": "", "region": "2"})
    assert {(e["field"], e["reason"]) for e in field_errors(doc, 0)} == {
        ("text", "empty_text"), ("region", "invalid_value")}


CLIENT = Client(id="pos-platform", token="tok-pos-1")


def _gateway() -> Gateway:
    now = datetime(2026, 3, 3, tzinfo=UTC)
    return Gateway(Settings.load({}), GatewayConfig(clients=(CLIENT,)), producer=object(),
                   redis=object(), now=lambda: now)
