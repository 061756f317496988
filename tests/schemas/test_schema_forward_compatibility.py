"""Readers of the pipeline's own records accept fields added by a newer release.

Every worker runs every agent from one image, so in a rolling deploy a new intake writes
records that an old SLA or notify agent reads. A field added within a schema version (optional,
additive: ``duplicate_of`` joined ``routed-appeal`` v1 in session 12) used to make a strict old
reader dead-letter every new record. Readers now ignore unknown fields of internal records,
still check every field they know, and stay strict on inputs from outside.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from schemas.records import LifecycleEvent, RegisteredAppeal, RoutedAppeal
from schemas.validation import INTERNAL_RECORDS, InvalidEvent, validate
from tests.schemas.test_schema_records import EXAMPLES
from workers.runtime import parse_event

NEWER = {"priority_score": 0.7, "x_release": "2027.1"}


def _example(record: type) -> dict[str, Any]:
    return dataclasses.asdict(EXAMPLES[record])


@pytest.mark.parametrize("record", [r for r in EXAMPLES if r.schema in INTERNAL_RECORDS],
                         ids=lambda r: r.__name__)
def test_an_internal_record_with_fields_from_a_newer_release_is_read(record: type) -> None:
    doc = _example(record) | NEWER
    with pytest.raises(InvalidEvent):  # the writer's contract is unchanged
        validate(record.schema, doc)
    parsed = parse_event(orjson.dumps(doc), record.schema)
    assert parsed == doc
    assert record.from_dict(parsed) == EXAMPLES[record]  # unknown fields are ignored


def test_a_nested_object_may_gain_fields_too() -> None:
    doc = _example(RegisteredAppeal)
    doc["source"] = doc["source"] | {"leader_epoch": 3}
    with pytest.raises(InvalidEvent):
        validate(RegisteredAppeal.schema, doc)
    assert RegisteredAppeal.from_dict(parse_event(orjson.dumps(doc), RegisteredAppeal.schema)
                                      ).source == EXAMPLES[RegisteredAppeal].source


def test_known_fields_are_still_checked() -> None:
    doc = _example(RoutedAppeal) | NEWER
    for broken in ({"appeal_id": 5}, {"urgent": "yes"}, {"registered_at": "yesterday"}):
        with pytest.raises(InvalidEvent):
            parse_event(orjson.dumps(doc | broken), RoutedAppeal.schema)
    missing = {k: v for k, v in doc.items() if k != "authority_id"}
    with pytest.raises(InvalidEvent):
        parse_event(orjson.dumps(missing), RoutedAppeal.schema)


def test_inputs_from_outside_stay_strict() -> None:
    event = _example(LifecycleEvent) | {"unknown_flag": True}
    with pytest.raises(InvalidEvent):
        parse_event(orjson.dumps(event), LifecycleEvent.schema)
    assert "lifecycle-event" not in INTERNAL_RECORDS
    assert "intake-appeal" not in INTERNAL_RECORDS


def test_the_sla_engine_tracks_a_routed_record_from_a_newer_release() -> None:
    """What the old SLA agent does with it: a state, timers, as for any routed appeal."""
    import datetime as dt

    from workers.sla.deadline_service import DeadlineService
    from workers.sla.engine import new_state

    doc = parse_event(orjson.dumps(_example(RoutedAppeal) | NEWER), RoutedAppeal.schema)
    ts = dt.datetime.fromisoformat(doc["registered_at"]).timestamp()
    state, effects = new_state(doc, 0, ts, "Asia/Barnaul", DeadlineService().rules())
    assert state["id"] == doc["appeal_id"] and effects.timers
