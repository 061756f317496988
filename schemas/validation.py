"""Validation of incoming events against the versioned JSON Schema files.

The JSON Schema files are the contract, so the hot path validates against those very files
(compiled to Python by fastjsonschema, a few microseconds an event) rather than against a second,
hand-written copy of the rules that could drift from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

SCHEMA_PACKAGE = "schemas.json"

#: The years (of the UTC moment, both inclusive) a ``date-time`` field may name. RFC 3339 alone
#: accepts ``0001-01-01`` to ``9999-12-31``, and both ends did harm: an answer dated year 1
#: counted as on time, and a redirect or reopen dated 9999 started a period whose deadline
#: arithmetic overflowed (``OverflowError``), so the worker died on every replay. Nothing this
#: system handles can predate 2000 (59-FZ itself is from 2006; an epoch-zero or year-1 default
#: is a producer's bug). 2099 keeps every derived moment (a deadline, an extension, an
#: escalation: months after the event) far inside what ``datetime`` can represent, while a
#: later bound would only let a mistyped year (2206 for 2026) on a redirect, reopen or resume
#: start a period that hides the appeal's breach for centuries. The
#: deadline calendar's override file accepts 1900..2200 and intake's adapters 1990..2200, so
#: neither refuses a year allowed here. Scaled clocks stay inside it too: the tests start the SLA
#: clock at the present and run it at most a day a second for minutes (years of SLA time); the
#: demo's day a second passes 2099 only after about seven hours of running.
MIN_YEAR = 2000
MAX_YEAR = 2099
_EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
_END = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)

#: Reason code of a well-formed date-time outside :data:`MIN_YEAR`..:data:`MAX_YEAR` (the one
#: the notify stage already gives an alert whose moment has no UTC equivalent).
BAD_TIMESTAMP = "bad_timestamp"


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


#: Records the pipeline writes for itself. Their readers accept fields they do not know
#: (:func:`validate_incoming`), so a field added within a schema version (optional, additive,
#: as ``duplicate_of`` was to ``routed-appeal`` v1) can be rolled out while workers of the
#: previous release still read the topic: every worker runs every agent from one image, so
#: "upgrade the readers first" is not possible, and a strict old reader dead-lettered every
#: new record. Writers and tests still check the strict schema (:func:`validate`), so nothing
#: undocumented is written. Inputs from outside (``intake-appeal``, which keeps unknown fields
#: in ``extra``; authorities' ``lifecycle-event``) stay strict: there a field we do not know
#: is a producer's mistake that its dead letter should show.
INTERNAL_RECORDS = frozenset({
    "registered-appeal", "routed-appeal", "sla-alert", "sla-tick", "triage-item",
    "triage-feedback", "dead-letter",
})

#: Records published for consumers outside the project (the output topics of README's table).
#: Their files are published open (``"additionalProperties": true`` on every object), since a
#: consumer validating with an earlier copy of a file of the same ``$id`` refused every record
#: once an optional field was added within the version (``timezone``, ``duplicate_of`` on
#: ``routed-appeal``, ``stage`` on ``sla-alert``). Consumers ignore fields they do not know;
#: only a removed, retyped or newly required field makes a ``*.v2.json``. :func:`validate`
#: checks them closed (:func:`strict_schema`), so a misspelt field we emit is still caught.
PUBLISHED_RECORDS = frozenset({
    "registered-appeal", "routed-appeal", "triage-item", "triage-feedback", "sla-alert",
    "dead-letter",
})


def strict_schema(schema: Any) -> Any:
    """A copy of a published schema closed wherever the file is open (every
    ``"additionalProperties": true`` made ``false``): what this release writes, no more. Open
    objects without the keyword (``extra``, a free map) stay open."""
    if isinstance(schema, dict):
        return {k: (False if k == "additionalProperties" and v is True else strict_schema(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


#: The annotation under which a schema lists, per field, keywords the pipeline checks in code
#: (``intake-appeal``: limits that are settings, checks made after Unicode normalisation, each
#: with its own reason code). The published value is the default a producer should keep to.
CHECKED_IN_CODE = "x-checked-by-intake"


@cache
def runtime_schema(name: str, version: int = 1) -> dict[str, Any]:
    """The schema as the pipeline checks it: every keyword a field lists under
    :data:`CHECKED_IN_CODE` left out, since intake checks it itself with the configured limit
    (``APPEALS_MAX_ATTACHMENTS`` may allow more than the published 10) and its own reason
    code (``too_many_attachments``, not ``too_long``)."""
    return _without_checked_in_code(load_schema(name, version))


def _without_checked_in_code(node: Any) -> Any:
    if isinstance(node, dict):
        listed = node.get(CHECKED_IN_CODE)
        drop = set(listed) if isinstance(listed, dict) else set()
        return {k: _without_checked_in_code(v) for k, v in node.items() if k not in drop}
    if isinstance(node, list):
        return [_without_checked_in_code(v) for v in node]
    return node


@cache
def _compiled(name: str, version: int, tolerant: bool = False) -> Callable[[Any], Any]:
    schema = runtime_schema(name, version)
    if tolerant:
        schema = _without_closed_objects(schema)
    elif name in PUBLISHED_RECORDS:
        schema = strict_schema(schema)
    return fastjsonschema.compile(schema, formats={"date-time": is_datetime})


def _without_closed_objects(node: Any) -> Any:
    """A copy of a schema whose objects allow properties it does not list (every
    ``"additionalProperties": false`` dropped); every other constraint stays."""
    if isinstance(node, dict):
        return {k: _without_closed_objects(v) for k, v in node.items()
                if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_without_closed_objects(v) for v in node]
    return node


#: RFC 3339 section 5.6 ``date-time``, checked before anything is parsed: a full date, ``T``
#: (or ``t``), hours, minutes *and* seconds, an optional fraction, then ``Z`` (or ``z``) or
#: ``+HH:MM``/``-HH:MM``. ``datetime.fromisoformat`` alone is ISO 8601 and far wider: it took
#: a space for the ``T``, the basic format (``20261125T100000+0700``), week and ordinal dates,
#: an hour alone, a time without seconds, a comma fraction and an offset with seconds, so
#: records a non-Python reader of the same schema refuses passed (and a triaged ``at`` went
#: verbatim into a triage-feedback ``decided_at``). ASCII digits only (``\d`` is Unicode).
#: The offset's hours are 00-23 and its minutes 00-59 (``time-numoffset``): ``fromisoformat``
#: reads ``+03:60`` as +04:00 and ``+03:99`` as +04:39, another moment than any RFC 3339 reader
#: would take, and intake copied the spelling verbatim into the registered record.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:(\d{2})(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII)

#: A leap second (``23:59:60Z``) is refused (``invalid_value``, the message says why): RFC 3339
#: allows second 60, but Python's ``datetime`` cannot hold it and no deadline arithmetic could
#: count it. None has been inserted since 2016, and they are to be abolished by 2035; moving it
#: silently to ``:59`` would make the record say a moment its producer did not send.


def is_datetime(value: str) -> bool:
    """JSON Schema ``date-time`` is RFC 3339: a date, a time with seconds *and* a UTC offset
    (or ``Z``), here also within :data:`MIN_YEAR`..:data:`MAX_YEAR` and without a leap second.

    A naive timestamp such as ``2025-01-14T10:00:00`` is refused: every consumer would read it
    in its own host's time zone (the SLA engine calls ``.timestamp()`` on lifecycle ``at``), so
    the same event would mean different instants on different workers.
    """
    parsed = _aware(value)
    return parsed is not None and _EARLIEST <= parsed < _END


def parse_datetime(value: str) -> datetime:
    """A ``date-time`` value (already validated) as an aware datetime.

    RFC 3339 allows a lowercase ``t`` and ``z``; ``datetime.fromisoformat`` refuses the ``z``,
    so a reader of a validated field parses it here rather than with ``fromisoformat``.
    """
    return datetime.fromisoformat(value.upper())


def _aware(value: str) -> datetime | None:
    """``value`` as an aware datetime, or None if it is not an RFC 3339 date-time.

    Comparing aware datetimes never converts them, so a moment such as
    ``9999-12-31T23:00:00-05:00`` (year 10000 in UTC) is compared without overflowing.
    """
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value)
    if match is None or match.group(1) == "60":
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:  # month 13, 30 February, hour 24, offset +25:00 ...
        return None
    return parsed if parsed.utcoffset() is not None else None


def _leap_second(value: Any) -> bool:
    """``value`` would be a valid date-time but for its second ``60``."""
    if not isinstance(value, str):
        return False
    match = _RFC3339.fullmatch(value)
    if match is None or match.group(1) != "60":
        return False
    start, end = match.span(1)
    return _aware(value[:start] + "59" + value[end:]) is not None


def validate(name: str, obj: Any, version: int = 1) -> None:
    """Raise :class:`InvalidEvent` with a reason code naming the kind of fault (the strict
    schema: what a writer may write; a :data:`PUBLISHED_RECORDS` file closed by
    :func:`strict_schema`)."""
    check_record_version(obj, version)
    _check(_compiled(name, version, False), obj)  # the same cache key as validate_incoming's


def validate_incoming(name: str, obj: Any, version: int = 1) -> None:
    """:func:`validate` for a record read from a topic: an :data:`INTERNAL_RECORDS` record may
    carry fields this release does not know (they are ignored by ``Record.from_dict``)."""
    check_record_version(obj, version)
    _check(_compiled(name, version, name in INTERNAL_RECORDS), obj)


def check_record_version(obj: Any, version: int) -> None:
    """A record of another ``schema_version`` is ``unsupported_schema_version`` whatever else
    it breaks: checked before the schema run, since a version that renamed or removed a
    required field failed ``required`` first and was dead-lettered as ``missing_field`` (its
    producer then looked for a field it had not meant to send). The same test as the schemas'
    ``"const"``: ``1.0`` is version 1, ``true`` is not. A missing version is left to the
    schema (``missing_field``). The HTTP gateway calls it too, before its own schema run, so
    it answers what the intake agent would dead-letter."""
    if not isinstance(obj, dict) or "schema_version" not in obj:
        return
    check_version(obj["schema_version"], version, "data.")


def check_version(found: Any, version: int, what: str = "") -> None:
    """Raise ``unsupported_schema_version`` unless ``found`` is ``version`` as the schemas'
    ``"const"`` sees it (``1.0`` is 1, ``true`` is not); ``what`` prefixes the detail.
    Also for records without a schema file of their own (the triage agent's)."""
    if isinstance(found, bool) or found != version:
        raise InvalidEvent("unsupported_schema_version", (
            f"{what}schema_version is {repr(found)[:20]}: this release reads version {version}"))


def _check(check: Callable[[Any], Any], obj: Any) -> None:
    try:
        check(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        if _out_of_range(exc):
            # The value parsed as a date-time, so quoting it cannot leak personal data; the
            # dead letter then says which moment was refused, not only that one was.
            raise InvalidEvent(BAD_TIMESTAMP, (
                f"{exc.name} must be a date-time in the years {MIN_YEAR}..{MAX_YEAR} (UTC), "
                f"got {str(exc.value)[:40]!r}")) from None
        if (exc.rule == "format" and exc.rule_definition == "date-time"
                and _leap_second(exc.value)):
            raise InvalidEvent("invalid_value", (
                f"{exc.name} is a leap second (second 60), which this pipeline does not "
                f"accept: send second 59, got {str(exc.value)[:40]!r}")) from None
        raise InvalidEvent(_reason_code(exc), exc.message) from None


def _out_of_range(exc: fastjsonschema.JsonSchemaValueException) -> bool:
    """A well-formed, offset-carrying date-time refused only for its year: reason
    :data:`BAD_TIMESTAMP`. A malformed or naive one stays ``invalid_value``, as before."""
    return (exc.rule == "format" and exc.rule_definition == "date-time"
            and isinstance(exc.value, str) and _aware(exc.value) is not None)


def _reason_code(exc: fastjsonschema.JsonSchemaValueException) -> str:
    return reason_for(exc.rule, exc.path or [], exc.definition)


#: The annotation under which a field's schema names, per keyword, the reason code a refusal
#: by that keyword gets when the generic one would contradict the field's other checks:
#: ``intake-appeal``'s ``text`` of ``""`` was ``invalid_value`` (``minLength``) while one of
#: blanks or a zero-width space was ``empty_text``, and an ``external_id`` of ``""``
#: ``invalid_value`` while ``"  "`` was ``missing_field``.
REASON_CODES = "x-reason-codes"


def reason_for(rule: str | None, path: Sequence[Any], node: Any = None) -> str:
    """The reason code of a refusal by the schema keyword ``rule`` of the field at ``path``
    (its last element names the field; fastjsonschema's paths start with ``data``); ``node``
    is the field's schema, whose :data:`REASON_CODES` may name the code.

    The one mapping for every validator: the HTTP gateway lists its field errors from a
    Draft 2020-12 validator (it reports every fault, fastjsonschema stops at the first) and
    maps each here, so it names a fault as the intake agent's dead letter does. It had its own
    table (``invalid_format`` for a pattern or format, ``empty`` for ``minLength``), so one
    payload got one code from ``/v1/appeals`` and another on Kafka."""
    rule = rule or "invalid"
    named = node.get(REASON_CODES) if isinstance(node, dict) else None
    if isinstance(named, dict) and isinstance(named.get(rule), str):
        return str(named[rule])
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
