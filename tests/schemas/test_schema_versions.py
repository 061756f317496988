"""A record of another ``schema_version`` is dead-lettered as ``unsupported_schema_version``.

The version was only checked by the schema run, whose ``required`` check came first: a v2
record that renamed a required field (``at`` to ``occurred_at``) was dead-lettered as
``missing_field: data must contain ['at']``, and its producer looked for a field it had not
meant to send. The version is now checked before the schema, by both readers.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from schemas.records import ALL_RECORDS
from schemas.validation import InvalidEvent, validate, validate_incoming
from tests.schemas.test_schema_records import EXAMPLES
from workers.runtime import parse_event

V2_RENAMES: list[tuple[str, dict[str, Any], str, str]] = [
    ("lifecycle-event", {"schema_version": 1, "event_id": "e-1", "appeal_id": "a" * 24,
                         "event": "answered", "at": "2026-11-25T10:00:00+07:00"},
     "at", "occurred_at"),
    ("intake-appeal", {"schema_version": 1, "channel": "pos", "external_id": "p-1",
                       "submitted_at": "2026-11-25T10:00:00+07:00", "region": "22",
                       "text": "Яма на дороге"},
     "text", "body"),
]


@pytest.mark.parametrize(("name", "doc", "old", "new"), V2_RENAMES,
                         ids=[case[0] for case in V2_RENAMES])
@pytest.mark.parametrize("reader", [validate, validate_incoming])
def test_a_v2_that_renamed_a_required_field_is_an_unsupported_version(
        reader: Any, name: str, doc: dict[str, Any], old: str, new: str) -> None:
    v2 = copy.deepcopy(doc)
    v2["schema_version"] = 2
    v2[new] = v2.pop(old)
    with pytest.raises(InvalidEvent) as info:
        reader(name, v2)
    assert info.value.reason == "unsupported_schema_version"
    assert "schema_version is 2" in info.value.detail


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=lambda c: c.__name__)
def test_every_record_of_version_2_missing_a_field_is_an_unsupported_version(cls: type) -> None:
    doc = json.loads(EXAMPLES[cls].to_json())
    doc["schema_version"] = 2
    doc.pop(next(k for k in doc if k != "schema_version"))  # a required field, in every record
    with pytest.raises(InvalidEvent) as info:
        parse_event(orjson.dumps(doc), cls.schema)
    assert info.value.reason == "unsupported_schema_version"


@pytest.mark.parametrize("version", [True, "1", None, 0, 2.5, [1]])
def test_other_version_values_keep_the_const_verdict(version: Any) -> None:
    doc = copy.deepcopy(V2_RENAMES[0][1])
    doc["schema_version"] = version
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", doc)
    assert info.value.reason == "unsupported_schema_version"


def test_version_one_as_a_float_and_a_missing_version_are_as_before() -> None:
    doc = copy.deepcopy(V2_RENAMES[0][1])
    validate("lifecycle-event", dict(doc, schema_version=1.0))
    del doc["schema_version"]
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", doc)
    assert info.value.reason == "missing_field"
