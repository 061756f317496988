"""A registered appeal always names the intake record it came from.

``RegisteredAppeal.source`` defaulted to None and ``register`` took ``source=None``, which
wrote ``"source": null``: a record its own schema (``registered-appeal.v1.json``, ``source``
an object) refuses. ``source`` is now required in both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing

import jsonschema
import pytest

import workers.intake.adapters  # registers the channel adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.records import RegisteredAppeal, SourcePosition
from schemas.validation import InvalidEvent, load_schema, validate
from tests.schemas.test_schema_records import EXAMPLES
from workers.intake import core

NATIVE = {"schema_version": 1, "channel": "pos", "external_id": "p-1",
          "submitted_at": "2026-03-02T10:00:00+03:00", "region": "22", "text": "Яма на дороге"}


def test_a_registered_appeal_cannot_be_built_without_a_source() -> None:
    fields = {f.name: getattr(EXAMPLES[RegisteredAppeal], f.name)
              for f in dataclasses.fields(RegisteredAppeal) if f.name != "source"}
    with pytest.raises(TypeError, match="source"):
        RegisteredAppeal(**fields)


def test_neither_the_record_nor_register_admits_none() -> None:
    assert typing.get_type_hints(RegisteredAppeal)["source"] is SourcePosition
    assert typing.get_type_hints(core.register)["source"] is SourcePosition


def test_the_schema_refuses_a_null_source() -> None:
    doc = EXAMPLES[RegisteredAppeal].to_dict() | {"source": None}
    with pytest.raises(InvalidEvent):
        validate("registered-appeal", doc)


def test_what_register_writes_keeps_to_the_schema() -> None:
    appeal = core.intake_from_dict(dict(NATIVE))
    record = core.register(appeal, registered_at=dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC),
                           source=SourcePosition("appeals.intake.pos", 2, 17))
    doc = record.to_dict()
    assert doc["source"] == {"topic": "appeals.intake.pos", "partition": 2, "offset": 17}
    validate("registered-appeal", doc)
    assert jsonschema.Draft202012Validator(load_schema("registered-appeal")).is_valid(doc)
