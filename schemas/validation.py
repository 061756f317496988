"""Validation of incoming events against the versioned JSON Schema files.

The JSON Schema files are the contract, so the hot path validates against those very files
(compiled to Python by fastjsonschema, a few microseconds an event) rather than against a second,
hand-written copy of the rules that could drift from them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

SCHEMA_PACKAGE = "schemas.json"


class InvalidEvent(ValueError):
    """The event breaks its schema; ``reason`` is a short code fit for a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def schema_path(name: str, version: int = 1) -> str:
    return str(resources.files(SCHEMA_PACKAGE).joinpath(f"{name}.v{version}.json"))


@cache
def load_schema(name: str, version: int = 1) -> dict[str, Any]:
    with open(schema_path(name, version), encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _compiled(name: str, version: int) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(name, version), formats={"date-time": _is_datetime})


def _is_datetime(value: str) -> bool:
    """JSON Schema ``date-time`` is RFC 3339: a date, a time *and* a UTC offset (or ``Z``).

    A naive timestamp such as ``2025-01-14T10:00:00`` is refused: every consumer would read it
    in its own host's time zone (the SLA engine calls ``.timestamp()`` on lifecycle ``at``), so
    the same event would mean different instants on different workers.
    """
    from datetime import datetime

    if not value.isascii():
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.utcoffset() is not None


def validate(name: str, obj: Any, version: int = 1) -> None:
    """Raise :class:`InvalidEvent` with a reason code naming the kind of fault."""
    try:
        _compiled(name, version)(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise InvalidEvent(_reason_code(exc), exc.message) from None


def _reason_code(exc: fastjsonschema.JsonSchemaValueException) -> str:
    rule = exc.rule or "invalid"
    path = exc.path or []
    if rule == "required":
        return "missing_field"
    if rule == "type":
        return "wrong_type"
    if rule in ("enum", "const") and path and path[-1] == "channel":
        return "unknown_channel"
    if rule == "const" and path and path[-1] == "schema_version":
        return "unsupported_schema_version"
    if rule in ("additionalProperties",):
        return "unknown_field"
    if rule in ("maxLength", "maxItems"):
        return "too_long"
    return "invalid_value"
