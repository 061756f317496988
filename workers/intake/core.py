"""Intake decisions as pure functions: decode, validate, normalise, name and register an appeal.

Kept apart from the Faust agent so the gateway, the producer SDK, the benchmark and the tests use
the very same rules, and so a batch can be processed without any stream machinery.

Appeal ids are derived, not drawn: the same (channel, external id) always yields the same id. A
retry, a resend or a replay after a crash therefore names the same appeal, and every downstream
state keyed by ``appeal_id`` absorbs the repeat instead of counting it twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from schemas.records import (
    CHANNELS,
    IntakeAppeal,
    RegisteredAppeal,
    SourcePosition,
)
from schemas.validation import InvalidEvent, parse_datetime, validate
from workers.geo.regions import UnknownRegion, normalize_code, region_timezone_or_moscow

if TYPE_CHECKING:  # imported where a registration is computed: the gateway and the producer
    # decode with this module and need no deadline rules (nor the holidays package)
    from workers.deadlines.calendar import BusinessCalendar
    from workers.deadlines.policies import PolicyBook

_APPEAL_NS = uuid.UUID("6f1d8a52-3c1e-4f7e-9a57-0b7a3c2d9e11")
_KNOWN_FIELDS = frozenset(IntakeAppeal.__dataclass_fields__)

# Channel adapters turn a source system's native payload into the canonical intake shape.
# They register themselves here (see workers.intake.adapters); a payload without
# ``schema_version`` is taken to be native and goes through its channel's adapter.
Adapter = Callable[[dict[str, Any]], dict[str, Any]]
ADAPTERS: dict[str, Adapter] = {}
#: Per channel, the native fields that carry the source's own id (``register_adapter``).
NATIVE_ID_FIELDS: dict[str, tuple[str, ...]] = {}
#: Canonical fields that, all present in a payload without ``schema_version`` and with none of
#: its channel's native id fields, mark a canonical record that forgot its version.
_CANONICAL_KEYS = ("external_id", "submitted_at", "region", "text")
# Normalisation (Unicode, whitespace, phones) is plugged in by workers.intake.normalize.
Normaliser = Callable[[dict[str, Any]], dict[str, Any]]
_normalisers: list[Normaliser] = []

#: How many times ``max_text_length`` a text may be *before* normalisation: normalising is
#: not free (NFC, the substitutions), so a text that cannot pass the limit afterwards is
#: refused first. Normalisation mostly shrinks a text (CR LF, invisible characters, runs of
#: spaces), so twice the limit refuses nothing that would pass it.
RAW_TEXT_FACTOR = 2

# How deeply a payload may nest objects and arrays (the payload object itself is level 1).
# orjson *reads* JSON nested up to 1024 levels but *writes* only about 254, and unknown fields
# are carried on unchecked in ``extra`` (one level deeper again in the registered record). An
# appeal that is accepted here but cannot be written later would fail its whole batch in the
# agent, and the replayed batch would fail again: intake would stop. Real intake payloads nest
# 3-4 levels; 32 leaves room for any plausible ``extra`` and stays far below orjson's limit.
MAX_NESTING = 32


def register_adapter(channel: str, adapter: Adapter, id_fields: tuple[str, ...] = ()) -> None:
    ADAPTERS[channel] = adapter
    NATIVE_ID_FIELDS[channel] = tuple(id_fields)


def adapt_native(data: dict[str, Any], channel: str) -> dict[str, Any]:
    """``data`` through its channel's adapter (which must be registered).

    A canonical record that only forgot ``schema_version`` is taken for a native payload and
    fails in the adapter, which then named a field the record has (``submitted_at is
    missing``: the pos adapter reads ``created``). When the adapter refuses a payload that has
    the canonical fields and none of the channel's native id fields, the fault reported is
    the missing version (``missing_field``). A payload the adapter accepts is accepted, as
    before.
    """
    try:
        return ADAPTERS[channel](data)
    except Exception:
        if _forgot_version(data, channel):
            raise InvalidEvent(
                "missing_field",
                "schema_version is missing (the payload has the canonical fields and none of "
                f"the {channel} channel's own id fields, so it is not a native payload)",
            ) from None
        raise


def _forgot_version(data: dict[str, Any], channel: str) -> bool:
    return (all(data.get(key) is not None for key in _CANONICAL_KEYS)
            and not any(data.get(key) is not None for key in NATIVE_ID_FIELDS.get(channel, ())))


def register_normaliser(fn: Normaliser) -> None:
    if fn not in _normalisers:
        _normalisers.append(fn)


def appeal_id_for(channel: str, external_id: str) -> str:
    """Stable id: 24 hex characters of a UUIDv5 over channel and external id."""
    return uuid.uuid5(_APPEAL_NS, f"{channel}\x1f{external_id}").hex[:24]


#: ``extra["source"]`` of a request the gateway's Open311 route (``workers.intake.open311``)
#: published: reserved, the gateway refuses it on ``/v1/appeals``.
OPEN311_SOURCE = "open311"


def from_open311(channel: str, extra: dict[str, Any] | None) -> bool:
    """Whether an intake record is a civic app's Open311 request (a ``web`` record so marked).

    The Open311 route publishes on the ``web`` channel (its topic, its appeal ids); the marker
    in ``extra`` is what tells such a request from the authority's own site form.
    """
    return channel == "web" and isinstance(extra, dict) and extra.get("source") == OPEN311_SOURCE


def regime_for(
    channel: str,
    email_regime: str = "pos",
    web_regime: str = "fz59",
    *,
    open311: bool = False,
    open311_regime: str = "pos",
) -> str:
    """Which legal regime (and so SLA policy) an appeal from this channel falls under.

    E-mail stopped being a valid channel for a 59-FZ appeal on 30 March 2025, so by default it
    registers a platform-like item; the authority's site form is a 59-FZ electronic appeal. A
    civic app's Open311 request (``open311``, see :func:`from_open311`) comes in on the web
    channel but is not the authority's form, and the app does not in general log its users in
    through ESIA, which a 59-FZ electronic appeal needs since 30 March 2025: it registers as
    ``open311_regime`` (by default ``pos``; ``fz59`` for an app that does authenticate).
    """
    if channel == "email":
        return email_regime
    if channel == "web":
        return open311_regime if open311 else web_regime
    return channel


def decode_intake(
    raw: bytes | None,
    *,
    channel_hint: str | None = None,
    max_text_length: int = 20_000,
    max_message_bytes: int = 1_000_000,
) -> IntakeAppeal:
    """Bytes from an intake topic to a valid, normalised :class:`IntakeAppeal`.

    Raises :class:`InvalidEvent` whose ``reason`` is a short code (a bounded metric label).
    ``channel_hint`` is the channel of the topic the bytes came from: a native payload carries
    no channel of its own, and a canonical one must agree with its topic.

    ``max_message_bytes`` bounds the bytes as sent (before they are read at all) and the record
    as intake writes it again (``oversize_message`` either way). Re-encoding can grow a record
    several times over: orjson writes ``1e15`` as ``1000000000000000.0``, and unknown fields
    are carried on in ``extra``. A record of 1 MB as sent became a registered appeal of 3.8 MB
    that the worker's producer (or the broker) refused: the worker exited on every restart and
    the partition stood still, the record never dead-lettered. The gateway and the producer
    SDK measure the record re-encoded too, so all three reach the same verdict.
    """
    if raw is None or len(raw) == 0:
        raise InvalidEvent("empty", "message has no value")
    if len(raw) > max_message_bytes:
        raise InvalidEvent("oversize_message", f"{len(raw)} bytes > {max_message_bytes}")
    data = loads_json(raw)
    if not isinstance(data, dict):
        raise InvalidEvent("not_object", f"JSON {type(data).__name__}, expected an object")
    appeal = intake_from_dict(
        data, channel_hint=channel_hint, max_text_length=max_text_length
    )
    try:
        size = len(appeal.to_json())
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise InvalidEvent("unserialisable", f"{type(exc).__name__}: {exc}"[:200]) from None
    if size > max_message_bytes:
        raise InvalidEvent("oversize_message", f"{size} bytes as intake writes it "
                           f"({len(raw)} as sent) > {max_message_bytes}")
    return appeal


def loads_json(raw: bytes | str) -> Any:
    """Parse JSON; ``InvalidEvent("too_deep")`` or ``("not_json")`` when it cannot be read.

    orjson refuses documents nested deeper than 1024 levels with a decode error. Such a
    document may be valid JSON, and it is nested far deeper than :data:`MAX_NESTING`, so it
    gets the reason a shallower deep payload gets (``too_deep``), not ``not_json``.

    A leading UTF-8 byte-order mark is skipped (RFC 8259 8.1 lets a parser ignore it):
    Windows tools write one, and such a body was refused as ``not_json``.
    """
    if isinstance(raw, bytes):
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    else:
        raw = raw.removeprefix("\ufeff")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if message.startswith("depth limit exceeded") or "recursion limit" in message.lower():
            raise InvalidEvent(
                "too_deep", f"objects and arrays nested deeper than {MAX_NESTING} levels"
            ) from None
        raise InvalidEvent("not_json", message[:200]) from None


def intake_from_dict(
    data: dict[str, Any], *, channel_hint: str | None = None, max_text_length: int = 20_000
) -> IntakeAppeal:
    """Validate and normalise an already decoded payload (shared with the HTTP gateway).

    The schema is checked twice: on the payload as sent, so that each fault gets its own reason
    code, and again after normalisation, because Unicode NFC can lengthen a string (U+0958 is
    two code points in NFC) past a limit. The text's length is checked before normalisation
    too (:data:`RAW_TEXT_FACTOR` times the limit), so a text far too long is refused before
    the work of normalising it. Only what satisfies the contract *as published* is
    accepted, so the gateway, the SDK and the intake agent (which re-decodes the published,
    normalised record) always reach the same verdict. The age limit needs a clock and is
    :func:`check_age`, which the three apply after this.
    """
    check_nesting(data)
    if "schema_version" not in data:
        channel = data.get("channel") or channel_hint
        if not isinstance(channel, str) or channel not in ADAPTERS:
            if channel is not None and channel not in CHANNELS:
                raise InvalidEvent("unknown_channel", f"channel {channel!r} is not known")
            raise InvalidEvent("missing_field", "schema_version is missing")
        try:
            data = adapt_native(data, channel)
        except InvalidEvent:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent("adapter_failed", f"{channel} payload: {exc}"[:300]) from None
    data = _unknown_into_extra(data)
    validate("intake-appeal", data)
    if channel_hint is not None and data["channel"] != channel_hint:
        raise InvalidEvent(
            "channel_mismatch", f"channel {data['channel']!r} on the {channel_hint!r} topic"
        )
    _check_region(data["region"])
    raw_text = data.get("text")
    if isinstance(raw_text, str) and len(raw_text) > RAW_TEXT_FACTOR * max_text_length:
        raise InvalidEvent("oversize_text", f"{len(raw_text)} characters before normalisation "
                           f"> {RAW_TEXT_FACTOR} x {max_text_length}")
    for normalise in _normalisers:
        data = normalise(data)
    text = data.get("text") or ""
    if not text.strip():
        raise InvalidEvent("empty_text", "text is empty after normalisation")
    if len(text) > max_text_length:
        raise InvalidEvent("oversize_text", f"{len(text)} characters > {max_text_length}")
    if _normalisers:
        try:
            validate("intake-appeal", data)
        except InvalidEvent as exc:
            raise InvalidEvent(exc.reason, f"{exc.detail} (after Unicode normalisation)") from None
    return IntakeAppeal.from_dict(data)


def check_nesting(data: Any, limit: int = MAX_NESTING) -> None:
    """Raise ``InvalidEvent("too_deep")`` when objects/arrays nest deeper than ``limit``.

    Iterative, so a hostile payload cannot exhaust the Python stack either.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidEvent("too_deep", f"objects and arrays nested deeper than {limit} levels")
        if not isinstance(node, dict | list | tuple):
            continue  # a scalar document: Open311 answered a body of `5` with a 500
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))


def _unknown_into_extra(data: dict[str, Any]) -> dict[str, Any]:
    """Move unknown top-level fields into ``extra`` without losing anything.

    ``extra`` must be an object whether or not unknown fields come along (else ``wrong_type``,
    as the schema says). A field sent both at the top level and inside ``extra`` is ambiguous:
    rather than let one silently overwrite the other, the payload is rejected with
    ``extra_conflict`` (dead-lettered with the field names, or a 400 at the gateway).
    """
    unknown = data.keys() - _KNOWN_FIELDS
    if not unknown:
        return data
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise InvalidEvent("wrong_type", "data.extra must be object")
    clash = sorted(unknown & extra.keys())
    if clash:
        names = ", ".join(name[:50] for name in clash[:5])
        raise InvalidEvent(
            "extra_conflict", f"field(s) sent both at the top level and in extra: {names}"
        )
    merged = dict(extra)
    for key in unknown:
        merged[key] = data[key]
    out = {k: v for k, v in data.items() if k not in unknown}
    out["extra"] = merged
    return out


def _check_region(region: str) -> None:
    """A canonical region must be a code of the region catalogue, spelt canonically.

    The schema pattern only says "two digits", and Python's ``\\d`` also matches non-ASCII
    digits; adapters map native codes through the catalogue, so the canonical path does too.
    """
    try:
        known = normalize_code(region)
    except UnknownRegion:
        known = None
    if known != region:
        raise InvalidEvent("unknown_region", "region code is not a federal subject")


#: 59-FZ art. 8 p. 2: a written appeal is registered within three days of its receipt.
FZ59_REGISTRATION_DAYS = 3
#: The local hour, in the region's zone, that stands for a registration known by its date only
#: (a register's ``reg_date``). The SLA engine counts days in the routed authority's zone or
#: the policy's ``timezone``, not always the region's: midnight in Barnaul (+07) is 20:00 of
#: the day before in Moscow, which moved a letter registered on 3 March to 2 March and its
#: answer a day early. Russia's zones span UTC+2 (Kaliningrad) to UTC+12 (Kamchatka), so noon
#: in any of them is between 02:00 and 22:00 of the same date in every other: the register's
#: date stays the date wherever the days are counted.
REGISTER_DAY_HOUR = time(12)
#: APPEALS_INTAKE_MAX_AGE's default: how long before intake reads it an appeal may have been
#: submitted (received) and still be registered, seconds (a year).
DEFAULT_MAX_AGE = 365 * 86400.0


def check_age(receipt: datetime, read_at: datetime, max_age: float = DEFAULT_MAX_AGE) -> None:
    """Refuse (:class:`InvalidEvent` ``invalid_value``) an appeal received (``submitted_at``)
    more than ``max_age`` seconds (``APPEALS_INTAKE_MAX_AGE``) before ``read_at``.

    The agent's rule (:func:`registration_time`), which the gateway and the producer SDK apply
    too, at the moment they accept the appeal on the SLA clock: they answered "accepted" for an
    appeal the agent then dead-lettered. ``intake_from_dict`` cannot check it, having no clock,
    and the agent's verdict is at its own reading, so an appeal accepted within a few seconds
    of the limit may still age past it before the agent reads it.
    """
    age = (read_at - receipt).total_seconds()
    if age > max_age:
        raise InvalidEvent(
            "invalid_value",
            f"submitted_at lies {age / 86400:.0f} days in the past, more than "
            f"APPEALS_INTAKE_MAX_AGE ({max_age:g} s) allows: is its year mistyped?")


def registration_time(
    intake: IntakeAppeal,
    read_at: datetime,
    *,
    regime: str,
    max_age: float = DEFAULT_MAX_AGE,
    book: PolicyBook | None = None,
) -> datetime:
    """The legal registration moment of ``intake``, which intake reads at ``read_at`` (the
    agent's ``read_moment``: the intake record's Kafka timestamp on the SLA clock, the same on
    every replay of the record).

    Why: every deadline counts from ``registered_at`` (the SLA engine's period start), and it
    was the moment intake read the record. After a backlog or an outage a 59-FZ letter the
    office received and registered on 2 March and intake read on 12 March was due on
    10 April, where 59-FZ (art. 8 p. 2, art. 12 p. 1) gives 1 April, 3 April at the latest.

    - ``fz59``: the body's own registration date when the source names it (the fz59
      channel's ``extra.reg_date``, a date: :data:`REGISTER_DAY_HOUR`, noon, of that day in
      the region's zone, so that it is that date in whichever Russian zone the deadlines are
      counted; never before receipt), else the latest the project's reading of the law
      allows (:func:`fz59_latest_registration`: the last day of the policy's ``registration``
      stage, three days from receipt with the day-off shift, as ``appeals sla due`` reports
      it);
    - ``pos``, ``incident``, ``hotline``: the platform's and the hotline's clocks start at
      submission, publication or the call: ``submitted_at``.

    Never later than ``read_at``: a ``submitted_at`` (or registration date) in the future is
    someone's clock, and intake registers what it reads. A ``submitted_at`` more than
    ``max_age`` seconds (``APPEALS_INTAKE_MAX_AGE``) before ``read_at`` is refused with
    :class:`InvalidEvent` ``invalid_value``: it is far more likely a mistyped year than a
    letter that waited that long, and it would make the appeal years overdue at once. Within
    it, an old letter is overdue at once, which is the truth.

    ``book``: the SLA policies (the agent's, those of the routing rules in use); None: the
    policy file's alone (``$APPEALS_POLICY_FILE``, else the packaged one), as
    ``deadline_service.policy_book`` keeps it.
    """
    receipt = parse_datetime(intake.submitted_at)
    check_age(receipt, read_at, max_age)
    if regime != "fz59":
        return min(read_at, receipt)
    registered_on = _reg_date(intake) if intake.channel == "fz59" else None
    if registered_on is not None:
        start = datetime.combine(registered_on, REGISTER_DAY_HOUR, _region_zone(intake.region))
        legal = max(receipt, start)
    else:
        legal = fz59_latest_registration(receipt, intake.region, book)
    return min(read_at, legal)


def fz59_latest_registration(
    receipt: datetime,
    region: str,
    book: PolicyBook | None = None,
    calendar: BusinessCalendar | None = None,
) -> datetime:
    """The latest registration of a 59-FZ appeal received at ``receipt`` that the project's
    ``registration`` stage calls on time: noon (:data:`REGISTER_DAY_HOUR`) of that stage's
    last day, never before receipt.

    Why: it was receipt plus three calendar days, days off ignored, while the stage
    (``registration_due``, what ``appeals sla due`` reports) applies the policy's day-off
    shift and never ends on its start day. A letter received on 30 December 2026 was
    registered on 2 January 2027, a public holiday no office registers on, and answered by
    1 February; the stage's last day is 11 January (the working day before 2 January is
    30 December, the day of receipt, so the stage falls forward to the next working day, as
    Civil Code art. 193 has it), and the answer 10 February. With the
    ``fz59`` default shift ``previous``, three days ending on a Saturday end on the Friday
    before: a Saturday registration was one the project's own deadline calls late.

    The policy is the ``fz59`` one of the region (the authority is not routed yet), counted
    in its ``timezone`` or the region's zone on the region's calendar. A day-counted stage
    ends on a date, which noon stands for as it does for a register's date; a working-hour
    one (a policy file's choice) at its exact moment. A policy without the stage: the three
    calendar days of art. 8 p. 2.
    """
    from workers.deadlines.compute import default_calendar, registration_due
    from workers.deadlines.policies import HOUR_COUNTINGS
    from workers.sla.deadline_service import policy_book

    policy = (book or policy_book()).resolve("fz59", region=region)
    zone = ZoneInfo(policy.timezone) if policy.timezone else _region_zone(region)
    stage = policy.stages.get("registration")
    if stage is None:
        last = receipt.astimezone(zone).date() + timedelta(days=FZ59_REGISTRATION_DAYS)
        return max(receipt, datetime.combine(last, REGISTER_DAY_HOUR, zone))
    cal = (calendar or default_calendar()).for_region(region)
    if stage.counting in HOUR_COUNTINGS:
        return max(receipt, registration_due(receipt, zone.key, policy, cal))
    received_on = receipt.astimezone(zone).date()
    key = (region, id(policy), id(cal), zone.key, received_on)
    hit = _LAST_DAY_CACHE.get(key)
    if hit is not None and hit[0] is policy and hit[1] is cal:
        last_day = hit[2]
    else:
        last_day = registration_due(receipt, zone.key, policy, cal).date()
        if len(_LAST_DAY_CACHE) >= LAST_DAY_CACHE_SIZE:
            _LAST_DAY_CACHE.clear()
        _LAST_DAY_CACHE[key] = (policy, cal, last_day)
    return max(receipt, datetime.combine(last_day, REGISTER_DAY_HOUR, zone))


#: Entries of :data:`_LAST_DAY_CACHE` before it is emptied: a year of receipt days for a
#: dozen regions' policies.
LAST_DAY_CACHE_SIZE = 4096
#: The last day of a day-counted ``registration`` stage by (region, policy, calendar, zone,
#: local date of receipt): it depends on nothing else, and computing it (the stage's day
#: count and day-off shift on the region's calendar) made :func:`registration_time` of every
#: 59-FZ appeal 7.6 µs where it was 1.0 (review of today's commits). The policy and the
#: calendar are keyed by identity and kept in the value, checked on a hit: an id reused by a
#: reloaded policy book is a miss, never another book's answer. A working-hours stage ends at
#: a moment that depends on the receipt's time of day and is never cached.
_LAST_DAY_CACHE: dict[tuple[str, int, int, str, date], tuple[Any, Any, date]] = {}


def _reg_date(intake: IntakeAppeal) -> date | None:
    """The office's registration date a 59-FZ letter carries (``extra.reg_date``,
    ``DD.MM.YYYY`` or ``YYYY-MM-DD``, as the fz59 adapter reads it), or None when absent or
    unreadable (the latest registration then, :func:`fz59_latest_registration`)."""
    from workers.intake.adapters._common import iso_date_only  # the adapters import this module

    return iso_date_only((intake.extra or {}).get("reg_date"))


def _region_zone(region: str) -> ZoneInfo:
    """The region's zone (its capital's), Moscow's for a region the catalogue has no zone
    for, as the SLA agent takes it."""
    return ZoneInfo(region_timezone_or_moscow(region))


def register(
    intake: IntakeAppeal,
    *,
    registered_at: datetime,
    source: SourcePosition,
    email_regime: str = "pos",
    web_regime: str = "fz59",
    open311_regime: str = "pos",
    duplicate_of: str | None = None,
) -> RegisteredAppeal:
    """The registered appeal for an accepted intake event, registered at ``registered_at``
    (the legal registration moment, :func:`registration_time`), read at ``source`` (never
    None: the schema refuses a null ``source``)."""
    return RegisteredAppeal(
        appeal_id=appeal_id_for(intake.channel, intake.external_id),
        channel=intake.channel,
        external_id=intake.external_id,
        regime=regime_for(intake.channel, email_regime, web_regime,
                          open311=from_open311(intake.channel, intake.extra),
                          open311_regime=open311_regime),
        region=intake.region,
        registered_at=registered_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        submitted_at=intake.submitted_at,
        text=intake.text,
        idempotency_key=intake.idempotency_key,
        subject=intake.subject,
        category_hint=intake.category_hint,
        subcategory=intake.subcategory,
        municipality=intake.municipality,
        address=intake.address,
        importance=intake.importance,
        complaint_about=intake.complaint_about,
        author=intake.author,
        attachments=intake.attachments,
        extra=intake.extra,
        duplicate_of=duplicate_of,
        source=source,
    )
