"""The notify agents: SLA alerts to supervisors, each delivered once in effect, none lost.

Two agents in every worker:

- ``notify`` reads ``appeals.sla.alerts``. Each alert gets a few quick attempts per target
  (webhooks, Alertmanager) within one time budget per batch; an alert some target did not take
  is *parked* on ``appeals.notify.retry`` (:mod:`workers.notify.retry`) with the targets that
  did. The batch's offsets are committed only after each alert is delivered or its retry
  record is acknowledged by the broker (the outbox), so a receiver that is down costs the
  batch at most the budget and holds up nobody else's alerts.
- ``notify-retry`` reads ``appeals.notify.retry``: waits until a record's ``not_before``
  (each record of a batch on its own; the wait holds the retry agent's next batch, at most
  ``APPEALS_NOTIFY_RETRY_BACKOFF_MAX`` or ``APPEALS_NOTIFY_RETRY_AFTER_MAX``, whichever is
  longer, never the notify agent), tries the targets not yet
  served (each request with the whole ``APPEALS_WEBHOOK_TIMEOUT``, not the inline budget),
  and marks the alert sent or parks it again with a longer backoff (capped). After
  ``APPEALS_NOTIFY_RETRY_MAX_AGE`` of failures it dead-letters the alert (``delivery_failed``),
  which ``AppealsSupervisorAlertsLost`` reports.

A receiver that answers 429/503 with ``Retry-After`` (seconds or an HTTP-date, capped at
``APPEALS_NOTIFY_RETRY_AFTER_MAX``) gets no request from either agent before that moment: its
alerts are parked with a ``not_before`` no earlier, the other receivers' alerts go on.

An alert id is derived (appeal, level, cycle), so a replayed alert carries the id of the one
already delivered; a Redis marker, written only after every target took it, turns the replay
(and a second retry record of the same alert) into a no-op. Each target that took it gets a
marker of its own as well, and a delivery (first try, retry, replay) skips the targets
marked: an alert a receiver refused (``delivery_rejected``) is not marked sent as a
whole, so replaying its dead letter once the receiver is fixed reaches the receivers that
refused and none that took it (it was marked sent, and the replay dropped as a duplicate for
90 days). A lost marker at worst re-delivers with the same idempotency key, which receivers
(webhooks with Idempotency-Key, Alertmanager by label set) absorb.

Alerts of one appeal's deadline (same stage and cycle) notified to one authority keep their
order: a warning is not sent to a receiver that already took the breach or escalation of that
deadline for the same authority (the alert ids name them, the receiver's marker the authority),
it is *superseded* (``appeals_notifications_total{result="superseded"}``, a log
line). So a warning parked while its receiver hiccupped no longer arrives after the breach
that went out meanwhile; within a batch of either agent the higher level is tried first. A
superseded warning is settled (marked sent), not dead-lettered: the receiver has the newer
alert of the same deadline. Only the moment a warning's retry is already in flight when the
breach goes out is not covered. An escalation notifies the parent body: it supersedes nothing
of the authority's own alerts, also at a receiver every authority shares (Alertmanager, the
fallback hook).

An end record (``resolved_at``: the SLA agent's word that an alert it sent is over, see
:mod:`workers.sla.resolution`) is delivered only to the receivers that took the alert it ends
(their markers), under its own id (``<alert_id>:resolved``, :func:`delivery_id`), parked and
retried like an alert. Before any delivery it leaves an *ended* marker: the alert it ends, if
still undelivered (parked, later in the batch, replayed), is dropped and settled
(``appeals_notifications_total{result="ended_undelivered"}``), not delivered firing.

No alert can stop the worker: an alert that fails its schema, cannot be expressed in a
request (a ``fired_at`` without a UTC moment), is refused for good by a receiver (a 3xx, a
4xx other than 408/409/425/429, 501 or 505: :func:`workers.notify.delivery.retryable`), has
no receiver while the deployment has some (``no_receiver``: an authority without a hook and
no fallback), or trips an unexpected error is dead-lettered with a reason and counted; only
errors of the broker or the process itself end a batch (``crash_on_error``). With no receiver
configured at all the deployment is log-only: the log line is the delivery.
Alert texts and labels carry ids, levels and deadlines only: never the citizen's data.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import redis.exceptions

from monitoring import metrics
from schemas.records import SlaAlert
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.notify.delivery import (
    Delivery,
    Outcome,
    Target,
    UndeliverableAlert,
    check_alert,
    delivery_id,
)
from workers.notify.retry import Parked, ParkedTracker, retry_delay
from workers.runtime import (
    Outbox,
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)

log = logging.getLogger("appeals.alerts")

STAGE = "notify"
RETRY_STAGE = "notify_retry"  # label of the retry agent's broker-ack wait; dead letters: STAGE
SENT_TTL = 90 * 86400
CHANNELS = ("webhook", "alertmanager")
# Reasons a notify dead letter can carry, exported at 0 from the start so that
# ``AppealsSupervisorAlertsLost``'s ``increase`` sees the first one: delivery outcomes, a retry
# record that is not one, and the codes ``parse_event`` and the sla-alert schema give (the
# schema has no length limit and no channel, and internal records may carry unknown fields, so
# too_long, unknown_channel and unknown_field cannot occur). ``schema_invalid``, listed before,
# is no code of the notify stage: the real schema codes appeared only with their first dead
# letter. A reason missing here is still alerted on (the rule also reads the series' creation
# time), only no longer seen at 0 beforehand.
DEAD_LETTER_REASONS = (
    "delivery_failed", "delivery_rejected", "delivery_error", "no_receiver", "bad_retry_record",
    "bad_timestamp", "empty", "not_json", "not_object", "unsupported_schema_version",
    "missing_field", "wrong_type", "invalid_value",
)


@dataclass(slots=True)
class _Error:
    """One alert's delivery raised: dead-letter it, the batch goes on."""

    reason: str
    detail: str


_ALREADY_SENT = object()
_ENDED = object()  # a parked alert whose end record came meanwhile


class Notifier:
    """The per-batch logic of both agents (agents are thin loops around it; tests drive it)."""

    def __init__(self, ctx: WorkerContext, delivery: Delivery | None, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.ctx = ctx
        self.settings = settings = ctx.settings
        self.delivery = delivery
        self.prefix = f"{settings.app_id}:"
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        # An entry is forgotten only after the longest a record can wait (backoff or a
        # receiver's Retry-After), doubled: forgetting sooner hid an alert still waiting from
        # the parked gauges and ``AppealsSupervisorAlertsStuck``.
        longest_wait = max(settings.notify_retry_backoff_max, settings.notify_retry_after_max)
        self.tracker = ParkedTracker(2 * longest_wait + 120, clock)
        self.retry_topic = t.topic_name(settings, t.NOTIFY_RETRY)
        for channel in CHANNELS:
            metrics.NOTIFY_PARKED_ALERTS.labels(channel).set_function(
                functools.partial(self.tracker.count, channel))
            metrics.NOTIFY_PARKED_OLDEST_AGE.labels(channel).set_function(
                functools.partial(self.tracker.oldest_age, channel))
            metrics.NOTIFY_PARKED.labels(channel)
            for result in ("sent", "failed", "rejected"):
                metrics.NOTIFY_RETRIES.labels(channel, result)
            metrics.NOTIFICATIONS.labels(channel, "superseded")
        for reason in DEAD_LETTER_REASONS:
            metrics.DEADLETTER.labels(STAGE, reason)

    # -- appeals.sla.alerts -----------------------------------------------------------------

    async def alerts(self, events: Sequence[Any], outbox: Outbox) -> None:
        """One batch of the alerts topic: deliver or park each alert, dead-letter the bad."""
        todo: dict[str, tuple[Any, SlaAlert]] = {}
        for event in events:
            alert = await self._read_alert(event, outbox)
            if alert is None:
                continue
            if delivery_id(alert) in todo:
                metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
                continue
            todo[delivery_id(alert)] = (event, alert)
        ended = {alert.alert_id for _, alert in todo.values() if alert.resolved_at}
        await self._note_ended(ended)  # before any delivery: a retry under way sees it
        pending = await self._not_yet_sent(list(todo.values()))
        pending = await self._drop_ended(pending, ended)
        for _, alert in pending:
            if alert.resolved_at:
                log.info("SLA %s%s ended: appeal %s, authority %s (notify %s), at %s",
                         alert.level.upper(), f" of stage {alert.stage}" if alert.stage else "",
                         alert.appeal_id, alert.authority_id, alert.notify_authority_id,
                         alert.resolved_at)
                metrics.NOTIFICATIONS.labels("log", "resolved").inc()
                continue
            log.warning(
                "SLA %s%s: appeal %s, authority %s (notify %s), regime %s, due %s",
                alert.level.upper(), f" of stage {alert.stage}" if alert.stage else "",
                alert.appeal_id, alert.authority_id, alert.notify_authority_id, alert.regime,
                alert.due_at,
            )
            metrics.NOTIFICATIONS.labels("log", "sent").inc()
        # Side by side, within one budget: one receiver that is down or slow must not hold
        # back every other supervisor's alerts behind its retries.
        results = await _in_family_order([alert for _, alert in pending], self._first_try)
        finished: list[str] = []
        served: list[tuple[SlaAlert, list[str]]] = []
        now = self._clock()
        for (event, alert), result in zip(pending, results, strict=True):
            if isinstance(result, _Error):
                await outbox.dead_letter(event, stage=STAGE, reason=result.reason,
                                         detail=result.detail)
                continue
            await self._dead_letter_rejected(outbox, event, result)
            served.append((alert, [x.key for x in result.sent]))
            if not result.failed:
                if not result.refused:  # refused: its dead letter's replay must not be a no-op
                    finished.append(delivery_id(alert))
                continue
            parked = Parked(alert=alert, attempt=1, first_failed_at=now,
                            not_before=now + self._delay(1, result),
                            done=result.done_keys, channels=result.failed_channels,
                            rejected=[x.key for x, _ in result.refused])
            await outbox.send(t.NOTIFY_RETRY, alert.appeal_id.encode(), parked.to_json())
            for channel in parked.channels:
                metrics.NOTIFY_PARKED.labels(channel).inc()
            log.warning("alert %s parked for retry in %.1f s: %s", alert.alert_id,
                        parked.not_before - now, _failures(result))
        await outbox.flush()  # parked records acknowledged before the offsets move
        await self._mark_sent(finished, served)

    async def _read_alert(self, event: Any, outbox: Outbox) -> SlaAlert | None:
        try:
            data = parse_event(event.message.value, SlaAlert.schema)
            alert = SlaAlert.from_dict(data)
            check_alert(alert)
        except (InvalidEvent, UndeliverableAlert) as exc:
            await outbox.dead_letter(event, stage=STAGE, reason=exc.reason, detail=exc.detail)
            return None
        except Exception as exc:  # a bug must cost one alert, not the worker
            log.exception("alert at %s[%d]@%d could not be read", event.message.topic,
                          event.message.partition, event.message.offset)
            await outbox.dead_letter(event, stage=STAGE, reason="delivery_error",
                                     detail=type(exc).__name__)
            return None
        return alert

    async def _first_try(self, alert: SlaAlert, above: frozenset[str]) -> Outcome | _Error:
        if self.delivery is None:
            return Outcome()
        try:
            targets = self.delivery.targets(alert)
            if alert.resolved_at:
                took = await self._took_it(alert, targets)
                if took is None:
                    return _unknown_takers(targets)
                if not took:
                    return Outcome()
                return await self.delivery.send(alert, took,
                                                budget=self.settings.notify_inline_budget,
                                                hold_off=self.delivery.hold_off)
            if not targets and self.delivery.has_receivers():
                # Receivers are configured, but none for this authority (no supervisors' hook,
                # no fallback, no Alertmanager): not "delivered". Dead-lettered like a parked
                # alert whose receivers were removed; replay it once the rules name one.
                return _Error("no_receiver", "no receiver is configured for authority "
                                             f"{alert.notify_authority_id[:80]}")
            targets = await self._unserved(alert, targets, above)  # a replay: those not served
            if not targets:
                return Outcome()
            return await self.delivery.send(alert, targets,
                                            budget=self.settings.notify_inline_budget,
                                            hold_off=self.delivery.hold_off)
        except UndeliverableAlert as exc:
            return _Error(exc.reason, exc.detail)
        except Exception as exc:
            log.exception("delivery of alert %s raised", alert.alert_id)
            return _Error("delivery_error", type(exc).__name__)

    # -- appeals.notify.retry ---------------------------------------------------------------

    async def retries(self, events: Sequence[Any], outbox: Outbox) -> None:
        """One batch of the retry topic: each record waits for its moment, then is tried."""
        items: dict[str, tuple[Any, Parked]] = {}
        for event in events:
            try:
                parked = Parked.from_bytes(event.message.value)
            except InvalidEvent as exc:
                await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                         detail=exc.detail)
                continue
            except Exception as exc:
                log.exception("retry record at %s[%d]@%d could not be read",
                              event.message.topic, event.message.partition,
                              event.message.offset)
                await outbox.dead_letter(event, stage=STAGE, reason="bad_retry_record",
                                         detail=type(exc).__name__)
                continue
            alert_id = delivery_id(parked.alert)
            if alert_id in items:
                items[alert_id][1].merge(parked)
                metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
                continue
            items[alert_id] = (event, parked)
            self.tracker.seen(alert_id, parked.channels, parked.first_failed_at,
                              event.message.partition)
        # Each record waits for its own not_before and is settled (delivered and marked, parked
        # again, or dead-lettered) as soon as it was tried; the batch, and with it the offsets,
        # ends when the last is done, so a record waits at most
        # APPEALS_NOTIFY_RETRY_BACKOFF_MAX (or APPEALS_NOTIFY_RETRY_AFTER_MAX, if longer)
        # behind another of its partition.
        by_alert = {delivery_id(parked.alert): (event, parked) for event, parked in items.values()}

        async def settle(alert: SlaAlert, above: frozenset[str]) -> list[str]:
            event, parked = by_alert[delivery_id(alert)]
            return await self._retry_and_settle(event, parked, outbox, above)

        await _in_family_order([parked.alert for _, parked in items.values()], settle)
        await outbox.flush()  # records parked again acknowledged before the offsets move

    async def _retry_and_settle(self, event: Any, parked: Parked, outbox: Outbox,
                                above: frozenset[str] = frozenset()) -> list[str]:
        """Retry one record and settle it; returns the keys of the targets it reached."""
        result = await self._retry(parked, above)
        alert_id = delivery_id(parked.alert)
        if result is _ALREADY_SENT:
            self.tracker.resolved(alert_id)
            return []
        if result is _ENDED:
            # Its appeal's period ended (or the deadline moved past it) while it waited: an
            # alert delivered now would fire at receivers about something already over.
            self.tracker.resolved(alert_id)
            await self._mark_sent([alert_id])
            return []
        if isinstance(result, _Error):
            self.tracker.resolved(alert_id)
            await outbox.dead_letter(event, stage=STAGE, reason=result.reason,
                                     detail=result.detail)
            return []
        assert isinstance(result, Outcome)
        _count_retry(result)
        await self._dead_letter_rejected(outbox, event, result)
        rejected = parked.rejected + [x.key for x, _ in result.refused]
        if not result.failed:
            self.tracker.resolved(alert_id)
            # Refused by some receiver (now or at an earlier attempt): not marked sent as a
            # whole, so the replay of its dead letter reaches those that refused.
            await self._mark_sent([] if rejected else [alert_id],
                                  [(parked.alert, [x.key for x in result.sent])])
            log.info("parked alert %s delivered at retry %d%s", alert_id, parked.attempt,
                     " (refused by some receivers)" if rejected else "")
            return [x.key for x in result.sent]
        await self._mark_sent([], [(parked.alert, [x.key for x in result.sent])])
        now = self._clock()
        age = now - parked.first_failed_at
        if age >= self.settings.notify_retry_max_age:
            self.tracker.resolved(alert_id)
            for channel in result.failed_channels:
                metrics.NOTIFICATIONS.labels(channel, "failed").inc()
            await outbox.dead_letter(
                event, stage=STAGE, reason="delivery_failed",
                detail=f"not delivered after {parked.attempt} retries in {age:.0f} s: "
                       f"{_failures(result)}")
            return [x.key for x in result.sent]
        again = Parked(alert=parked.alert, attempt=parked.attempt + 1,
                       first_failed_at=parked.first_failed_at,
                       not_before=now + self._delay(parked.attempt + 1, result),
                       done=parked.done + result.done_keys, channels=result.failed_channels,
                       rejected=rejected)
        await outbox.send(t.NOTIFY_RETRY, parked.alert.appeal_id.encode(), again.to_json())
        # The record parked again has the same key (the appeal id): the same partition.
        self.tracker.seen(alert_id, again.channels, again.first_failed_at,
                          event.message.partition)
        log.info("parked alert %s: retry %d failed (%s); next in %.1f s", alert_id,
                 parked.attempt, _failures(result), again.not_before - now)
        return [x.key for x in result.sent]

    def _retry_budget(self) -> float:
        """How long a retry round may start requests: at least one whole request."""
        return max(self.settings.webhook_timeout, self.settings.notify_inline_budget)

    def _delay(self, attempt: int, outcome: Outcome) -> float:
        """Backoff before retry ``attempt``, but not before a receiver's Retry-After."""
        return max(retry_delay(self.settings, attempt, self._rng), outcome.wait)

    async def _retry(self, parked: Parked, above: frozenset[str] = frozenset()) -> object:
        # At most the backoff maximum (a not_before far ahead may come from another worker's
        # clock), or the Retry-After cap: a receiver's Retry-After is honoured after a restart.
        cap = max(self.settings.notify_retry_backoff_max, self.settings.notify_retry_after_max)
        wait = min(parked.not_before - self._clock(), cap)
        if wait > 0:
            await self._sleep(wait)
        alert = parked.alert
        try:
            if await self._was_sent(delivery_id(alert)):
                metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
                return _ALREADY_SENT
            if not alert.resolved_at and await self._ended(alert.alert_id):
                _count_ended(alert)
                return _ENDED
            if self.delivery is None:
                return Outcome()
            targets = [x for x in self.delivery.targets(alert) if x.key not in parked.done]
            if alert.resolved_at:
                took = await self._took_it(alert, targets)
                if took is None:
                    return _unknown_takers(targets)
                if not took:
                    return Outcome()
                return await self.delivery.send(alert, took, budget=self._retry_budget(),
                                                hold_off=0.0, whole_requests=True)
            if not targets:
                # The receivers it waited for were removed from the rules (or Alertmanager was
                # switched off): nobody is left to deliver to. Not "delivered": dead-lettered.
                return _Error("no_receiver", "the receivers this alert was parked for are no "
                                             "longer configured")
            # Served by a replay meanwhile, or already given this deadline's breach.
            targets = await self._unserved(alert, targets, above)
            if not targets:
                return Outcome()
            # hold_off=0: a target that fails during this round is not tried again by the
            # other records of the round (one probe of a dead receiver, not hundreds).
            # A request gets the whole APPEALS_WEBHOOK_TIMEOUT: the inline budget bounds only
            # the quick attempts of an alerts batch. Cut at that budget, a receiver answering
            # in 2.5 s (timeout 5 s) got a copy at every retry for 7 days and was never
            # served (delivery_failed). The round's budget (one timeout) bounds only the
            # start of a request: waiting for the receiver's slot, a next attempt.
            return await self.delivery.send(alert, targets,
                                            budget=self._retry_budget(),
                                            hold_off=0.0, whole_requests=True)
        except UndeliverableAlert as exc:
            return _Error(exc.reason, exc.detail)
        except Exception as exc:
            log.exception("retry of alert %s raised", alert.alert_id)
            return _Error("delivery_error", type(exc).__name__)

    def partitions_assigned(self, assigned: Iterable[Any]) -> None:
        """After a rebalance (``assigned``: this worker's whole new assignment, as Faust's
        ``on_partitions_assigned`` gives it): stop exporting the parked alerts of the retry
        partitions that went to another worker (see :class:`ParkedTracker`). Not on
        revocation: Faust revokes every partition at each rebalance, and the alerts of the
        partitions that stay would leave the gauges until read again, restarting
        ``AppealsSupervisorAlertsStuck``'s 5 minutes."""
        self.tracker.keep_partitions(tp.partition for tp in assigned
                                     if tp.topic == self.retry_topic)

    # -- shared -----------------------------------------------------------------------------

    async def _dead_letter_rejected(self, outbox: Outbox, event: Any, outcome: Outcome) -> None:
        """The alert's dead letter for the targets that refused it (``delivery_rejected``) and
        for those whose delivery raised (``delivery_error``); the other targets' outcomes
        stand (markers of those that took it, parking for those that failed)."""
        for targets, reason in ((outcome.rejected, "delivery_rejected"),
                                (outcome.errors, "delivery_error")):
            if not targets:
                continue
            for target, _ in targets:
                metrics.NOTIFICATIONS.labels(target.channel, "rejected").inc()
            detail = "; ".join(f"{x.channel} {x.host}: {why}" for x, why in targets)
            await outbox.dead_letter(event, stage=STAGE, reason=reason, detail=detail)

    async def _not_yet_sent(self, items: list[tuple[Any, SlaAlert]]
                            ) -> list[tuple[Any, SlaAlert]]:
        """Alerts whose sent-marker is absent (one round trip); all of them if Redis is down."""
        if not items:
            return []
        try:
            async with self.ctx.redis.pipeline(transaction=False) as pipe:
                for _, alert in items:
                    pipe.exists(f"{self.prefix}alert:sent:{delivery_id(alert)}")
                seen = await pipe.execute()
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
            return items
        out = []
        for item, was_sent in zip(items, seen, strict=True):
            if was_sent:
                metrics.NOTIFICATIONS.labels("log", "duplicate").inc()
            else:
                out.append(item)
        return out

    async def _was_sent(self, alert_id: str) -> bool:
        try:
            return bool(await self.ctx.redis.exists(f"{self.prefix}alert:sent:{alert_id}"))
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
            return False

    def _target_marker(self, alert_id: str, target_key: str) -> str:
        return f"{self.prefix}alert:sent-to:{target_key}:{alert_id}"

    def _ended_marker(self, alert_id: str) -> str:
        return f"{self.prefix}alert:ended:{alert_id}"

    async def _note_ended(self, alert_ids: Iterable[str]) -> None:
        """Remember that these alerts are over, for the alerts of them still waiting (parked,
        or later in the topic after a replay): they are dropped, not delivered."""
        ids = list(alert_ids)
        if not ids:
            return
        try:
            async with self.ctx.redis.pipeline(transaction=False) as pipe:
                for alert_id in ids:
                    pipe.set(self._ended_marker(alert_id), "1", ex=SENT_TTL)
                await pipe.execute()
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()

    async def _ended(self, alert_id: str) -> bool:
        try:
            return bool(await self.ctx.redis.exists(self._ended_marker(alert_id)))
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
            return False

    async def _drop_ended(self, items: list[tuple[Any, SlaAlert]], ended: set[str]
                          ) -> list[tuple[Any, SlaAlert]]:
        """The alerts of ``items`` not over yet: an alert whose end record came before it was
        delivered (the same batch, or an earlier one: a replay) is settled, not delivered."""
        firing = [alert.alert_id for _, alert in items if not alert.resolved_at]
        marks: list[Any] = []
        if firing:
            try:
                marks = await self.ctx.redis.mget([self._ended_marker(i) for i in firing])
            except (redis.exceptions.RedisError, OSError):
                metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
        over = ended | {i for i, m in zip(firing, marks, strict=False) if m is not None}
        out, dropped = [], []
        for event, alert in items:
            if not alert.resolved_at and alert.alert_id in over:
                _count_ended(alert)
                dropped.append(delivery_id(alert))
            else:
                out.append((event, alert))
        await self._mark_sent(dropped)
        return out

    async def _took_it(self, alert: SlaAlert, targets: list[Target]) -> list[Target] | None:
        """For an end record: the targets that took the alert it ends and not yet its end.
        A receiver never given the alert (it was superseded there, or is still parked for it)
        gets no end of it. None when Redis cannot say (:func:`_unknown_takers`): before, that
        was "nobody", and the end was marked sent without reaching anyone, lost for good."""
        if not targets:
            return targets
        keys = [self._target_marker(i, x.key) for x in targets
                for i in (alert.alert_id, delivery_id(alert))]
        try:
            marks = await self.ctx.redis.mget(keys)
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
            return None
        out = []
        for n, target in enumerate(targets):
            took, ended = marks[2 * n], marks[2 * n + 1]
            if ended is not None:
                metrics.NOTIFICATIONS.labels(target.channel, "duplicate").inc()
            elif took is not None:
                out.append(target)
        return out

    async def _unserved(self, alert: SlaAlert, targets: list[Target],
                        above: frozenset[str] = frozenset()) -> list[Target]:
        """The targets that have taken neither this alert nor a later level of its deadline
        notified to the same authority (``above``: target keys this batch gave one; Redis
        holds the earlier batches', each marker naming the authority it notified)."""
        if not targets:
            return targets
        later = _later_ids(alert)
        ids = [alert.alert_id, *(i for i, _ in later)]
        try:
            marks = await self.ctx.redis.mget(
                [self._target_marker(i, x.key) for x in targets for i in ids])
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()
            marks = [None] * (len(targets) * len(ids))
        out = []
        for n, target in enumerate(targets):
            own, *higher = marks[n * len(ids):(n + 1) * len(ids)]
            if own is not None:
                metrics.NOTIFICATIONS.labels(target.channel, "duplicate").inc()
            elif target.key in above or any(
                    _same_receiver(mark, level, alert.notify_authority_id)
                    for mark, (_, level) in zip(higher, later, strict=True)):
                metrics.NOTIFICATIONS.labels(target.channel, "superseded").inc()
                log.info("alert %s not sent to %s %s: superseded, it has a later level of "
                         "the same deadline", alert.alert_id, target.channel, target.host)
            else:
                out.append(target)
        return out

    async def _mark_sent(self, alert_ids: list[str],
                         served: Sequence[tuple[SlaAlert, list[str]]] = ()) -> None:
        """Mark ``alert_ids`` sent as a whole, and each (alert, target keys) of ``served``
        taken by those targets. A target's marker holds the authority the alert notified:
        a later level supersedes an earlier one only for the same authority
        (:func:`_same_receiver`)."""
        if not alert_ids and not any(keys for _, keys in served):
            return
        try:
            async with self.ctx.redis.pipeline(transaction=False) as pipe:
                for alert_id in alert_ids:
                    pipe.set(f"{self.prefix}alert:sent:{alert_id}", "1", ex=SENT_TTL)
                for alert, keys in served:
                    for key in keys:
                        pipe.set(self._target_marker(delivery_id(alert), key),
                                 alert.notify_authority_id or "-", ex=SENT_TTL)
                await pipe.execute()
        except (redis.exceptions.RedisError, OSError):
            metrics.REDIS_ERRORS.labels("notify_dedupe").inc()


LEVELS = ("warning", "breach", "escalation")  # the order alerts of one deadline are sent in


def _family(alert: SlaAlert) -> tuple[str, str, int] | None:
    """(prefix, cycle, rank) of an alert id as the SLA agent derives it,
    ``<appeal>:[<stage>.]<level>:<cycle>``; None for any other id (never superseded)."""
    if alert.level not in LEVELS or alert.resolved_at:
        return None
    prefix = f"{alert.appeal_id}:{alert.stage + '.' if alert.stage else ''}"
    head, _, cycle = alert.alert_id.rpartition(":")
    if head != f"{prefix}{alert.level}" or not cycle:
        return None
    return prefix, cycle, LEVELS.index(alert.level)


def _later_ids(alert: SlaAlert) -> list[tuple[str, str]]:
    """(id, level) of the later levels of this alert's deadline (same appeal, stage and
    cycle)."""
    family = _family(alert)
    if family is None:
        return []
    prefix, cycle, rank = family
    return [(f"{prefix}{level}:{cycle}", level) for level in LEVELS[rank + 1:]]


def _same_receiver(mark: bytes | str | None, level: str, notify_authority_id: str) -> bool:
    """Whether a target's marker of a later level (``level``) supersedes an alert notified to
    ``notify_authority_id``: only when that level notified the same authority.

    An escalation goes to the parent body (DESIGN.md §2: one level up, in addition to the
    breach the authority's supervisors get); Alertmanager and the shared fallback hook have one
    key for every authority, so taking the parent's escalation as a later level of the
    authority's own breach dropped that breach as superseded, marked sent, with no dead
    letter. Markers written before they named the authority hold "1": a breach always notified
    the deadline's own authority, an escalation may not have.
    """
    if mark is None:
        return False
    value = mark.decode() if isinstance(mark, bytes) else mark
    if value == "1":
        return level != "escalation"
    return value == notify_authority_id


async def _in_family_order(
        alerts: Sequence[SlaAlert],
        run: Callable[[SlaAlert, frozenset[str]], Awaitable[Any]]) -> list[Any]:
    """``run`` each alert, side by side, except that alerts of one deadline (same appeal,
    stage and cycle) notified to one authority run one after the other, the latest level
    first; each is given the keys of the targets the later levels reached (``Outcome.sent``,
    or a retry's returned keys)."""
    results: list[Any] = [None] * len(alerts)
    chains: dict[Any, list[int]] = {}
    for i, alert in enumerate(alerts):
        family = _family(alert)
        # The notified authority is part of the chain: an escalation to the parent body is
        # no later level of the breach its authority's supervisors get (_same_receiver).
        key = (*family[:2], alert.notify_authority_id) if family else i
        chains.setdefault(key, []).append(i)

    async def chain(indexes: list[int]) -> None:
        reached: set[str] = set()
        order = sorted(indexes, key=lambda i: -(f[2] if (f := _family(alerts[i])) else 0))
        for i in order:
            results[i] = result = await run(alerts[i], frozenset(reached))
            if isinstance(result, Outcome):
                reached.update(x.key for x in result.sent)
            elif isinstance(result, list):
                reached.update(result)

    await asyncio.gather(*(chain(indexes) for indexes in chains.values()))
    return results


def _count_ended(alert: SlaAlert) -> None:
    """An alert dropped because its end record came before it was delivered."""
    metrics.NOTIFICATIONS.labels("log", "ended_undelivered").inc()
    log.info("alert %s not delivered: it ended before its delivery", alert.alert_id)


def _count_retry(outcome: Outcome) -> None:
    for target in outcome.sent:
        metrics.NOTIFY_RETRIES.labels(target.channel, "sent").inc()
    for target, _ in outcome.failed:
        metrics.NOTIFY_RETRIES.labels(target.channel, "failed").inc()
    for target, _ in outcome.refused:
        metrics.NOTIFY_RETRIES.labels(target.channel, "rejected").inc()


def _unknown_takers(targets: list[Target]) -> Outcome:
    """An end record whose receivers Redis could not name: failed at every target, so it is
    parked and retried like a failed delivery (the retry asks Redis again), never marked sent
    undelivered. Not sent to every target instead: one never given the alert would get the
    end of an alert it never had."""
    return Outcome(failed=[(x, "Redis unavailable: which receivers took the alert is "
                               "unknown") for x in targets])


def _failures(outcome: Outcome) -> str:
    """Channel, host and reason of each failed target (hosts only: URLs may hold secrets)."""
    return "; ".join(f"{x.channel} {x.host}: {why}" for x, why in outcome.failed)


def install(app: faust.App, ctx: WorkerContext, deliver: Delivery | None = None) -> Any:
    """Declare the notify agent and, next to it, the retry agent; returns the notify agent.

    ``deliver`` sends to the external channels (webhooks, Alertmanager); None: log only.
    """
    notifier = Notifier(ctx, deliver)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        notifier.partitions_assigned(assigned)

    @app.agent(ctx.topology.topic(t.SLA_ALERTS), name="notify")
    async def notify(stream: faust.StreamT) -> None:
        async for events in batches(stream, ctx.settings, stage=STAGE):
            with crash_on_error(STAGE):
                await notifier.alerts(events, ctx.outbox(STAGE))
                observe_stage_latency(STAGE, events)

    @app.agent(ctx.topology.topic(t.NOTIFY_RETRY), name="notify-retry")
    async def notify_retry(stream: faust.StreamT) -> None:
        async for events in batches(stream, ctx.settings, stage=RETRY_STAGE):
            with crash_on_error(RETRY_STAGE):
                await notifier.retries(events, ctx.outbox(RETRY_STAGE))

    return notify
