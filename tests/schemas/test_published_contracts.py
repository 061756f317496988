"""Records published for consumers outside the project are open contracts.

An external consumer validates with its own copy of a schema file. ``routed-appeal.v1.json``
gained ``timezone``, ``duplicate_of`` and ``complaint_about`` and ``sla-alert.v1.json`` gained
``stage`` under the same ``$id`` while the files were closed (``additionalProperties: false``),
so a consumer holding the earlier copy refused every record of the newer release. The files of
published records are now open on every object (consumers ignore unknown fields; a removed,
retyped or newly required field makes a ``*.v2.json``), inputs written by outside producers
stay closed, and the pipeline's own checks still refuse a field we did not mean to emit.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import jsonschema
import pytest

from schemas.validation import (
    PUBLISHED_RECORDS,
    InvalidEvent,
    load_schema,
    strict_schema,
    validate,
)
from tests.schemas.test_schema_records import EXAMPLES

#: The output topics of README's table that consumers outside the project read.
CONSUMER_FACING = {
    "registered-appeal", "routed-appeal", "triage-item", "triage-feedback", "sla-alert",
    "dead-letter",
}
#: Contracts that producers outside the project write: a typo there must be refused.
INPUTS = ("intake-appeal", "lifecycle-event")


def _objects(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every sub-schema that lists ``properties`` (an object of the record), with its path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path or "/", node))
        for key, child in node.items():
            found += _objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += _objects(child, f"{path}/{i}")
    return found


def _older_copy(schema: dict[str, Any]) -> dict[str, Any]:
    """The file as a consumer may hold it from an earlier release: the same ``$id`` without
    the optional fields (at every level) that were added since."""
    old = copy.deepcopy(schema)
    for _, obj in _objects(old):
        required = set(obj.get("required", ()))
        obj["properties"] = {k: v for k, v in obj["properties"].items() if k in required}
    return old


def test_the_published_set_is_the_consumer_facing_topics() -> None:
    assert PUBLISHED_RECORDS == CONSUMER_FACING


@pytest.mark.parametrize("name", sorted(CONSUMER_FACING))
def test_a_published_file_is_open_on_every_object(name: str) -> None:
    schema = load_schema(name)
    assert schema["additionalProperties"] is True
    for path, obj in _objects(schema):
        assert obj.get("additionalProperties") is True, f"{name} {path} is closed"
    assert "ignore fields they do not know" in schema["description"]


@pytest.mark.parametrize("name", INPUTS)
def test_an_input_contract_stays_closed(name: str) -> None:
    schema = load_schema(name)
    closed = [p for p, obj in _objects(schema) if obj.get("additionalProperties") is False]
    assert closed
    if name == "lifecycle-event":
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize("record", [r for r in EXAMPLES if r.schema in CONSUMER_FACING],
                         ids=lambda r: r.__name__)
def test_a_consumer_with_an_older_copy_accepts_a_newer_record(record: type) -> None:
    """What the external consumer of the report did: validate today's record with the file of
    an earlier release (fewer optional fields, same ``$id``). It ignores the fields it lacks."""
    doc = dataclasses.asdict(EXAMPLES[record])
    old = _older_copy(load_schema(record.schema))
    assert set(doc) - set(old["properties"])  # the record has fields the old copy lacks
    assert [e.message for e in jsonschema.Draft202012Validator(old).iter_errors(doc)] == []


@pytest.mark.parametrize("record", [r for r in EXAMPLES if r.schema in CONSUMER_FACING],
                         ids=lambda r: r.__name__)
def test_our_own_checks_still_refuse_a_field_we_did_not_mean_to_emit(record: type) -> None:
    doc = dataclasses.asdict(EXAMPLES[record]) | {"apeal_id": "typo"}
    with pytest.raises(InvalidEvent) as info:
        validate(record.schema, doc)
    assert info.value.reason == "unknown_field"
    strict = jsonschema.Draft202012Validator(strict_schema(load_schema(record.schema)))
    assert not strict.is_valid(doc)
    assert jsonschema.Draft202012Validator(load_schema(record.schema)).is_valid(doc)


def test_a_typo_in_a_nested_object_we_emit_is_refused_too() -> None:
    from schemas.records import RegisteredAppeal

    doc = dataclasses.asdict(EXAMPLES[RegisteredAppeal])
    doc["source"] = doc["source"] | {"ofset": 1}
    with pytest.raises(InvalidEvent):
        validate(RegisteredAppeal.schema, doc)


def test_the_strict_variant_leaves_a_free_map_open() -> None:
    """``extra`` carries the source's own fields: closing it would refuse every record."""
    strict = strict_schema(load_schema("registered-appeal"))
    assert "additionalProperties" not in strict["properties"]["extra"]
    assert load_schema("registered-appeal")["additionalProperties"] is True  # not mutated
