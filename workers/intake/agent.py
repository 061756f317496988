"""The intake agent: every intake topic in; registered, classified and routed in one step.

Out go ``appeals.registered`` (the audit record of every accepted appeal), ``appeals.routed``
(or the triage queue, when the classifier is unsure) and the dead-letter topic. Registering,
classifying and routing a batch in the same agent is a performance decision (issue #7): each
consumed record costs Faust tens of microseconds however little work it carries, and the
intermediate topic would be consumed by this same worker anyway. Both outputs are acknowledged
by the broker before the batch's offsets can be committed, as everywhere (see the outbox).

An appeal is registered at its legal registration moment (``core.registration_time``: 59-FZ's
from receipt and the body's register, the platforms' and the hotline's at submission), at most
the moment the intake record reached Kafka (its timestamp, :func:`read_moment`): every deadline
counts from ``registered_at``, a backlog must not move them later, and a replay of the record
must register it at the same moment.

Exact duplicates (same channel and external id within the dedupe window) are recognised with a
Redis ``SET NX`` whose value is the source position of the first registration, under a keyed
digest of channel and external id (:func:`dedupe_key`), not the id itself. A replay of that
very message after a crash finds its own position there and registers again, which downstream
absorbs because the appeal id is derived; a true resend from the citizen finds another position
and is counted as a duplicate. Losing Redis only lets a resend through, which the per-appeal SLA
state absorbs the same way: no appeal is ever lost for a Redis fault.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import math
from datetime import UTC, datetime
from typing import Any

import faust
import redis.exceptions

from monitoring import metrics
from schemas.records import CHANNELS, IntakeAppeal, RegisteredAppeal, SourcePosition
from schemas.validation import InvalidEvent
from streams import topics as t
from streams.app import max_registered_bytes
from streams.clock import SlaClock
from streams.log_limit import LogLimiter
from workers.intake import core, near_duplicates, redis_scripts
from workers.route.agent import ROUTE_FIELDS, classify_and_route
from workers.route.agent import STAGE as ROUTE_STAGE
from workers.routing import Router
from workers.runtime import (
    Outbox,
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
)
from workers.sla.deadline_service import policy_book

log = logging.getLogger(__name__)

STAGE = "intake"


def _load_plugins() -> None:
    """Channel adapters and normalisers register themselves on import, when present."""
    import importlib

    for name in ("workers.intake.adapters", "workers.intake.normalize"):
        try:
            importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - optional during development
            if exc.name != name:
                raise
            log.warning("intake plugin %s not available", name)


def check_environment() -> None:
    """Read intake's own variables now (``APPEALS_NEAR_DUP_*``, ``APPEALS_PHONE_REGION``,
    ``APPEALS_MAX_ATTACHMENTS``, ``APPEALS_MAX_ATTACHMENT_BYTES``): a bad value raises
    :class:`~streams.settings.ConfigError` naming it, which ``appeals worker`` reports in one
    line with status 2 before it contacts Kafka. They were read unchecked and a bad one
    silently switched a feature off."""
    from workers.intake.normalize import NormaliseConfig

    NormaliseConfig.from_env()
    near_duplicates.NearDupConfig.from_env()


def install(app: faust.App, ctx: WorkerContext, router: Router, classifier: Any) -> Any:
    _load_plugins()
    settings = ctx.settings
    topo = ctx.topology
    channel_by_topic = {t.topic_name(settings, t.intake_topic(c)): c for c in CHANNELS}
    source = topo.channel_of(*(t.intake_topic(c) for c in CHANNELS))
    dedupe_ttl = settings.dedupe_window_days * 86400
    record_limit = max_registered_bytes(settings)
    dedupe_down_log = LogLimiter()  # "Redis unavailable": once a minute, not once a batch
    near_cfg = dataclasses.replace(near_duplicates.default_config(),
                                   key_prefix=f"{settings.app_id}:")
    # The SLA policies, for a 59-FZ appeal's latest registration (the fz59 `registration`
    # stage): the process's book of the routing rules in use, the SLA agent's, so a reload
    # of the rules that changes its policies changes intake's at the same moment. Read now,
    # so a worker without valid policies does not start.
    policy_book(getattr(router, "rules", None), reload=False)

    @app.agent(source, name="intake")
    async def intake(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings, stage=STAGE):
            with crash_on_error(STAGE):
                outbox = ctx.outbox(STAGE)
                # The SLA clock's now: no intake record is read later than this (read_moment).
                now = ctx.clock.now_dt()
                policies = policy_book(getattr(router, "rules", None))
                accepted: list[tuple[IntakeAppeal, SourcePosition, str]] = []
                registered_at: list[datetime] = []
                accepted_events: list[faust.EventT] = []
                for event in events:
                    msg = event.message
                    channel = channel_by_topic.get(msg.topic, "unknown")
                    metrics.child(metrics.RECEIVED, channel).inc()
                    try:
                        appeal = core.decode_intake(
                            msg.value,
                            channel_hint=channel if channel != "unknown" else None,
                            max_text_length=settings.max_text_length,
                            max_message_bytes=settings.max_message_bytes,
                        )
                        # Before the dedupe mark: a record refused here (a mistyped year) and
                        # sent again corrected is a first registration, not a duplicate.
                        registration = core.registration_time(
                            appeal, read_moment(ctx.clock, msg.timestamp, now),
                            max_age=settings.intake_max_age, book=policies,
                            regime=core.regime_for(
                                appeal.channel, settings.email_regime, settings.web_regime,
                                open311=core.from_open311(appeal.channel, appeal.extra),
                                open311_regime=settings.open311_regime))
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                                 detail=exc.detail)
                        continue
                    except Exception as exc:  # a bug must not stop the stream
                        log.exception("intake failed on %s[%d]@%d", msg.topic, msg.partition,
                                      msg.offset)
                        await outbox.dead_letter(event, stage=STAGE, reason="internal_error",
                                                 detail=type(exc).__name__)
                        continue
                    pos = SourcePosition(msg.topic, msg.partition, msg.offset)
                    key = dedupe_key(settings.app_id, near_cfg.salt, appeal.channel,
                                     appeal.external_id)
                    accepted.append((appeal, pos, key))
                    accepted_events.append(event)
                    registered_at.append(registration)

                fresh = await _first_seen(ctx, accepted, dedupe_ttl, dedupe_down_log)
                batch: list[RegisteredAppeal] = []
                batch_events: list[faust.EventT] = []
                for (appeal, pos, _key), event, is_new, at in zip(
                        accepted, accepted_events, fresh, registered_at, strict=True):
                    if not is_new:
                        metrics.child(metrics.DUPLICATES, appeal.channel).inc()
                        continue
                    batch.append(core.register(
                        appeal,
                        registered_at=at,
                        source=pos,
                        email_regime=settings.email_regime,
                        web_regime=settings.web_regime,
                        open311_regime=settings.open311_regime,
                    ))
                    batch_events.append(event)
                signatures = near_duplicates.signatures(batch, near_cfg)
                await _flag_near_duplicates(ctx, batch, near_cfg, signatures)
                batch, signatures = await _send_registered(outbox, batch, batch_events,
                                                           signatures, record_limit)
                observe_stage_latency(STAGE, events)
                await classify_and_route(ctx, outbox, [route_view(r) for r in batch],
                                         classifier, router)
                await outbox.flush()
                await _remember(ctx, batch, near_cfg, signatures)
                observe_stage_latency(ROUTE_STAGE, events)

    return intake


#: Kafka timestamps are whole milliseconds.
KAFKA_TIMESTAMP_RESOLUTION = 0.001


def read_moment(clock: SlaClock, timestamp: float | None, now: datetime) -> datetime:
    """The moment intake reads an intake record on the SLA clock: its Kafka timestamp, at most
    ``now`` (the SLA clock's), or ``now`` for a record without a usable timestamp.

    Why: a registration is at most the moment intake reads the appeal (59-FZ's latest
    registration, a ``submitted_at`` in the future), and that was the clock's now when the
    batch was processed. A batch replayed after a crash was registered again at a later
    moment: the same appeal, read at the same offset, got two ``registered_at`` (and two sets
    of deadlines) 40 s apart. The record's timestamp is the same on every replay. It is the
    producer's (or, with ``LogAppendTime``, the broker's) wall clock, mapped onto the SLA
    clock as the clock maps wall time (``APPEALS_TIME_SCALE``); the end of its millisecond,
    since the record was written within it (a sped-up clock makes a millisecond 86 s, which
    put the reading before a ``submitted_at`` stamped just before the send). Never after
    ``now``: a producer's clock ahead of ours is not a reading in the future.
    """
    if timestamp is None or not math.isfinite(timestamp) or timestamp <= 0:
        return now
    at = clock.sla_time_of(timestamp + KAFKA_TIMESTAMP_RESOLUTION)
    if not 0 < at < now.timestamp():  # ahead of now; before 1970 (a sped-up clock's past)
        return now
    return datetime.fromtimestamp(at, UTC)


async def _send_registered(
    outbox: Outbox,
    batch: list[RegisteredAppeal],
    events: list[faust.EventT],
    signatures: list[near_duplicates.Signature],
    limit: int,
) -> tuple[list[RegisteredAppeal], list[near_duplicates.Signature]]:
    """Publish each registered appeal; returns the ones sent (and their signatures).

    Defence in depth: decoding already rejects what cannot be written (too deep a payload, a
    record over ``APPEALS_MAX_MESSAGE_BYTES`` as intake writes it), but should one record
    still fail to serialise, or come out over ``limit`` bytes
    (:func:`streams.app.max_registered_bytes`, below the producer's request size), only that
    record goes to the dead-letter topic. An exception here (the producer refuses a record
    over its limit) would otherwise end the worker (``crash_on_error``), and the replayed
    batch would fail the same way on every restart.
    """
    sent: list[RegisteredAppeal] = []
    sent_signatures: list[near_duplicates.Signature] = []
    for registered, event, signature in zip(batch, events, signatures, strict=True):
        try:
            value = registered.to_json()
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            await outbox.dead_letter(event, stage=STAGE, reason="unserialisable",
                                     detail=f"{type(exc).__name__}: {exc}"[:200])
            continue
        if len(value) > limit:
            await outbox.dead_letter(event, stage=STAGE, reason="oversize_message",
                                     detail=f"registered appeal of {len(value)} bytes > {limit}")
            continue
        await outbox.send(t.REGISTERED, registered.appeal_id.encode(), value)
        metrics.child(metrics.REGISTERED, registered.channel, registered.regime).inc()
        sent.append(registered)
        sent_signatures.append(signature)
    return sent, sent_signatures


def route_view(registered: RegisteredAppeal) -> dict[str, Any]:
    """The fields routing reads, as the dict the triage path also stores."""
    return {name: getattr(registered, name) for name in ROUTE_FIELDS}


def dedupe_key(app_id: str, salt: bytes, channel: str, external_id: str) -> str:
    """The Redis key of an appeal's exact-dedupe mark: ``<app id>:dedupe:<channel>:<digest>``.

    The external id was in the key as sent, and for an incident it is a post URL naming its
    author (``vk.com/id123...``): personal data in every Redis key listing and dump. An
    HMAC-SHA256 with the near-duplicate salt (``APPEALS_NEAR_DUP_SALT``, the secret the
    near-duplicate buckets are keyed with already), so the key names the appeal without
    showing it and cannot be turned back into a guessed URL or phone without the salt; 160
    bits, as the gateway's idempotency keys. Changing the salt starts a new set of marks (see
    README, "Upgrading").
    """
    digest = hmac.new(salt, f"v1-dedupe\x1f{channel}\x1f{external_id}".encode(
        "utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:40]
    return f"{app_id}:dedupe:{channel}:{digest}"


async def _first_seen(
    ctx: WorkerContext,
    accepted: list[tuple[IntakeAppeal, SourcePosition, str]],
    ttl: int,
    down_log: LogLimiter,
) -> list[bool]:
    """For each appeal: is this its first registration (or a replay of it)?

    One round trip per batch (a Lua script). Inside one batch the same key twice is a resend.
    Without Redis, only that: the outage is logged through ``down_log`` (at most once a
    minute; it was once a batch) and counted in ``appeals_redis_errors_total``.
    """
    if not accepted:
        return []
    marks = [f"{p.topic}:{p.partition}:{p.offset}" for _, p, _ in accepted]
    try:
        replies = await redis_scripts.run(ctx.redis, redis_scripts.FIRST_SEEN,
                                          [key for _, _, key in accepted], [ttl, *marks])
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("intake_dedupe").inc()
        skipped = down_log.allow()
        if skipped is not None:
            log.warning("Redis unavailable for intake dedupe; registering without it%s",
                        f" ({skipped} more batches since the last such line)" if skipped else "")
        return _dedupe_within_batch(accepted)
    return [bool(r) for r in replies]


async def _flag_near_duplicates(ctx: WorkerContext, batch: list[RegisteredAppeal],
                                cfg: near_duplicates.NearDupConfig,
                                signatures: list[near_duplicates.Signature]) -> None:
    """Citizens often resend the same complaint: register it, but point at the first one."""
    if not batch:
        return
    try:
        found = await near_duplicates.find_near_duplicates(ctx.redis, batch, config=cfg,
                                                           signatures=signatures)
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("near_duplicates").inc()
        return
    for registered, duplicate_of in zip(batch, found, strict=True):
        registered.duplicate_of = duplicate_of


async def _remember(ctx: WorkerContext, batch: list[RegisteredAppeal],
                    cfg: near_duplicates.NearDupConfig,
                    signatures: list[near_duplicates.Signature]) -> None:
    if not batch:
        return
    try:
        dropped = await near_duplicates.remember_many(ctx.redis, batch, config=cfg,
                                                      signatures=signatures)
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("near_duplicates").inc()
        return
    if dropped:
        metrics.NEAR_DUP_DROPPED.inc(dropped)


def _dedupe_within_batch(accepted: list[tuple[IntakeAppeal, SourcePosition, str]]) -> list[bool]:
    seen: set[str] = set()
    out = []
    for _, _, key in accepted:
        out.append(key not in seen)
        seen.add(key)
    return out
