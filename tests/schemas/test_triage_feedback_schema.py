"""``TriageFeedback`` v1 (``appeals.triage.feedback``): training data, and no more than that.

The record carries the appeal text (that is the training data) with the labels the appeal was
routed with; the strict schema refuses anything that names the author, contacts or address, a
record without a usable label, and a decision time without a UTC offset.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from schemas.records import CATEGORIES, TriageFeedback
from schemas.validation import InvalidEvent, load_schema, strict_schema, validate

TS = "2026-11-25T10:00:00+07:00"


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(TriageFeedback(appeal_id="a1", text="Нет воды третий день",
                                    category="housing_utilities", urgent=True,
                                    decided_at=TS).to_json())
    doc.update(changes)
    return doc


def test_minimal_record_is_valid_and_round_trips() -> None:
    doc = _doc()
    assert doc["schema_version"] == 1
    assert doc["classifier_category"] is None and doc["confidence"] is None
    validate("triage-feedback", doc)
    jsonschema.Draft202012Validator(strict_schema(load_schema("triage-feedback"))).validate(doc)
    assert TriageFeedback.from_dict(doc) == TriageFeedback.from_json(json.dumps(doc))


def test_categories_are_the_projects() -> None:
    schema = load_schema("triage-feedback")
    assert tuple(schema["properties"]["category"]["enum"]) == CATEGORIES
    assert tuple(schema["properties"]["classifier_category"]["enum"]) == (*CATEGORIES, None)


@pytest.mark.parametrize("field", ["author", "name", "phone", "email", "address", "attachments"])
def test_personal_fields_are_refused(field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate("triage-feedback", _doc(**{field: "Иванов, +79130000000"}))
    assert info.value.reason == "unknown_field"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"urgent": None}, "wrong_type"),       # "keep the classifier's" is resolved upstream
        ({"urgent": "true"}, "wrong_type"),
        ({"category": "potholes"}, "invalid_value"),
        ({"text": ""}, "invalid_value"),
        ({"decided_at": "2026-11-25T10:00:00"}, "invalid_value"),  # naive
        ({"confidence": 1.5}, "invalid_value"),
        ({"schema_version": 2}, "unsupported_schema_version"),
    ],
)
def test_unusable_records_are_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate("triage-feedback", _doc(**changes))
    assert info.value.reason == reason


@pytest.mark.parametrize("missing", ["appeal_id", "text", "category", "urgent", "decided_at"])
def test_required_fields(missing: str) -> None:
    doc = _doc()
    del doc[missing]
    with pytest.raises(InvalidEvent) as info:
        validate("triage-feedback", doc)
    assert info.value.reason == "missing_field"
