"""Classification and routing, and the triage agent for appeals the model is unsure of.

:func:`classify_and_route` runs inside the intake agent, on the batch it has just registered
(classification vectorises a whole batch far cheaper than one text at a time, and routing in
the same step saves a hop: an appeal is consumed once on its way to the SLA agent). An appeal
the model is unsure of goes to the human triage queue instead of being routed on a guess: a
``TriageItem`` for people and a pending copy for the triage agent, keyed by ``appeal_id``.

The triage agent keeps the pending appeals in a table until a triage decision (a ``triaged``
lifecycle event) names the category, then routes the appeal once; the first decision wins. A
decision that overtakes its pending appeal (different topics) waits in the same table for it,
but not for ever: once the stream has moved :data:`EARLY_DECISION_WAIT` past it (message
timestamps, so a replay behaves like the first run) it is dead-lettered as ``not_triaged`` (an
unknown id, an appeal that was routed directly). The table is written only after the batch's
routed records are acknowledged (:class:`_Staged`).

A pending appeal waits for its decision no longer than ``APPEALS_TRIAGE_MAX_WAIT`` (an
``incident`` or ``hotline`` one ``APPEALS_TRIAGE_INCIDENT_MAX_WAIT``: :data:`SHORT_WAIT_REGIMES`;
the wait is stored with the copy) (message time again, of the decisions topic alone: the triage
clock of :class:`EarlyDecisions`): then it is routed to its region's triage desk
(:func:`_time_out`), so the SLA agent tracks its deadlines from registration, and its copy
(text, address) leaves the table. A decision that comes after that redirects it from the desk
(:func:`_late_redirect`). Gauges (``appeals_triage_waiting``,
``appeals_triage_oldest_wait_seconds``, by regime) show what waits.

That clock stands still on a partition where no decision arrives (triage traffic is thin,
and with several partitions one can be quiet for days), and its appeals waited unrouted and
untracked for as long. So the clock is written into the log: every
``APPEALS_TRIAGE_TICK_INTERVAL`` a timer (:func:`send_ticks`) puts a tick record
(:data:`TICK_KEY`) on the decisions topic's partitions this worker owns where something waits
and no decision has moved the clock for that interval. The agent reads a tick as it reads any record
(its timestamp moves the partition's time on) and then routes what is due; a replay reads the
same ticks and decides as the first run did.

Both inputs are checked when they arrive (:func:`check_pending`, :func:`_on_decision`): a record
the routing could not use goes to the dead-letter topic with the reason instead of waiting in
the table for the decision that would trip over it. A decision applied to a stored record that
still fails (one stored before the check, replayed from the changelog) is dead-lettered as
``unprocessable``, and so is any other event that raises ``KeyError``, ``ValueError`` or
``TypeError`` while it is applied: one bad record never stops the agent. A decision stamped
long before its appeal's registration is dead-lettered ``before_period`` where it meets the
appeal (:class:`PastTolerance`), the appeal left undecided for the corrected one.

An appeal registered with ``importance: high`` is routed ``urgent`` whatever the classifier
thinks (:func:`is_urgent`): the SLA agent picks the policy's shorter ``urgent_answer`` from that
flag alone, and for the incident regime the importance is what decides it (DESIGN §2: 4 working
hours for high importance instead of 8).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from aiokafka.partitioner import murmur2

from monitoring import metrics
from schemas.records import (
    CATEGORIES,
    REGIMES,
    LifecycleEvent,
    RoutedAppeal,
    TriageCandidate,
    TriageFeedback,
    TriageItem,
)
from schemas.validation import (
    InvalidEvent,
    check_version,
    is_datetime,
    parse_datetime,
    validate,
)
from streams import topics as t
from streams.clock import SlaClock
from workers.routing import RouteInput, Router
from workers.routing.model import RoutingRules
from workers.runtime import (
    Outbox,
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)
from workers.sla.deadline_service import policy_book

log = logging.getLogger(__name__)

STAGE = "route"
TRIAGE_STAGE = "triage"

#: The fields of a registered appeal that classification and routing read (``importance``
#: for :func:`is_urgent`; it travels in the triage pending copy too; ``duplicate_of``, the
#: intake's near-duplicate flag, is not read by routing but carried into the routed record).
ROUTE_FIELDS = ("appeal_id", "regime", "region", "registered_at", "channel", "subcategory",
                "municipality", "text", "address", "complaint_about", "importance", "subject",
                "duplicate_of", "submitted_at")
#: ``schema_version`` of a pending copy (``appeals.triage.pending``, no schema file of its own).
#: Copies written before it was added carry none and are read as version 1.
PENDING_VERSION = 1
#: The values of a registered appeal's ``importance`` (``registered-appeal`` schema), or null.
IMPORTANCES = ("low", "normal", "high")


def is_urgent(appeal: dict[str, Any], classifier_urgent: bool) -> bool:
    """The urgency an appeal is routed with when no human decided it: the classifier's, or the
    intake's ``importance: high``. The routed record's ``urgent`` is the only thing the SLA
    reads to pick the policy's ``urgent_answer``, so an importance the source already set (an
    incident marked high by the ЦУР) must not be lost to a classifier that reads only the text.
    A pending copy stored before ``importance`` was carried has none: it is not made urgent."""
    return bool(classifier_urgent) or appeal.get("importance") == "high"


def _rule_subcategories(rules: RoutingRules) -> frozenset[str]:
    """The subcategories the routing rules' tables name (built once per rules object)."""
    subs: set[str] = set()
    for region in rules.regions.values():
        for route in region.routes.values():
            subs.update(route.subcategories)
        for muni in region.municipalities.values():
            for route in muni.routes.values():
                subs.update(route.subcategories)
    return frozenset(subs)


def known_subcategories(rules: RoutingRules | None) -> frozenset[str]:
    """The subcategories the routing rules or the SLA policies name: codes an operator wrote,
    never a source's free text. The policies are the process's book of ``rules``
    (``deadline_service.policy_book``, the SLA agent's), so a reload that changes them
    changes what the routed record may carry at once."""
    policies = policy_book(rules).subcategories()
    if rules is None:
        return policies
    return rules.derived("route.subcategories", _rule_subcategories) | policies


def routed_subcategory(value: Any, rules: RoutingRules | None) -> str | None:
    """The subcategory the routed record carries: ``value`` when the rules or the policies
    know it, else null. A source's subcategory is free text (the ПОС sends its name, a form
    whatever was typed: "Отопление +79137770011" reached appeals.routed and the SLA state's
    changelog), and appeals.routed carries no personal data. Routing still matches the
    appeal's own value (:func:`route_input`); only what is stored is limited to known codes,
    which are all the router and the deadline policies can use."""
    if not isinstance(value, str):
        return None
    if value in policy_book(rules).subcategories() or (
            rules is not None and value in rules.derived("route.subcategories",
                                                          _rule_subcategories)):
        return value
    return None


def routed_record(appeal: dict[str, Any], decision: Any, category: str, urgent: bool,
                  confidence: float, classifier_version: str | None,
                  routed_at: datetime | None = None,
                  rules: RoutingRules | None = None) -> RoutedAppeal:
    """The routed record of ``appeal``. ``routed_at`` is read on the SLA clock
    (``ctx.clock.now_dt()``), the clock intake reads appeals on (``registered_at`` is at
    most that reading): on the demo's sped-up clock the wall clock put the routing weeks
    before the registration. None (tools and tests without a clock) is the wall clock."""
    if routed_at is None:
        routed_at = datetime.now(UTC)
    return RoutedAppeal(
        appeal_id=appeal["appeal_id"],
        regime=appeal["regime"],
        region=appeal["region"],
        registered_at=appeal["registered_at"],
        category=category,
        urgent=urgent,
        confidence=round(float(confidence), 4),
        authority_id=decision.authority_id,
        routing_level=decision.level,
        rule_version=decision.rule_version,
        routed_at=routed_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        channel=appeal.get("channel"),
        # ``rules``: the router's, whose subcategories are known besides the policies'.
        subcategory=routed_subcategory(appeal.get("subcategory"), rules),
        classifier_version=classifier_version,
        parent_authority_id=decision.parent_authority_id,
        municipality=decision.municipality,
        complaint=bool(appeal.get("complaint_about")),
        # The body's id as the rules identify it: the field as typed may name an official,
        # and appeals.routed holds no personal data (review of session 15). The SLA's
        # redirect check needs no more: it can identify no body the router could not.
        complaint_about=decision.complaint_about,
        # The authority's own zone (rules: ``timezone:``): its deadlines are counted in it.
        timezone=decision.timezone,
        # The intake's near-duplicate flag, so the authority sees it is a resend.
        duplicate_of=appeal.get("duplicate_of"),
        received_at=_received_at(appeal),
    )


def _received_at(appeal: dict[str, Any]) -> str | None:
    """The appeal's ``submitted_at`` when it is another moment than ``registered_at`` (a 59-FZ
    letter intake read late), else None: the SLA agent's past tolerance counts from the
    earlier of the two, since a body stamps its events from the receipt. None too for a
    pending copy stored before the field was carried, or one not an RFC 3339 date-time."""
    received = appeal.get("submitted_at")
    if not isinstance(received, str) or not is_datetime(received):
        return None
    if parse_datetime(received) == parse_datetime(appeal["registered_at"]):
        return None
    return received


def route_input(appeal: dict[str, Any], category: str) -> RouteInput:
    return RouteInput(
        appeal_id=appeal["appeal_id"],
        region_code=appeal["region"],
        category=category,
        subcategory=appeal.get("subcategory"),
        municipality=appeal.get("municipality"),
        text=appeal.get("text") or "",
        address=appeal.get("address"),
        complaint_about=appeal.get("complaint_about"),
        subject=appeal.get("subject"),
    )


async def classify_and_route(ctx: WorkerContext, outbox: Outbox, appeals: Sequence[dict[str, Any]],
                             classifier: Any, router: Router) -> None:
    """Classify a batch of registered appeals; route the sure ones, queue the rest for triage."""
    if not appeals:
        return
    threshold = ctx.settings.triage_confidence
    results = classifier.classify_batch([a["text"] for a in appeals])
    now = ctx.clock.now_dt()
    for appeal, result in zip(appeals, results, strict=True):
        metrics.child(metrics.CLASSIFIED, result.category, str(result.urgent).lower()).inc()
        if not result.confidence >= threshold:  # a NaN confidence goes to triage too
            await _to_triage(outbox, appeal, result)
            continue
        decision = router.route(route_input(appeal, result.category))
        record = routed_record(appeal, decision, result.category,
                               is_urgent(appeal, result.urgent), result.confidence,
                               result.model_version, now, router.rules)
        await outbox.send_record(t.ROUTED, appeal["appeal_id"], record)
        metrics.child(metrics.ROUTED, result.category, decision.level).inc()


async def _to_triage(outbox: Outbox, appeal: dict[str, Any], result: Any) -> None:
    item = TriageItem(
        appeal_id=appeal["appeal_id"],
        region=appeal["region"],
        registered_at=appeal["registered_at"],
        candidates=[TriageCandidate(c, round(float(s), 4)) for c, s in result.top3],
        regime=appeal["regime"],
        # What the appeal will be routed with unless the desk says otherwise: a high-importance
        # incident or a call the operator marked urgent is urgent whatever the text reads like.
        urgent=is_urgent(appeal, result.urgent),
        classifier_version=result.model_version,
    )
    await outbox.send_record(t.TRIAGE, appeal["appeal_id"], item)
    keep = {k: appeal.get(k) for k in ROUTE_FIELDS}
    keep["urgent"] = result.urgent
    keep["confidence"] = result.confidence
    # The classifier's own top category, so the desk's decision becomes a training line that
    # says what the model had guessed (``classify export-feedback``); it was never set.
    keep["classifier_category"] = result.category
    keep["classifier_version"] = result.model_version
    keep["schema_version"] = PENDING_VERSION
    await outbox.send(t.TRIAGE_PENDING, appeal["appeal_id"].encode(), orjson.dumps(keep))
    metrics.TRIAGED.inc()


def install_triage(app: faust.App, ctx: WorkerContext, router: Router) -> Any:
    """The triage agent: pending appeals and human decisions meet here, keyed by appeal_id."""
    settings = ctx.settings
    source = ctx.topology.channel_of(t.TRIAGE_PENDING, t.TRIAGE_DECISIONS)
    decisions_topic = t.topic_name(settings, t.TRIAGE_DECISIONS)
    pending = app.Table(
        "triage-pending",
        partitions=settings.partitions,
        key_type=bytes,
        use_partitioner=True,
    )
    pending_topic = t.topic_name(settings, t.TRIAGE_PENDING)
    early = EarlyDecisions(settings.partitions, settings.triage_max_wait,
                           settings.triage_short_wait)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        early.needs_rebuild = True

    def assigned_partitions() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == decisions_topic}

    def owned_now() -> set[int]:
        """For the gauges, read at each scrape: the partitions owned now, so those revoked
        since the last batch (whose items are still in the index) are not counted."""
        try:
            return assigned_partitions()
        except Exception:  # no consumer yet (before start, or stopping): nothing owned
            return set()

    # Per regime (four values): an incident waiting an hour is news, a 59-FZ letter is not
    # (AppealsTriageWaiting's thresholds differ by regime).
    def waiting(regime: str) -> float:
        return early.copies_waiting(owned_now(), regime)[0]

    def oldest_wait(regime: str) -> float:
        return _age(early.copies_waiting(owned_now(), regime)[1], time.time())

    for regime in REGIMES:
        metrics.TRIAGE_WAITING.labels(regime).set_function(functools.partial(waiting, regime))
        metrics.TRIAGE_OLDEST_WAIT.labels(regime).set_function(
            functools.partial(oldest_wait, regime))

    @app.agent(source, name="triage")
    async def triage(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings, stage=TRIAGE_STAGE):
            with crash_on_error(TRIAGE_STAGE):
                if early.needs_rebuild:
                    early.rebuild(pending.items(), assigned_partitions())
                outbox = ctx.outbox(TRIAGE_STAGE)
                early.batch_in_flight = True
                try:
                    await process_batch(outbox, pending, router, early, events,
                                        decisions_topic, assigned_partitions, clock=ctx.clock,
                                        pending_topic=pending_topic,
                                        past_tolerance=settings.sla_past_tolerance)
                finally:
                    early.batch_in_flight = False
                observe_stage_latency(TRIAGE_STAGE, events)

    interval = settings.triage_tick_interval

    @app.timer(interval)
    async def triage_clock() -> None:
        try:
            if early.needs_rebuild:
                # After a (re)start or a rebalance the index is rebuilt by the first batch;
                # on partitions where nothing arrives there is none, and the ticks that would
                # bring one are chosen from the index.
                if early.batch_in_flight or not _tables_ready(app):
                    return
                early.rebuild(pending.items(), assigned_partitions())
            due = early.due_ticks(owned_now(), time.monotonic())
            if due:
                await send_ticks(ctx.outbox(TRIAGE_STAGE), due)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker error: the next round sends them (due_ticks)
            log.warning("triage: clock ticks not sent (%s); the next round tries again",
                        type(exc).__name__)

    return triage


def _tables_ready(app: Any) -> bool:
    """The tables are recovered and no rebalance is under way (Faust's own flags): an index
    rebuilt before would miss what the recovery has still to bring back."""
    if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
        return False
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    return recovery is not None and recovery.completed.is_set()


async def send_ticks(outbox: Outbox, partitions: Sequence[int]) -> None:
    """A clock tick to each of ``partitions`` of ``appeals.triage.decisions``
    (:meth:`EarlyDecisions.due_ticks`), acknowledged before this returns.

    Why the decisions topic: it is internal (the SLA agent's forward of ``triaged`` events
    alone writes it) and the agent reads it with the pending topic, co-partitioned, so a tick
    on partition p moves the time of the appeals on p. Stamped by the producer like every other
    record there (the wall clock), so once the agent reads it every decision stamped before has
    been read. Sent to the partition itself: no key would hash to each of them."""
    for p in partitions:
        await outbox.send(t.TRIAGE_DECISIONS, TICK_KEY, TICK_VALUE, partition=p)
    await outbox.flush()


#: How long a decision that overtook its pending appeal waits for it, in seconds of the
#: pending topic's own time (message timestamps of ``appeals.triage.pending`` on the decision's
#: partition). A pending copy is written before its triage item can reach a human, so once that
#: topic is this far past the decision's timestamp the appeal is not coming (never triaged,
#: routed directly, an unknown id); the margin covers clock skew between the workers.
EARLY_DECISION_WAIT = 3600.0
#: The backstop for a partition whose pending topic is quiet (triage switched off by
#: ``APPEALS_TRIAGE_CONFIDENCE=0``, say): the same limit on the time of either input topic.
#: Longer, because while catching up on a backlog the small decision records run ahead of the
#: pending copies; a backlog of more than this many seconds could expire a decision early.
EARLY_DECISION_MAX_WAIT = 7 * 86400.0
#: ``APPEALS_TRIAGE_MAX_WAIT``'s default: :class:`EarlyDecisions` built without settings.
TRIAGE_MAX_WAIT = 86400.0
#: ``APPEALS_SLA_PAST_TOLERANCE``'s default: :func:`process_batch` called without settings.
SLA_PAST_TOLERANCE = 3 * 86400.0
#: The regimes whose pending copies wait ``APPEALS_TRIAGE_INCIDENT_MAX_WAIT`` instead: those
#: whose first deadline is counted in working hours (DESIGN §2: an incident's first public
#: response within 1-8 working hours; a hotline callback is set by the region, and the packaged
#: policy gives 8 working hours, 4 when urgent). A day in triage, where an appeal has no SLA
#: state, is past either before anybody is warned. ``fz59`` (30 days) and ``pos`` (8-10 working
#: days) keep ``APPEALS_TRIAGE_MAX_WAIT``.
SHORT_WAIT_REGIMES = frozenset({"incident", "hotline"})
#: The Kafka key of a clock tick on ``appeals.triage.decisions`` (:func:`send_ticks`). No appeal
#: id can be it: ours are 24 hex digits, and ``lifecycle-event`` refuses an id with a control
#: character (an authority's ``triaged`` event with appeal id ``"\u0000triage-tick"`` was
#: schema-valid, forwarded here under this very key and dropped as a tick without a trace).
TICK_KEY = b"\x00triage-tick"
#: The value of a tick. A record under :data:`TICK_KEY` is a tick only with exactly this value;
#: anything else so keyed is dead-lettered (``reserved_key``), never dropped unseen.
TICK_VALUE = b'{"tick":"triage clock"}'


def _age(since: float | None, now: float) -> float:
    """Seconds from ``since`` to ``now``; 0 for nothing waiting (the gauge's convention)."""
    return 0.0 if since is None else max(0.0, now - since)


class _Waits:
    """Keys waiting since a moment, per partition: counts, and the oldest first without a scan
    (a heap per partition; an entry whose key no longer waits with that moment is stale and
    dropped when it comes up). :class:`EarlyDecisions` keeps two: the pending appeals waiting
    for a decision and the early decisions waiting for their appeal.

    Why a heap: :meth:`EarlyDecisions.expired` runs on every batch, and a scan of every
    waiting decision cost 12 ms a batch at 100,000 waiting (84 ms at 1,000,000), i.e. per
    event when the stream is quiet (review of session 13)."""

    def __init__(self) -> None:
        self.since: dict[bytes, tuple[int, float]] = {}
        self._heaps: dict[int, list[tuple[float, bytes]]] = {}
        self._counts: dict[int, int] = {}

    def add(self, key: bytes, partition: int, since: float) -> None:
        old = self.since.get(key)
        if old == (partition, since):
            return  # already indexed: one heap entry per wait
        if old is not None:
            self._counts[old[0]] -= 1
        self.since[key] = (partition, since)
        self._counts[partition] = self._counts.get(partition, 0) + 1
        heapq.heappush(self._heaps.setdefault(partition, []), (since, key))

    def drop(self, key: bytes) -> None:
        old = self.since.pop(key, None)
        if old is not None:
            self._counts[old[0]] -= 1

    def count(self, partition: int) -> int:
        return self._counts.get(partition, 0)

    def oldest(self, partition: int) -> float | None:
        heap = self._heaps.get(partition)
        while heap:
            since, key = heap[0]
            if self.since.get(key) == (partition, since):
                return since
            heapq.heappop(heap)
        return None

    def due(self, partition: int, limit: float) -> list[bytes]:
        """The keys of ``partition`` waiting since ``limit`` or before, oldest first; they
        wait no more."""
        return self.pop_while(partition, lambda since: since <= limit)

    def pop_while(self, partition: int, over: Callable[[float], bool]) -> list[bytes]:
        """The keys of ``partition``, oldest first, while ``over(since)`` says their wait is
        over; they wait no more. ``over`` must hold for every moment before one it holds for:
        the walk stops at the first key still in time."""
        out = []
        while (since := self.oldest(partition)) is not None and over(since):
            key = heapq.heappop(self._heaps[partition])[1]
            self.drop(key)
            out.append(key)
        return out


class _Copies:
    """The pending copies waiting for a decision: by when their wait ends (``since`` plus the
    copy's own wait, :attr:`due`: the timeouts pop them in that order) and, per regime, by
    ``since`` (:attr:`regimes`: the gauges' count and oldest wait).

    Why two orders: copies of one partition wait for different times (an incident an hour, a
    59-FZ letter a day), so the oldest copy is not the first due, and a walk by ``since`` would
    stop at a day-long wait with an incident behind it already due."""

    def __init__(self) -> None:
        #: key -> (partition, since + wait).
        self.due = _Waits()
        #: regime (None: none this version knows, a copy stored before check_pending) ->
        #: key -> (partition, since).
        self.regimes: dict[str | None, _Waits] = {}
        self._regime: dict[bytes, str | None] = {}

    def add(self, key: bytes, partition: int, since: float, wait: float,
            regime: str | None) -> None:
        old = self._regime.get(key, regime)
        if old != regime:
            self.regimes[old].drop(key)
        self._regime[key] = regime
        self.due.add(key, partition, since + wait)
        self.regimes.setdefault(regime, _Waits()).add(key, partition, since)

    def drop(self, key: bytes) -> None:
        self.due.drop(key)
        if key in self._regime:
            self.regimes[self._regime.pop(key)].drop(key)

    def __len__(self) -> int:
        return len(self._regime)

    def count(self, partition: int, regime: Any = ...) -> int:
        """How many wait on ``partition`` (of ``regime``; all of them without)."""
        if regime is ...:
            return self.due.count(partition)
        waits = self.regimes.get(regime)
        return 0 if waits is None else waits.count(partition)

    def oldest(self, partition: int, regime: Any = ...) -> float | None:
        """Since when the oldest of ``partition`` (of ``regime``; of any without) waits."""
        found = [w.oldest(partition) for r, w in self.regimes.items()
                 if regime is ... or r == regime]
        return min((s for s in found if s is not None), default=None)

    def pop_due(self, partition: int, clock: float) -> list[bytes]:
        """The keys of ``partition`` whose wait is over at triage clock ``clock``, first due
        first; they wait no more."""
        out = self.due.pop_while(partition, lambda due: due <= clock)
        for key in out:
            self.drop(key)
        return out


class EarlyDecisions:
    """Decisions waiting in the table for their pending appeal, pending appeals waiting for
    their decision (:attr:`copies`), and the stream times that end both waits. What waits, with
    its message timestamp (``since``) and partition, is in the changelog-backed table: this
    index is rebuilt from the table after every rebalance, so a restart neither forgets a wait
    nor starts it again.

    A pending appeal waits ``max_wait`` (``APPEALS_TRIAGE_MAX_WAIT``; ``short_wait``,
    ``APPEALS_TRIAGE_INCIDENT_MAX_WAIT``, for :data:`SHORT_WAIT_REGIMES`: :meth:`wait_for`) from
    its own message time (``since``) in its partition's triage clock (:attr:`decision_time`):
    the latest message
    time read so far on that partition of the decisions topic, its decisions and clock ticks
    in offset order. A decision is keyed like its appeal, so once that clock is past the wait
    every decision stamped within it has been read; the decision (or tick) that takes it there
    times the appeal out before anything after it is applied, and a decision read after is
    late (it redirects the appeal from the desk: :func:`_late_redirect`).

    Why that topic alone: whether a decision is in time must follow from the log, not from how
    a fetch interleaved the two topics or where a batch ended (a replay after a crash splits
    them otherwise). With the pending topic's time in the clock, or with the timeouts run once
    after a batch, the same decision routed the appeal directly in one run and redirected it
    from the desk in the replay, where the SLA agent kept the first routing and dropped the
    second as a duplicate: the human decision was lost. Not the wall clock, so a replay times
    out what the first run timed out. A partition where no decision arrives would keep its
    appeals waiting for good: :meth:`due_ticks` names those that need a clock tick written to
    them (:func:`send_ticks`), which moves their clock on as a decision does."""

    def __init__(self, partitions: int, max_wait: float = TRIAGE_MAX_WAIT,
                 short_wait: float | None = None) -> None:
        self.partitions = partitions
        self.max_wait = float(max_wait)
        self.short_wait = self.max_wait if short_wait is None else float(short_wait)
        #: Pending appeals waiting for a decision, by due time and by regime.
        self.copies = _Copies()
        #: Early decisions waiting for their pending appeal: key -> (partition, since).
        self.decisions = _Waits()
        self.pending_time: dict[int, float] = {}
        self.stream_time: dict[int, float] = {}
        #: The triage clock: per partition, the latest message time of the decisions topic
        #: (decisions and ticks) read there. ``APPEALS_TRIAGE_MAX_WAIT`` is counted on it.
        self.decision_time: dict[int, float] = {}
        #: Per partition, when (``time.monotonic()``) a decision last moved its triage clock
        #: on, or a tick was last sent to it; none yet: due a tick as soon as something waits
        #: there. A tick read does not count: then a quiet partition gets one tick a round of
        #: the timer, not one every other round. Nor does a pending copy: it moves no clock
        #: the wait is counted on.
        self.advanced: dict[int, float] = {}
        #: ``now`` of the previous :meth:`due_ticks` (the timer's previous round).
        self._last_round = float("-inf")
        self.needs_rebuild = True
        #: The agent is in a batch: the tick timer must not rebuild the index then, it would
        #: miss the batch's table writes, staged until the flush.
        self.batch_in_flight = False

    def observe(self, partition: int, timestamp: float | None, *, pending: bool,
                tick: bool = False) -> float:
        """Advance the partition's stream times; returns the event's time. ``tick``: the record
        is a clock tick (:data:`TICK_KEY`); ``pending``: it is from the pending topic, else
        from the decisions topic."""
        ts = float(timestamp) if timestamp is not None and timestamp > 0 else time.time()
        if ts > self.stream_time.get(partition, float("-inf")):
            self.stream_time[partition] = ts
        if pending:
            if ts > self.pending_time.get(partition, float("-inf")):
                self.pending_time[partition] = ts
        elif ts > self.decision_time.get(partition, float("-inf")):
            self.decision_time[partition] = ts
            if not tick:
                self.advanced[partition] = time.monotonic()
        return ts

    def clock(self, partition: int) -> float | None:
        """The partition's triage clock (None before its first decision or tick)."""
        return self.decision_time.get(partition)

    def late(self, since: float, clock: float, wait: float | None = None) -> bool:
        """Whether an appeal waiting ``wait`` (``max_wait`` without) since ``since`` is past
        it at triage clock ``clock``: :meth:`timed_out` routes it to the desk then (the same
        sum, so the same verdict), so a decision read at that clock comes after the timeout,
        wherever the batches and fetches split the log."""
        return clock >= since + (self.max_wait if wait is None else wait)

    def wait_for(self, appeal: dict[str, Any]) -> float:
        """How long a pending copy of ``appeal`` waits for a decision, by its regime; stored
        with the copy (:func:`_on_pending`), so the setting of the day it was stored holds."""
        return self.short_wait if appeal.get("regime") in SHORT_WAIT_REGIMES else self.max_wait

    def stored_wait(self, value: dict[str, Any]) -> float:
        """The wait stored with a pending copy (``wait``); :meth:`wait_for` of the copy for one
        stored by a version without it, or with a value that is no positive number."""
        wait = value.get("wait")
        if (isinstance(wait, int | float) and not isinstance(wait, bool)
                and 0 < wait < float("inf")):
            return float(wait)
        return self.wait_for(value)

    @property
    def waiting(self) -> dict[bytes, tuple[int, float]]:
        """The early decisions waiting: key -> (partition, since)."""
        return self.decisions.since

    def track(self, key: bytes, value: Any) -> None:
        if _is_early(value):
            self.decisions.add(key, int(value.get("p", -1)), float(value.get("since", 0.0)))
            self.copies.drop(key)
        elif _is_waiting_copy(value):
            self.decisions.drop(key)
            self.copies.add(key, *self._copy_wait(key, value), _regime(value))
        else:
            self.decisions.drop(key)
            self.copies.drop(key)

    def _copy_wait(self, key: bytes, value: dict[str, Any]) -> tuple[int, float, float]:
        """(partition, since, wait) of a stored pending appeal. One stored before the wait had
        a limit has neither partition nor since: its key's partition, and its registration
        time (intake writes the pending copy at registration); for the wait,
        :meth:`stored_wait`."""
        p = value.get("p")
        if not isinstance(p, int) or isinstance(p, bool):
            p = self.partition_of(key)
        since = value.get("since")
        if not isinstance(since, int | float) or isinstance(since, bool):
            since = _timestamp(value.get("registered_at"))
        return p, float(since), self.stored_wait(value)

    def timed_out(self, partitions: set[int]) -> list[bytes]:
        """The pending appeals of ``partitions`` that waited their wait (:meth:`stored_wait`)
        of their partition's triage clock, first due first; they wait no more (the caller
        routes them to the desk)."""
        out: list[bytes] = []
        for p in partitions:
            clock = self.decision_time.get(p)
            if clock is not None:
                out.extend(self.copies.pop_due(p, clock))
        return out

    def copies_waiting(self, partitions: set[int],
                       regime: Any = ...) -> tuple[int, float | None]:
        """How many pending appeals of ``partitions`` (of ``regime``; of any without) wait
        for a decision, and since when the oldest of them does (None for none)."""
        count, oldest = 0, None
        for p in partitions:
            count += self.copies.count(p, regime)
            since = self.copies.oldest(p, regime)
            if since is not None and (oldest is None or since < oldest):
                oldest = since
        return count, oldest

    def due_ticks(self, partitions: set[int], now: float) -> list[int]:
        """The partitions of ``partitions`` a clock tick must be sent to in this round of the
        tick timer (``now``: ``time.monotonic()``): something waits there (a pending appeal or
        an early decision) and no decision has moved their triage clock on since the previous
        round, an interval ago. Each is marked as ticked now: the next round sends the next
        tick, whether or not this one was read (or sent: a failed send is tried again then).

        Why rounds, not "quiet for the interval": the timer's rounds drift by milliseconds
        either way, and a partition ticked one round must be due again the next."""
        last_round, self._last_round = self._last_round, now
        out = []
        for p in sorted(partitions):
            last = self.advanced.get(p)
            if last is not None and last > last_round:
                continue
            if not self.copies.count(p) and self.decisions.oldest(p) is None:
                continue
            self.advanced[p] = now
            out.append(p)
        return out

    def partition_of(self, key: bytes) -> int:
        """The table partition of ``key`` (the tables use Kafka's default partitioner)."""
        return (murmur2(key) & 0x7FFFFFFF) % self.partitions

    def rebuild(self, items: Any, assigned: set[int]) -> None:
        self.decisions = _Waits()
        self.copies = _Copies()
        for key, value in items:
            if not isinstance(key, bytes):
                continue
            if _is_waiting_copy(value):
                p, since, wait = self._copy_wait(key, value)
                if p in assigned:
                    self.copies.add(key, p, since, wait, _regime(value))
                continue
            if not _is_early(value):
                continue
            p = value.get("p")
            if not isinstance(p, int):  # stored before the wait had a limit
                p = self.partition_of(key)
            if p not in assigned:
                continue
            since = value.get("since")
            if not isinstance(since, int | float):
                since = _timestamp(value["decision"].get("at"))
            self.decisions.add(key, p, float(since))
        self.needs_rebuild = False
        if self.waiting:
            log.info("triage: %d early decisions waiting for their appeal", len(self.waiting))
        if self.copies:
            log.info("triage: %d appeals waiting for a triage decision", len(self.copies))

    def expired(self, partitions: set[int]) -> list[bytes]:
        """The decisions of ``partitions`` whose wait is over, oldest first; they wait no
        more (the caller dead-letters them). Both limits are reached by the oldest ``since``
        first, so the walk stops at the first decision still in time."""
        out = []
        for p in partitions:
            out.extend(self.decisions.pop_while(p, self._decision_over(p)))
        return out

    def _decision_over(self, partition: int) -> Callable[[float], bool]:
        """Whether an early decision of ``partition`` waiting since a moment waited long
        enough, at the partition's present stream times."""
        pending_time = self.pending_time.get(partition, float("-inf"))
        stream_time = self.stream_time.get(partition, float("-inf"))

        def over(since: float) -> bool:
            return (pending_time - since >= EARLY_DECISION_WAIT
                    or stream_time - since >= EARLY_DECISION_MAX_WAIT)

        return over


def _is_early(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("decision"), dict)


def _is_waiting_copy(value: Any) -> bool:
    """A pending appeal stored in the table, no decision for it yet (neither a waiting
    decision nor a ``done`` marker)."""
    return (isinstance(value, dict) and "appeal_id" in value and "decision" not in value
            and not value.get("done"))


def _regime(value: dict[str, Any]) -> str | None:
    """A pending copy's regime for the gauges' label: one of :data:`REGIMES`, else None (a
    copy stored before :func:`check_pending`: counted in no regime's gauge, it is
    dead-lettered when its wait ends)."""
    regime = value.get("regime")
    return regime if isinstance(regime, str) and regime in REGIMES else None


def _timestamp(at: Any) -> float:
    try:
        return parse_datetime(at).timestamp()
    except (AttributeError, TypeError, ValueError):
        return 0.0


class _Staged:
    """A batch's table writes, applied only after the outbox flush: a ``done`` marker in the
    changelog must never describe a routed record the broker did not take (the replayed
    decision would then be skipped and the appeal lost). Reads see the staged writes, and
    ``on_change`` (the index's :meth:`EarlyDecisions.track`) sees each at once: the timeouts
    run event by event, and a copy stored by one event waits from then on."""

    def __init__(self, table: Any,
                 on_change: Callable[[bytes, Any], None] | None = None) -> None:
        self.table = table
        self.changes: dict[bytes, Any] = {}
        self.on_change = on_change

    def get(self, key: bytes) -> Any:
        if key in self.changes:
            return self.changes[key]
        return self.table.get(key)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.changes[key] = value
        if self.on_change is not None:
            self.on_change(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.changes[key] = None
        if self.on_change is not None:
            self.on_change(key, None)

    def commit(self, owned: Callable[[bytes], bool] | None = None) -> None:
        """Apply the writes; with ``owned``, skip keys of partitions revoked meanwhile (a
        rebalance can complete during the flush: the new owner replays those events, and a
        late write here would put a stale value in its changelog)."""
        for key, value in self.changes.items():
            if owned is not None and not owned(key):
                continue
            if value is not None:
                self.table[key] = value
            elif self.table.get(key) is not None:
                del self.table[key]
        self.changes = {}


async def process_batch(outbox: Outbox, table: Any, router: Router, early: EarlyDecisions,
                        events: Sequence[Any], decisions_topic: str,
                        assigned: Callable[[], set[int]] | None = None, *,
                        clock: SlaClock | None = None,
                        pending_topic: str | None = None,
                        past_tolerance: float = SLA_PAST_TOLERANCE) -> None:
    """One batch of pending appeals and decisions; the table is written after the flush.
    ``clock`` is the SLA clock the routed records' ``routed_at`` is read on (None: the wall
    clock, for tests). ``pending_topic`` names the pending topic in dead letters of pending
    appeals that time out (None: the decisions topic's prefix with the pending topic's name).
    ``past_tolerance``: ``APPEALS_SLA_PAST_TOLERANCE`` (:class:`PastTolerance`).

    The timeouts run event by event: before a record of partition p is applied, the appeals
    of p past their wait at p's triage clock (:class:`EarlyDecisions`), which that record may
    have moved on, go to the desk; and once more after the last record, for copies stored
    already past their wait. So what a decision does depends on the log alone, not on where
    the batch ends: run once after the batch, the timeouts let a decision read after the tick
    that ended its appeal's wait route the appeal directly when both came in one batch, while
    with a batch boundary between them the same log routed it to the desk and redirected it."""
    sla_clock = clock or SlaClock()
    now = sla_clock.now_dt()
    past = PastTolerance(sla_clock, past_tolerance)
    if pending_topic is None:
        pending_topic = decisions_topic.removesuffix(t.TRIAGE_DECISIONS) + t.TRIAGE_PENDING
    staged = _Staged(table, early.track)
    touched: set[int] = set()
    for event in events:
        msg = event.message
        touched.add(msg.partition)
        is_decision = msg.topic == decisions_topic
        if msg.key == TICK_KEY and is_decision and msg.value == TICK_VALUE:
            # A clock tick (send_ticks): its time, not a decision's, nor a pending copy's
            # (the early-decision wait counts pending copies only).
            early.observe(msg.partition, msg.timestamp, pending=False, tick=True)
            await _time_out(outbox, staged, early, {msg.partition}, router, pending_topic, now)
            continue
        at = early.observe(msg.partition, msg.timestamp, pending=not is_decision)
        await _time_out(outbox, staged, early, {msg.partition}, router, pending_topic, now)
        if msg.key == TICK_KEY:
            await outbox.dead_letter(event, stage=TRIAGE_STAGE, reason="reserved_key", detail=(
                "keyed as the triage agent's clock tick (\\x00triage-tick) but not a tick; "
                "no appeal id may be that key"))
            continue
        try:
            data = parse_event(msg.value)
            if is_decision:
                await _on_decision(outbox, staged, router, data, at=at,
                                   partition=msg.partition, offset=msg.offset, now=now,
                                   key=msg.key, clock=early.clock(msg.partition), past=past)
            else:
                await _on_pending(outbox, staged, router, data, now=now, key=msg.key, at=at,
                                  partition=msg.partition, offset=msg.offset, early=early,
                                  past=past, decisions_topic=decisions_topic)
        except InvalidEvent as exc:
            await outbox.dead_letter(event, stage=TRIAGE_STAGE, reason=exc.reason,
                                     detail=exc.detail)
        except (KeyError, ValueError, TypeError) as exc:
            # Not a check's verdict but a fault while applying the event (a stored value of a
            # shape nobody foresaw, say). Uncaught it would end the process in crash_on_error,
            # and the replayed batch would end the next one the same way. Each handler writes
            # the table and sends only after everything that can raise, so nothing of the event
            # is half-applied. The type (and a missing key's name) only: never the payload.
            log.warning("triage: cannot apply %s[%d]@%d: %s", msg.topic, msg.partition,
                        msg.offset, type(exc).__name__)
            await outbox.dead_letter(event, stage=TRIAGE_STAGE, reason="unprocessable",
                                     detail=_fault(exc))
    await _expire_early(outbox, staged, early, touched, decisions_topic)
    await _time_out(outbox, staged, early, touched, router, pending_topic, now)
    await outbox.flush()
    if assigned is None:
        staged.commit()
    else:
        owned = assigned()
        staged.commit(lambda key: early.partition_of(key) in owned)


async def _expire_early(outbox: Outbox, staged: _Staged, early: EarlyDecisions,
                        partitions: set[int], decisions_topic: str) -> None:
    """Dead-letter (``not_triaged``) the decisions whose appeal did not come in time."""
    for key in early.expired(partitions):
        held = staged.get(key)
        if not _is_early(held):
            continue
        for entry in _early_entries(held):
            decision = entry["decision"]
            await outbox.dead_letter_raw(
                orjson.dumps(decision), key, topic=decisions_topic,
                partition=int(entry.get("p", -1)), offset=int(entry.get("offset", -1)),
                stage=TRIAGE_STAGE, reason="not_triaged",
                detail=f"no appeal {decision.get('appeal_id')} waiting for triage")
            metrics.LIFECYCLE.labels("triaged", "not_triaged").inc()
        del staged[key]


async def _time_out(outbox: Outbox, staged: _Staged, early: EarlyDecisions,
                    partitions: set[int], router: Router, pending_topic: str,
                    now: datetime) -> None:
    """Route the pending appeals nobody decided within ``APPEALS_TRIAGE_MAX_WAIT`` to their
    region's triage desk (:meth:`Router.triage_desk`, level ``triage_timeout``).

    Why: until a decision came, an appeal in triage had no routed record, so the SLA agent
    tracked none of its deadlines (59-FZ's run from registration), nobody was warned, the API
    did not know it, and its pending copy (text, address) stayed in the table for good. The
    routed record keeps the appeal's ``registered_at``, so the SLA engine counts the deadlines
    from registration and the desk's supervisors get its warnings and breaches. The category
    is the classifier's guess (``other`` without one), its confidence below the threshold
    saying so.

    The pending copy is replaced by a marker with no personal data: the desk, and the
    municipality and complaint ids routing found (what a late decision needs to be routed,
    :func:`_late_redirect`). Written like any table change of the batch, after the routed
    record is acknowledged (:class:`_Staged`): a crash in between replays the batch and routes
    the appeal to the desk again, a duplicate the SLA agent ignores (the first routing wins).

    A stored copy that fails its check (one stored before the check existed) is dead-lettered
    as ``unprocessable`` and removed: it could never be routed."""
    for key in early.timed_out(partitions):
        held = staged.get(key)
        if not _is_waiting_copy(held):
            continue
        try:
            check_pending(held)
            record, marker = _to_desk(router, held, now)
        except (InvalidEvent, KeyError, ValueError, TypeError) as exc:
            why = (f"({exc.reason}): {exc.detail}" if isinstance(exc, InvalidEvent)
                   else f"({_fault(exc)})")
            log.warning("triage: a stored pending appeal cannot be routed to the triage desk "
                        "after APPEALS_TRIAGE_MAX_WAIT (%s); dead-lettered as unprocessable",
                        exc.reason if isinstance(exc, InvalidEvent) else type(exc).__name__)
            await outbox.dead_letter_raw(
                orjson.dumps({k: v for k, v in held.items() if k not in _WAIT_FIELDS}), key,
                topic=pending_topic, partition=_int(held.get("p")),
                offset=_int(held.get("offset")), stage=TRIAGE_STAGE, reason="unprocessable",
                detail=f"the stored pending appeal waited past APPEALS_TRIAGE_MAX_WAIT and "
                       f"fails its check {why}"[:300])
            del staged[key]
            continue
        await _send_to_desk(outbox, record)
        staged[key] = marker


def _to_desk(router: Router, held: dict[str, Any],
             now: datetime) -> tuple[RoutedAppeal, dict[str, Any]]:
    """The routed record of a pending copy (checked) to its region's triage desk after
    ``APPEALS_TRIAGE_MAX_WAIT``, and the table's marker that replaces the copy (ids only, no
    personal data: what a late decision needs, :func:`_late_redirect`)."""
    category = held.get("classifier_category")
    if category not in CATEGORIES:
        category = "other"
    decision = router.triage_desk(route_input(held, category))
    confidence = held.get("confidence")
    record = routed_record(
        held, decision, category, is_urgent(held, bool(held.get("urgent"))),
        float(confidence) if isinstance(confidence, int | float) else 0.0,
        held.get("classifier_version"), now, router.rules)
    complaint = held.get("complaint_about")
    marker = {
        "done": True, "timed_out": record.routed_at, "authority_id": decision.authority_id,
        "region": held["region"], "subcategory": held.get("subcategory"),
        "municipality": decision.municipality,
        "complaint": isinstance(complaint, str) and bool(complaint.strip()),
        "complaint_about": decision.complaint_about,
        # What a late decision's stamp is checked against (:class:`PastTolerance`), as the
        # routed record has them: no personal data.
        "registered_at": record.registered_at,
    }
    if record.received_at is not None:
        marker["received_at"] = record.received_at
    return record, marker


async def _send_to_desk(outbox: Outbox, record: RoutedAppeal) -> None:
    await outbox.send_record(t.ROUTED, record.appeal_id, record)
    metrics.ROUTED.labels(record.category, record.routing_level).inc()
    metrics.LIFECYCLE.labels("triaged", "timed_out").inc()


def _int(value: Any) -> int:
    """A stored partition or offset, -1 ("unknown" in a dead letter) for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


#: What the triage agent adds to a pending copy it stores: its message time, partition and
#: offset (the wait's start, and where a dead letter of it points), and how long it waits.
_WAIT_FIELDS = ("since", "p", "offset", "wait")


def _appeal_id(data: dict[str, Any]) -> str:
    appeal_id = data.get("appeal_id")
    if not isinstance(appeal_id, str) or not appeal_id:
        raise InvalidEvent("invalid_value", "appeal_id missing")
    return appeal_id


#: Fields of a pending copy that may be absent or null and are otherwise strings.
_OPTIONAL_TEXT = ("channel", "subcategory", "municipality", "text", "address", "complaint_about",
                  "classifier_version", "subject", "duplicate_of")


def check_pending(appeal: dict[str, Any]) -> str:
    """Refuse (:class:`InvalidEvent`) a pending copy that routing could not use; returns its id.

    ``appeals.triage.pending`` is internal and has no schema file of its own (it is a projection
    of a registered appeal, :data:`ROUTE_FIELDS`, plus the classifier's verdict), but anything
    on a topic can be bad; stored unchecked, a copy waits in the table until its decision trips
    over it, and that decision is replayed after every restart. So the copy must carry what
    :func:`route_input`, :func:`routed_record` and the feedback read, of the types and values
    their own schemas (``routed-appeal``, ``triage-feedback``) allow. The reason codes are
    those of schema validation; a detail names the field, never its value (the copy holds the
    appeal's text and address).

    A copy of another ``schema_version`` is ``unsupported_schema_version``; one without (written
    before the field was added, possibly still in the topic and the table) is version 1.
    """
    appeal_id = _appeal_id(appeal)
    check_version(appeal.get("schema_version", PENDING_VERSION), PENDING_VERSION,
                  "pending appeal: ")
    for name in ("regime", "region", "registered_at"):
        if appeal.get(name) is None:
            raise InvalidEvent("missing_field", f"pending appeal: {name} missing")
    if appeal["regime"] not in REGIMES:
        raise InvalidEvent("invalid_value", "pending appeal: regime is not a known regime")
    if not isinstance(appeal["region"], str):
        raise InvalidEvent("wrong_type", "pending appeal: region is not a string")
    if not isinstance(appeal["registered_at"], str):
        raise InvalidEvent("wrong_type", "pending appeal: registered_at is not a string")
    if not is_datetime(appeal["registered_at"]):
        raise InvalidEvent("invalid_value", "pending appeal: registered_at is not a date-time "
                           "with a UTC offset in the years events may carry")
    for name in _OPTIONAL_TEXT:
        if not isinstance(appeal.get(name), str | None):
            raise InvalidEvent("wrong_type", f"pending appeal: {name} is not a string or null")
    if not isinstance(appeal.get("urgent"), bool | None):
        raise InvalidEvent("wrong_type", "pending appeal: urgent is not a boolean or null")
    if appeal.get("importance") not in (*IMPORTANCES, None):
        raise InvalidEvent("invalid_value", "pending appeal: importance is not low/normal/high")
    confidence = appeal.get("confidence")
    if confidence is not None and (isinstance(confidence, bool)
                                   or not isinstance(confidence, int | float)):
        raise InvalidEvent("wrong_type", "pending appeal: confidence is not a number or null")
    if confidence is not None and not 0 <= confidence <= 1:
        raise InvalidEvent("invalid_value", "pending appeal: confidence is not within 0..1")
    if appeal.get("classifier_category") not in (*CATEGORIES, None):
        raise InvalidEvent("invalid_value",
                           "pending appeal: classifier_category is not a known category")
    return appeal_id


#: ``lifecycle-event`` fields a ``triaged`` event must not carry (:func:`check_decision`).
_NOT_FOR_DECISIONS = ("to_authority_id", "extension_days")


def check_decision(data: dict[str, Any]) -> str:
    """Refuse (:class:`InvalidEvent`) a decision the routed record could not carry; returns the
    appeal id. Lifecycle events are validated upstream, but this topic is a topic like any
    other: an unknown category would be routed to the region's triage desk and published in a
    routed record its schema refuses. A decision is a ``lifecycle-event``: of another
    ``schema_version`` (or none) it is refused, as the SLA agent refuses such an event.

    The whole ``lifecycle-event`` schema is checked, and the event must be ``triaged``: an
    ``answered`` event with a category (no ``event_id``, no ``at``) routed the waiting appeal as
    if a human had triaged it and became a training line. The reason codes are the schema's
    (``invalid_value`` for another event)."""
    if "schema_version" not in data:
        raise InvalidEvent("missing_field", "triage decision: schema_version missing")
    check_version(data["schema_version"], 1, "triage decision: ")
    appeal_id = _appeal_id(data)
    if data.get("event") != "triaged":
        raise InvalidEvent("invalid_value", "triage decision: event is not triaged")
    category = data.get("category")
    if not isinstance(category, str):
        raise InvalidEvent("invalid_value", "triage decision needs appeal_id and category")
    if category not in CATEGORIES:
        raise InvalidEvent("invalid_value", "triage decision category is not a known category")
    if not isinstance(data.get("urgent"), bool | None):
        raise InvalidEvent("wrong_type", "triage decision urgent is not a boolean or null")
    for name in _NOT_FOR_DECISIONS:
        if data.get(name) is not None:
            # The schema allows them on any event; on a decision they were ignored unseen,
            # a body the sender named (or mistyped) silently replaced by the category's.
            raise InvalidEvent("invalid_value", (
                f"triage decision: {name} is not for a triaged event (the category decides "
                "the body, routing finds it); send the decision without it"))
    try:
        validate(LifecycleEvent.schema, data)
    except InvalidEvent as exc:
        raise InvalidEvent(exc.reason, f"triage decision: {exc.detail}") from None
    return appeal_id


#: ``key`` of :func:`_on_pending` and :func:`_on_decision` when the caller has no message key
#: to compare (tests that feed the handlers directly).
_UNCHECKED: Any = object()


def _check_key(key: Any, appeal_id: str, what: str) -> bytes:
    """The table key of ``appeal_id``; refuses (``key_mismatch``) a record whose Kafka key is
    not its appeal id.

    Why: the table key comes from the payload, but the record sits on the partition of its
    Kafka key. With two workers the table partition of the appeal id may belong to the other
    one, and the batch's table writes skip keys of partitions this worker does not own
    (:meth:`_Staged.commit`): such a decision found no appeal here, its wait was never stored,
    and it vanished without a trace. The SLA agent refuses a routed record keyed otherwise the
    same way. The detail names neither key nor payload."""
    wanted = appeal_id.encode()
    if key is not _UNCHECKED and key != wanted:
        raise InvalidEvent("key_mismatch", (
            f"{what}: the record's Kafka key is not its appeal_id"
            f"{' (it has no key)' if key is None else ''}; re-publish it keyed by its "
            "appeal_id"))
    return wanted


def _held(pending: Any, key: bytes) -> dict[str, Any] | None:
    """The table's value for ``key``. This agent writes only objects there; anything else (a
    changelog record written by hand) refuses the event instead of failing on a lookup."""
    held = pending.get(key)
    if held is not None and not isinstance(held, dict):
        raise InvalidEvent("unprocessable",
                           "the triage table holds a value that is not an object for this appeal")
    return held


async def _on_pending(outbox: Outbox, pending: Any, router: Router,
                      appeal: dict[str, Any], *, now: datetime | None = None,
                      key: Any = _UNCHECKED, at: float | None = None, partition: int = -1,
                      offset: int = -1, early: EarlyDecisions | None = None,
                      past: PastTolerance | None = None,
                      decisions_topic: str = t.TRIAGE_DECISIONS) -> None:
    """A pending appeal: routed at once if its decision came first, else stored to wait for
    one, stamped with its message time ``at`` (where its wait is counted from,
    :func:`_time_out`), partition, offset and wait (:meth:`EarlyDecisions.wait_for`).

    A decision that came first but at a triage clock past this appeal's wait
    (``early``'s :meth:`EarlyDecisions.late`; the decisions topic was read ahead of the
    pending one) is late: the appeal goes to the desk and the decision redirects it from
    there, as when the pending copy is read first. Which topic a fetch brings first must not
    change where an appeal ends up.

    The decisions that came first are judged now, in the order they came, as they would
    have been had the copy been read first: one stamped too long before this appeal's
    registration (``past``, :class:`PastTolerance`) is dead-lettered ``before_period`` and
    the next one is tried; the first that passes is applied, and the others are repeats
    (:func:`_check_repeat`). When every one is refused, the copy waits as if none had come, so
    the corrected decision still applies."""
    key = _check_key(key, check_pending(appeal), "pending appeal")
    held = _held(pending, key)
    if held is not None and "decision" in held:
        # The human was quicker than this queue: route now (a decision that waited since
        # before check_decision existed is checked here; refused, it expires as not_triaged).
        decision = held["decision"]
        try:
            if not isinstance(decision, dict):
                raise InvalidEvent("not_object", "expected a JSON object")
            check_decision(decision)
        except InvalidEvent as exc:
            raise InvalidEvent("unprocessable", f"the waiting decision for {appeal['appeal_id']} "
                               f"fails its check ({exc.reason}): {exc.detail}") from None
        since = time.time() if at is None else at
        state: dict[str, Any] | None = None  # None: nothing applied yet, the copy waits
        for entry in _early_entries(held):
            decision = entry["decision"]
            if state is not None:
                try:
                    _check_repeat(state, decision, appeal["appeal_id"])
                except InvalidEvent as exc:
                    await _dead_letter_early(outbox, key, entry, decisions_topic, exc)
                else:
                    metrics.LIFECYCLE.labels("triaged", "not_pending").inc()
                continue
            if past is not None:
                try:
                    past.check(decision, appeal["registered_at"], _received_at(appeal),
                               appeal["appeal_id"])
                except InvalidEvent as exc:
                    await _dead_letter_early(outbox, key, entry, decisions_topic, exc)
                    continue
            clock = entry.get("clock", entry.get("since"))
            if (early is not None and isinstance(clock, int | float)
                    and not isinstance(clock, bool)
                    and early.late(since, float(clock), early.wait_for(appeal))):
                record, marker = _to_desk(router, appeal, now or datetime.now(UTC))
                redirect = _late_redirect(router, marker, decision, appeal["appeal_id"])
                await _send_to_desk(outbox, record)
                await _send_late_redirect(outbox, redirect)
                state = {**marker, **_decided(decision)}
            else:
                await _route_decided(outbox, router, appeal, decision, now)
                state = {"done": True, **_decided(decision)}
        if state is not None:
            pending[key] = state
            return
        held = None  # every one refused: the copy waits as if none had come
    if held is not None and held.get("done"):
        return  # a replay of an appeal already routed (by its decision, or to the desk)
    if held is not None and _is_waiting_copy(held) and "since" in held:
        return  # a replay (or a resend) of a copy already waiting: its wait goes on
    stored = {k: v for k, v in appeal.items() if k not in ("decision", "done", *_WAIT_FIELDS)}
    stored.update(since=time.time() if at is None else at, p=partition, offset=offset)
    if early is not None:
        # Its wait, by regime, as the settings are now: a replay of the table waits the same,
        # and a setting changed later applies to copies stored from then on.
        stored["wait"] = early.wait_for(appeal)
    pending[key] = stored


async def _on_decision(outbox: Outbox, pending: Any, router: Router, data: dict[str, Any], *,
                       at: float | None = None, partition: int = -1, offset: int = -1,
                       now: datetime | None = None, key: Any = _UNCHECKED,
                       clock: float | None = None, past: PastTolerance | None = None) -> None:
    """A human named the category: route the waiting appeal (once; repeats find nothing).

    The first decision wins: later ones for the same appeal are counted and ignored (and
    ``classify export-feedback`` keeps the first too). A decision that overtook its appeal
    waits, stamped with its message time ``at`` and the partition's triage ``clock`` (whether
    it is late for the appeal, :func:`_on_pending`), until :func:`_expire_early` gives up on
    it.

    The stored appeal is checked again before it is routed: one stored before
    :func:`check_pending` existed comes back from the changelog unchecked. If it fails, this
    decision is dead-lettered (``unprocessable``) and the table is left as it was, so the
    stored copy is neither routed on a guess nor dropped unseen.

    A decision stamped before the appeal's registration (or receipt) by more than
    ``APPEALS_SLA_PAST_TOLERANCE`` (``past``, :class:`PastTolerance`) is dead-lettered
    ``before_period`` and the table is left as it was: the appeal is not marked decided, so the
    corrected decision applies.
    """
    appeal_id = check_decision(data)
    key = _check_key(key, appeal_id, "triage decision")
    held = _held(pending, key)
    if held is None:
        # The decision overtook the pending appeal: keep it until the appeal arrives.
        since = time.time() if at is None else at
        pending[key] = {"decision": data, "since": since, "p": partition, "offset": offset,
                        "clock": since if clock is None else clock}
        metrics.LIFECYCLE.labels("triaged", "early").inc()
        return
    if _timed_out(held) and "decided" not in held:
        # Routed to the triage desk after its wait, before this decision came. A marker
        # written before it kept registered_at is not checked (nothing to check against).
        if past is not None:
            past.check(data, held.get("registered_at"), held.get("received_at"), appeal_id)
        await _send_late_redirect(outbox, _late_redirect(router, held, data, appeal_id))
        pending[key] = {**held, **_decided(data)}
        return
    if _is_early(held):
        # Another decision before the copy: it waits too, judged when the copy comes
        # (:func:`_on_pending`). Judged now against the first, it was lost when the first
        # turned out stamped before the registration, and only in this order of the topics.
        more = held.get("more")
        more = more if isinstance(more, list) else []
        if any(data == e.get("decision") for e in _early_entries(held)):
            metrics.LIFECYCLE.labels("triaged", "not_pending").inc()
            return  # a resend of one that waits
        if len(more) >= EARLY_MORE_MAX:
            metrics.LIFECYCLE.labels("triaged", "already_triaged").inc()
            raise InvalidEvent("already_triaged", (
                f"{len(more) + 1} decisions for appeal {appeal_id} already wait for its pending "
                "copy; this one is not kept: the first decision that applies wins"))
        since = time.time() if at is None else at
        pending[key] = {**held, "more": [*more, {
            "decision": data, "since": since, "p": partition, "offset": offset,
            "clock": since if clock is None else clock}]}
        metrics.LIFECYCLE.labels("triaged", "early").inc()
        return
    if "decision" in held or held.get("done"):
        _check_repeat(held, data, appeal_id)
        metrics.LIFECYCLE.labels("triaged", "not_pending").inc()
        return
    try:
        check_pending(held)
    except InvalidEvent as exc:
        raise InvalidEvent("unprocessable", f"the stored pending appeal {appeal_id} fails its "
                           f"check ({exc.reason}): {exc.detail}") from None
    if past is not None:
        past.check(data, held["registered_at"], _received_at(held), appeal_id)
    await _route_decided(outbox, router, held, data, now)
    pending[key] = {"done": True, **_decided(data)}


@dataclass(frozen=True)
class PastTolerance:
    """How far before its appeal's registration (or receipt, when earlier) a triage decision
    may be stamped: ``APPEALS_SLA_PAST_TOLERANCE``, wall-clock seconds through ``clock``, as
    the SLA agent counts it for every lifecycle event
    (``workers.sla.agent._check_not_before_registration``).

    Why here: a decision's ``at`` is the moment a late one redirects the appeal from the desk.
    Stamped with a mistyped year, the redirect was refused by the SLA agent (``before_period``)
    after this table had marked the appeal decided, so the appeal stayed at the desk and the
    operator's corrected decision was ignored (``already_triaged`` or quiet). The SLA agent
    cannot check it before forwarding: while the appeal waits in triage it has no state there.
    The reason is the SLA agent's, so one dead-letter code means one thing."""

    clock: SlaClock
    seconds: float = SLA_PAST_TOLERANCE

    def check(self, decision: dict[str, Any], registered_at: Any, received_at: Any,
              appeal_id: str) -> None:
        """Raise :class:`InvalidEvent` (``before_period``) for ``decision`` stamped too long
        before ``registered_at`` (or ``received_at``, when earlier). Nothing to check against
        (a marker written before it kept the registration) passes."""
        registered = _moment(registered_at)
        at = _moment(decision.get("at"))
        if registered is None or at is None:
            return
        since, what = registered, "registered"
        received = _moment(received_at)
        if received is not None and received < registered:
            since, what = received, "received"
        if self.clock.wall_time_of(since) - self.clock.wall_time_of(at) <= self.seconds:
            return
        metrics.LIFECYCLE.labels("triaged", "before_period").inc()
        gap = since - at
        span = f"{gap / 3600:.1f} h" if gap < 2 * 86400 else f"{gap / 86400:.1f} days"
        raise InvalidEvent("before_period", (
            f"triage decision for {appeal_id} stamped {span} before the appeal was {what} "
            f"({datetime.fromtimestamp(since, UTC).isoformat()}), more than "
            f"APPEALS_SLA_PAST_TOLERANCE ({self.seconds:g} s) allows: is its date (the year) "
            "mistyped? The appeal is not marked decided: send the corrected decision"))


def _moment(value: Any) -> float | None:
    """An RFC 3339 date-time as Unix seconds, None for anything else."""
    if not isinstance(value, str) or not is_datetime(value):
        return None
    return parse_datetime(value).timestamp()


#: How many further decisions may wait with the first for a pending copy that has not come
#: (:func:`_on_decision`); more are dead-lettered ``already_triaged``.
EARLY_MORE_MAX = 8


def _early_entries(held: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions waiting for their copy, in the order they came: the first (``held``
    itself, its ``decision``, ``since``, ``p``, ``offset`` and ``clock``) and those that came
    after it (``more``, entries of the same fields)."""
    more = held.get("more")
    rest = [e for e in more if _is_early(e)] if isinstance(more, list) else []
    return [held, *rest]


async def _dead_letter_early(outbox: Outbox, key: bytes, entry: dict[str, Any],
                             decisions_topic: str, exc: InvalidEvent) -> None:
    """Dead-letter a decision that waited for its copy, where it was read."""
    await outbox.dead_letter_raw(
        orjson.dumps(entry["decision"]), key, topic=decisions_topic,
        partition=_int(entry.get("p")), offset=_int(entry.get("offset")),
        stage=TRIAGE_STAGE, reason=exc.reason, detail=exc.detail)


def _decided(decision: dict[str, Any]) -> dict[str, Any]:
    """What the table keeps of the decision applied (its category and ``urgent``): a later
    decision that says otherwise is dead-lettered (:func:`_check_repeat`)."""
    return {"decided": decision["category"], "decided_urgent": decision.get("urgent")}


def _check_repeat(held: dict[str, Any], data: dict[str, Any], appeal_id: str) -> None:
    """Refuse (``already_triaged``) a decision for an appeal already decided when it says
    something else: another category or another ``urgent``. The first decision wins; a repeat
    of it (a replay, a resend) stays quiet. (Decisions that came before the appeal's copy are
    judged so when the copy comes, :func:`_on_pending`: the first of them may yet be refused.)

    Why: such a decision was only counted (``not_pending``), so an operator who corrected a
    category never learnt that the correction was not applied. A marker written before the
    table kept the decision (``{"done": true}``) has nothing to compare: quiet, as before."""
    if "decided" not in held:
        return
    applied: Any = held["decided"]
    urgent: Any = held.get("decided_urgent")
    knows_urgent = "decided_urgent" in held
    if data["category"] == applied and (not knows_urgent or data.get("urgent") == urgent):
        return
    metrics.LIFECYCLE.labels("triaged", "already_triaged").inc()
    said = "" if not knows_urgent else f", urgent {orjson.dumps(urgent).decode()}"
    raise InvalidEvent("already_triaged", (
        f"appeal {appeal_id} was already triaged ({applied}{said}); this decision "
        f"({data['category']}, urgent {orjson.dumps(data.get('urgent')).decode()}) is not "
        "applied: the first decision wins. To move the appeal, the body holding it "
        "redirects it"))


def _timed_out(held: dict[str, Any]) -> bool:
    """The table's marker of an appeal routed to the triage desk by :func:`_time_out`."""
    return (bool(held.get("done")) and isinstance(held.get("timed_out"), str)
            and isinstance(held.get("authority_id"), str) and isinstance(held.get("region"), str))


#: ``event_id`` of the redirect a late decision publishes: one per appeal (the first decision
#: wins), so a replay publishes the same event and the SLA engine applies it once.
LATE_REDIRECT_ID = "{appeal_id}:triage-redirect"


def _late_redirect(router: Router, held: dict[str, Any], decision_event: dict[str, Any],
                   appeal_id: str) -> dict[str, Any] | None:
    """A decision for an appeal :func:`_time_out` already routed to the triage desk: a
    ``redirected`` lifecycle event from the desk to the body the decided category routes to,
    on ``appeals.sla.lifecycle`` keyed by the appeal id (the SLA agent applies it where it
    reads it, and holds it if it overtook the routed record).

    Why a redirect and not a routed record: the appeal already has SLA state at the desk,
    and a second routing is a duplicate the SLA agent ignores. A redirect is what the desk
    would send by hand: the receiving body's answer clock starts at the decision's ``at``
    (DESIGN §2), the desk's 59-FZ redirect stage (7 days from registration) is completed by it,
    a breach when late, and the SLA agent's own redirect check still refuses the body a
    complaint is about. From the desk (``authority_id``): if the desk has redirected the appeal
    itself meanwhile, the SLA agent refuses this one (``foreign_authority``) rather than
    overriding the desk.

    The pending copy is gone, so the decided category is routed without the text: from the
    municipality id and the complaint's body id routing found at the timeout (an unidentified
    complaint stays at the desk, as routing would keep it there). When that is the desk,
    nothing is sent (a redirect to the body that holds the appeal is refused), so neither the
    category nor the urgency changes there. No training line: the text left the table with
    the pending copy, and personal data is not kept longer for it.

    The decision's explicit ``urgent`` travels in the redirect (the SLA engine counts the
    receiving body's term with it: ``engine._take_urgency``); before, it was lost, and a human's
    "urgent" got the ordinary term. Left null, it is left out, and the appeal keeps the urgency
    it was routed to the desk with, as a decision in time keeps :func:`is_urgent`'s.

    Returns the event (None: the desk keeps it), built before anything is sent
    (:func:`_send_late_redirect` sends it)."""
    desk = held["authority_id"]
    category = decision_event["category"]
    if held.get("complaint") and not held.get("complaint_about"):
        target = desk  # a complaint about a body nobody identified: routing keeps it there
    else:
        target = router.route(RouteInput(
            appeal_id=appeal_id, region_code=held["region"], category=category,
            subcategory=held.get("subcategory"), municipality=held.get("municipality"),
            complaint_about=held.get("complaint_about"))).authority_id
    if target == desk:
        return None
    event: dict[str, Any] = {
        "schema_version": 1, "event_id": LATE_REDIRECT_ID.format(appeal_id=appeal_id),
        "appeal_id": appeal_id, "event": "redirected", "at": decision_event["at"],
        "authority_id": desk, "to_authority_id": target,
        "reason": (f"triage decision ({category}) after APPEALS_TRIAGE_MAX_WAIT; the appeal "
                   f"was routed to the triage desk at {held['timed_out']}"),
    }
    if isinstance(decision_event.get("urgent"), bool):
        event["urgent"] = decision_event["urgent"]
    validate(LifecycleEvent.schema, event)
    return event


async def _send_late_redirect(outbox: Outbox, event: dict[str, Any] | None) -> None:
    """Send what :func:`_late_redirect` built (nothing for None: kept at the desk)."""
    if event is None:
        metrics.LIFECYCLE.labels("triaged", "late_kept_at_desk").inc()
        return
    await outbox.send(t.SLA_LIFECYCLE, event["appeal_id"].encode(), orjson.dumps(event))
    metrics.LIFECYCLE.labels("triaged", "late_redirected").inc()


def _fault(exc: Exception) -> str:
    """The dead-letter detail of an unexpected fault: its type, and for a ``KeyError`` the key
    (a field name of our own code). Other messages may quote the value, so they are left out."""
    if isinstance(exc, KeyError):
        return f"KeyError: {exc}"[:300]
    return f"{type(exc).__name__} while applying the event"


async def _route_decided(outbox: Outbox, router: Router, appeal: dict[str, Any],
                         decision_event: dict[str, Any], now: datetime | None = None) -> None:
    """Route ``appeal`` to the decided category. Everything that can raise comes before the
    first send: an event that fails is dead-lettered with nothing of it published.

    The decision's explicit ``urgent`` wins; left null, the appeal is routed with
    :func:`is_urgent` (the classifier's flag from the pending copy, or high importance). The
    feedback's label stays the decision's flag or the classifier's: it trains a classifier of
    the text, and the importance is not in the text."""
    category = decision_event["category"]
    decided = decision_event.get("urgent")
    classifier_urgent = bool(appeal.get("urgent"))
    urgent = is_urgent(appeal, classifier_urgent) if decided is None else bool(decided)
    label = classifier_urgent if decided is None else bool(decided)
    decision = router.route(route_input(appeal, category))
    record = routed_record(appeal, decision, category, urgent, 1.0, "triage", now,
                           router.rules)
    feedback = _feedback(appeal, decision_event, category, label)
    await outbox.send_record(t.ROUTED, appeal["appeal_id"], record)
    if feedback is not None:
        await outbox.send(t.TRIAGE_FEEDBACK, appeal["appeal_id"].encode(), feedback.to_json())
    metrics.ROUTED.labels(category, decision.level).inc()
    metrics.LIFECYCLE.labels("triaged", "applied").inc()


def _feedback(appeal: dict[str, Any], decision_event: dict[str, Any], category: str,
              urgent: bool) -> TriageFeedback | None:
    """The decision as training data (``appeals.triage.feedback``, read by ``appeals classify
    export-feedback``), sent in the same outbox as the routed record: acknowledged before the
    table write and the offsets, so a replay may publish it twice (export keeps the first per
    appeal) but never loses it. The appeal's text and labels only: no author, contacts or
    address. None when there is no text to learn from."""
    text = appeal.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    confidence = appeal.get("confidence")
    return TriageFeedback(
        appeal_id=appeal["appeal_id"],
        text=text,
        category=category,
        urgent=urgent,
        decided_at=_decided_at(decision_event.get("at")),
        classifier_category=appeal.get("classifier_category"),
        confidence=(round(float(confidence), 4)
                    if isinstance(confidence, int | float) else None),
        classifier_version=appeal.get("classifier_version"),
    )


def _decided_at(at: Any) -> str:
    """The decision's own time when it names an instant (lifecycle events are validated with a
    UTC offset upstream), else now: training lines need a time, not the worker's zone."""
    if isinstance(at, str) and is_datetime(at):
        return at
    return datetime.now(UTC).isoformat(timespec="milliseconds")
