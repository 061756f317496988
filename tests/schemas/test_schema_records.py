"""Every record round-trips through JSON and validates against its JSON Schema file.

The JSON Schema files are the contract for producers outside Python; this test keeps the
Python records and those files from drifting apart, in both directions.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jsonschema
import pytest

from schemas.records import (
    ALL_RECORDS,
    Attachment,
    Author,
    DeadLetter,
    IntakeAppeal,
    LifecycleEvent,
    RegisteredAppeal,
    RoutedAppeal,
    SlaAlert,
    SlaTick,
    SourcePosition,
    TriageCandidate,
    TriageFeedback,
    TriageItem,
)
from schemas.validation import InvalidEvent, load_schema, strict_schema, validate

TS = "2026-11-25T10:00:00+07:00"

EXAMPLES: dict[type, Any] = {
    IntakeAppeal: IntakeAppeal(
        channel="pos", external_id="pos-1", submitted_at=TS, region="22",
        text="Во дворе не вывозят мусор", subject="Мусор", category_hint="ЖКХ",
        subcategory="waste", municipality="Барнаул", address="г. Барнаул, ул. Мира, 1",
        importance="high", author=Author(name="Тестов Иван", phone="+79130000000"),
        attachments=[Attachment(url="https://example.org/a.jpg", size=1000, mime="image/jpeg")],
        extra={"platform_id": 5},
    ),
    RegisteredAppeal: RegisteredAppeal(
        appeal_id="a" * 24, channel="email", external_id="m-1", regime="pos", region="22",
        registered_at=TS, submitted_at=TS, text="Нет воды", duplicate_of=None,
        source=SourcePosition("appeals.intake.email", 3, 42),
    ),
    RoutedAppeal: RoutedAppeal(
        appeal_id="b" * 24, regime="fz59", region="22", registered_at=TS, category="roads",
        urgent=True, confidence=0.93, authority_id="22-mintrans", routing_level="region_category",
        rule_version="v1", routed_at=TS, municipality="barnaul", complaint=False,
    ),
    TriageItem: TriageItem(
        appeal_id="c" * 24, region="22", registered_at=TS,
        candidates=[TriageCandidate("roads", 0.4), TriageCandidate("landscaping", 0.35)],
    ),
    TriageFeedback: TriageFeedback(
        appeal_id="f" * 24, text="Во дворе яма", category="roads", urgent=False,
        decided_at=TS, confidence=0.31, classifier_version="2.0+abc",
    ),
    LifecycleEvent: LifecycleEvent(
        event_id="e-1", appeal_id="d" * 24, event="extended", at=TS, extension_days=30,
        reason="экспертиза",
    ),
    SlaAlert: SlaAlert(
        alert_id="x:breach:0", appeal_id="x", level="breach", regime="pos", region="22",
        authority_id="22-minzhkh", notify_authority_id="22-minzhkh", due_at=TS, fired_at=TS,
        severity="critical", category="housing_utilities",
    ),
    SlaTick: SlaTick(appeal_id="x", kind="warning", due_ts=1.5e9, cycle=2),
    DeadLetter: DeadLetter(
        reason="not_json", stage="intake", topic="appeals.intake.pos", partition=1, offset=7,
        value_b64="e25vdA==", failed_at=TS, detail="unexpected character",
    ),
}


def test_every_record_has_an_example() -> None:
    assert set(EXAMPLES) == set(ALL_RECORDS)


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=lambda c: c.__name__)
def test_round_trip_and_validate(cls: type) -> None:
    record = EXAMPLES[cls]
    raw = record.to_json()
    doc = json.loads(raw)
    assert doc["schema_version"] == 1
    # The writer's view: a published file closed wherever it is open (nothing undocumented).
    jsonschema.Draft202012Validator(strict_schema(load_schema(cls.schema))).validate(doc)
    validate(cls.schema, doc)  # the hot-path validator agrees
    assert cls.from_json(raw) == record


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=lambda c: c.__name__)
def test_schema_names_every_field(cls: type) -> None:
    """A field added to a record but not to its schema would be refused by strict schemas."""
    props = set(load_schema(cls.schema)["properties"])
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields <= props, fields - props
    required = set(load_schema(cls.schema)["required"])
    assert required <= fields


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=lambda c: c.__name__)
def test_schema_files_are_valid_json_schema(cls: type) -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema(cls.schema))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("text"), "missing_field"),
        (lambda d: d.update(region=22), "wrong_type"),
        (lambda d: d.update(channel="fax"), "unknown_channel"),
        (lambda d: d.update(schema_version=2), "unsupported_schema_version"),
        (lambda d: d.update(submitted_at="вчера"), "invalid_value"),
    ],
)
def test_invalid_intake_has_reason(mutate: Any, reason: str) -> None:
    doc = json.loads(EXAMPLES[IntakeAppeal].to_json())
    mutate(doc)
    with pytest.raises(InvalidEvent) as info:
        validate("intake-appeal", doc)
    assert info.value.reason == reason
