"""Event records on the wire, version 1.

The JSON Schema files in ``schemas/json/`` are the contract for producers outside Python; these
dataclasses are the same shapes for our own code. Records are plain slotted dataclasses because
orjson serialises them natively (no per-field Python work on the hot path) and Faust's Record
machinery costs several microseconds per event that the pipeline cannot afford.

Every record carries ``schema_version``: a consumer that meets a version it does not know sends
the event to the dead-letter topic instead of guessing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import orjson

SCHEMA_VERSION = 1


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A record class's field names, looked up once (``dataclasses.fields`` is slow per call)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


CHANNELS = ("fz59", "pos", "incident", "hotline", "email", "web")
REGIMES = ("fz59", "pos", "incident", "hotline")
CATEGORIES = (
    "housing_utilities",
    "roads",
    "transport",
    "landscaping",
    "healthcare",
    "education",
    "social",
    "ecology",
    "connectivity",
    "safety",
    "trade_services",
    "other",
)
LIFECYCLE_EVENTS = (
    "accepted",
    "answered",
    "extended",
    "redirected",
    "paused",
    "resumed",
    "closed",
    "reopened",
    "triaged",
)
ALERT_LEVELS = ("warning", "breach", "escalation")

R = TypeVar("R", bound="Record")

#: An appeal id in a hexadecimal form, in either case: ours (24 hex digits of a UUIDv5,
#: ``workers.intake.core.appeal_id_for``, always written in lower case), a whole UUID's 32 hex
#: digits, or the 8-4-4-4-12 UUID spelling. ASCII only (``re.ASCII``).
_HEX_APPEAL_ID = re.compile(
    r"[0-9a-fA-F]{24}|[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}",
    re.ASCII)


def canonical_appeal_id(appeal_id: str) -> str:
    """The spelling every per-appeal key, state and record uses for ``appeal_id``.

    Why: UUIDs and hex ids are case-insensitive (RFC 9562), and systems outside send them in
    upper case (SQL Server's ``uniqueidentifier``, .NET's ``Guid.ToString().ToUpper()``). Our
    ids are lower-case hex, so an authority's answer keyed by the upper-case spelling was kept
    under a key no routing ever names (held as pending for good) while the appeal itself
    breached. A hexadecimal id is therefore read in lower case; any other id is kept as it is
    (no appeal of ours has one, and guessing at it could join two distinct ids).
    """
    if _HEX_APPEAL_ID.fullmatch(appeal_id) is not None:
        return appeal_id.lower()
    return appeal_id



@dataclass(slots=True)
class Record:
    """Base: JSON round trip through orjson; nested records are rebuilt by ``_nested``."""

    schema: ClassVar[str] = ""
    _nested: ClassVar[dict[str, type[Record]]] = {}
    _nested_lists: ClassVar[dict[str, type[Record]]] = {}

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(orjson.dumps(self))

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """Build from an already validated dict; unknown keys are ignored, missing ones default."""
        kwargs: dict[str, Any] = {}
        for name in _field_names(cls):
            if name not in data:
                continue
            value = data[name]
            if value is not None and name in cls._nested:
                value = cls._nested[name].from_dict(value)
            elif value is not None and name in cls._nested_lists:
                value = [cls._nested_lists[name].from_dict(v) for v in value]
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[R], raw: bytes | str) -> R:
        return cls.from_dict(orjson.loads(raw))


@dataclass(slots=True)
class Author(Record):
    """Personal data: never logged, never a metric label, never in an alert."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    handle: str | None = None


@dataclass(slots=True)
class Attachment(Record):
    """Metadata only: binary content stays out of Kafka, referenced by URL."""

    url: str = ""
    name: str | None = None
    size: int | None = None
    mime: str | None = None


@dataclass(slots=True)
class SourcePosition(Record):
    """Where intake read the appeal: lets a replay recognise its own earlier registration."""

    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass(slots=True)
class IntakeAppeal(Record):
    schema: ClassVar[str] = "intake-appeal"
    _nested: ClassVar[dict[str, type[Record]]] = {"author": Author}
    _nested_lists: ClassVar[dict[str, type[Record]]] = {"attachments": Attachment}

    channel: str
    external_id: str
    submitted_at: str
    region: str
    text: str
    schema_version: int = SCHEMA_VERSION
    idempotency_key: str | None = None
    subject: str | None = None
    category_hint: str | None = None
    subcategory: str | None = None
    municipality: str | None = None
    address: str | None = None
    importance: str | None = None
    complaint_about: str | None = None
    author: Author | None = None
    attachments: list[Attachment] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RegisteredAppeal(Record):
    schema: ClassVar[str] = "registered-appeal"
    _nested: ClassVar[dict[str, type[Record]]] = {"author": Author, "source": SourcePosition}
    _nested_lists: ClassVar[dict[str, type[Record]]] = {"attachments": Attachment}

    appeal_id: str
    channel: str
    external_id: str
    regime: str
    region: str
    registered_at: str
    submitted_at: str
    text: str
    #: The intake record it was registered from. Required: ``registered-appeal.v1.json``
    #: refuses a null ``source``, and ``None`` here wrote exactly that.
    source: SourcePosition
    schema_version: int = SCHEMA_VERSION
    idempotency_key: str | None = None
    subject: str | None = None
    category_hint: str | None = None
    subcategory: str | None = None
    municipality: str | None = None
    address: str | None = None
    importance: str | None = None
    complaint_about: str | None = None
    author: Author | None = None
    attachments: list[Attachment] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    duplicate_of: str | None = None


@dataclass(slots=True)
class RoutedAppeal(Record):
    schema: ClassVar[str] = "routed-appeal"

    appeal_id: str
    regime: str
    region: str
    registered_at: str
    category: str
    urgent: bool
    confidence: float
    authority_id: str
    routing_level: str
    rule_version: str
    routed_at: str
    schema_version: int = SCHEMA_VERSION
    channel: str | None = None
    subcategory: str | None = None
    classifier_version: str | None = None
    parent_authority_id: str | None = None
    municipality: str | None = None
    complaint: bool = False
    complaint_about: str | None = None
    timezone: str | None = None
    duplicate_of: str | None = None
    """The intake's near-duplicate flag: the earlier appeal this one repeats (within 24 h)."""
    received_at: str | None = None
    """The appeal's receipt (its ``submitted_at``), only where it is not ``registered_at``: a
    59-FZ letter intake reads late is registered up to days after it, and a body may stamp
    its events from the receipt (the SLA agent's past tolerance counts from the earlier)."""


@dataclass(slots=True)
class TriageCandidate(Record):
    category: str = "other"
    score: float = 0.0


@dataclass(slots=True)
class TriageItem(Record):
    schema: ClassVar[str] = "triage-item"
    _nested_lists: ClassVar[dict[str, type[Record]]] = {"candidates": TriageCandidate}

    appeal_id: str
    region: str
    registered_at: str
    candidates: list[TriageCandidate]
    schema_version: int = SCHEMA_VERSION
    regime: str | None = None
    urgent: bool = False
    classifier_version: str | None = None


@dataclass(slots=True)
class TriageFeedback(Record):
    """A human triage decision as training data, on ``appeals.triage.feedback`` keyed by
    ``appeal_id``: the appeal's text with the labels it was routed with (``urgent`` is the
    decision's flag, or the classifier's when the decision left it null). The text is the
    training data; the author, contacts and address are never carried."""

    schema: ClassVar[str] = "triage-feedback"

    appeal_id: str
    text: str
    category: str
    urgent: bool
    decided_at: str
    schema_version: int = SCHEMA_VERSION
    classifier_category: str | None = None
    confidence: float | None = None
    classifier_version: str | None = None


@dataclass(slots=True)
class LifecycleEvent(Record):
    schema: ClassVar[str] = "lifecycle-event"

    event_id: str
    appeal_id: str
    event: str
    at: str
    schema_version: int = SCHEMA_VERSION
    authority_id: str | None = None
    to_authority_id: str | None = None
    extension_days: int | None = None
    category: str | None = None
    urgent: bool | None = None
    reason: str | None = None


@dataclass(slots=True)
class SlaAlert(Record):
    schema: ClassVar[str] = "sla-alert"

    alert_id: str
    appeal_id: str
    level: str
    regime: str
    region: str
    authority_id: str
    notify_authority_id: str
    due_at: str
    fired_at: str
    severity: str
    schema_version: int = SCHEMA_VERSION
    category: str | None = None
    urgent: bool = False
    stage: str | None = None  # a tracked stage deadline; None: the answer deadline
    #: Set: an end record, the alert ``alert_id`` is over (``workers.sla.resolution``).
    resolved_at: str | None = None


@dataclass(slots=True)
class SlaTick(Record):
    schema: ClassVar[str] = "sla-tick"

    appeal_id: str
    kind: str
    due_ts: float
    cycle: int
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class DeadLetter(Record):
    schema: ClassVar[str] = "dead-letter"

    reason: str
    stage: str
    topic: str
    partition: int
    offset: int
    value_b64: str
    failed_at: str
    schema_version: int = SCHEMA_VERSION
    detail: str | None = None
    key_b64: str | None = None


ALL_RECORDS: tuple[type[Record], ...] = (
    IntakeAppeal,
    RegisteredAppeal,
    RoutedAppeal,
    TriageItem,
    TriageFeedback,
    LifecycleEvent,
    SlaAlert,
    SlaTick,
    DeadLetter,
)
