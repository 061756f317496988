"""The SLA agent: routed appeals, lifecycle events and timer ticks in; alerts and figures out.

One agent reads four co-partitioned topics (all keyed by ``appeal_id``), so every event of an
appeal meets that appeal's state on the worker that owns its partition. Authorities' lifecycle
events are read straight from ``appeals.lifecycle``; the few that a foreign partitioner put on
the wrong partition (and triage decisions) are re-keyed once
(:mod:`workers.sla.lifecycle_routing`). The state table uses the key partitioner for its
changelog, which (same keys, same partitioner, same partition count) lands each key in the
changelog partition of its source partition; that is what allows writing the table from a
batch (``take_events``) rather than one event at a time.

A timer sweep on every worker reads the due timers of its own partitions from Redis and emits
tick events to ``appeals.sla.ticks`` instead of touching the table from outside a stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

import faust
import orjson
import redis.exceptions

from monitoring import metrics
from schemas.records import (
    REGIMES,
    LifecycleEvent,
    RoutedAppeal,
    SlaAlert,
    SlaTick,
    canonical_appeal_id,
)
from schemas.validation import InvalidEvent, parse_datetime, validate
from streams import topics as t
from workers.aggregates.partials import PartitionAggregates, oldest_kept_day, publish
from workers.geo.regions import region_timezone_or_moscow
from workers.runtime import (
    Outbox,
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)
from workers.sla import lifecycle_routing, read_model, recompute, timers
from workers.sla.deadline_service import DeadlineService, policy_book, rules_book
from workers.sla.engine import (
    BEFORE_PERIOD,
    EARLY_EVENT_OVERFLOW,
    EARLY_RESUME_OVERFLOW,
    EXTENSION_REFUSED,
    FOREIGN_AUTHORITY,
    HELD_EXPIRED,
    HISTORY_OVERFLOW,
    IGNORED,
    NOT_CLOSED,
    NOT_OPEN,
    TICK_CHANGED,
    Effects,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    copy_state,
    event_time,
    keyed_contributions,
    known_zone,
    new_state,
    responses,
    subjects,
)
from workers.sla.resolution import SEVERITY, end_records, note_period

log = logging.getLogger(__name__)

STAGE = "sla"
LIFECYCLE_STAGE = "lifecycle"
#: Lifecycle events one appeal may hold while its routing has not arrived; more are
#: dead-lettered (reason ``pending_overflow``) instead of growing its state without end.
MAX_PENDING = 32
#: States handled between two yields to the event loop in the passes over a whole table (the
#: figures' rebuild, the index and read-model rebuild, a partition's recompute). One pass over
#: 1,000,000 appeals held the loop for 14-50 s on this host (review of session 13), and with
#: it every agent, timer, commit and rebalance callback of the worker; 2,000 states are tens
#: of milliseconds.
YIELD_EVERY = 2000
#: Dead-letter reason of an event its appeal's state machine could not apply.
UNPROCESSABLE = "unprocessable"
#: Dead-letter reason of held lifecycle events whose appeal was not routed within
#: ``APPEALS_SLA_PENDING_MAX_AGE`` (:func:`_expire_held`).
UNKNOWN_APPEAL = "unknown_appeal"
#: Dead-letter reason of a lifecycle event stamped further ahead of the SLA clock than
#: ``APPEALS_SLA_FUTURE_TOLERANCE`` (:func:`_check_not_ahead`).
FUTURE_TIMESTAMP = "future_timestamp"
#: Lifecycle events the SLA engine applies at their ``at``: none of them can be stamped
#: before the appeal was registered (:func:`_check_not_before_registration`).
STAMPED_KINDS = frozenset({"accepted", "answered", "extended", "redirected", "paused",
                           "resumed", "closed", "reopened"})
#: Seconds between two passes of :func:`_expire_held` over the table: held events are
#: dead-lettered between the configured age and this much later.
HELD_SCAN_EVERY = 3600.0
#: An appeal's figures as :func:`keyed_contributions` gives them.
Contributions = list[tuple[str, str, str]]


class SlaRuntime:
    """State the agent and its timers share inside one worker process."""

    def __init__(self, app: faust.App, ctx: WorkerContext, rules: SlaRules,
                 resolve_parent: Any, region_tz: Any) -> None:
        self.app = app
        self.ctx = ctx
        self.rules = rules
        self.resolve_parent = resolve_parent
        self.region_tz = region_tz
        self.router: Any = None
        #: The routing rules ``rules`` was built from (``refresh_rules``).
        self.rules_of: Any = None
        #: The shared policy book ``rules`` was built from (``deadline_service.rules_book``).
        self.book_of: Any = None
        self.prefix = f"{ctx.settings.app_id}:"
        self.aggregates: dict[int, PartitionAggregates] = {}
        self.needs_rebuild = True
        #: The agent is inside a batch: its figures are ahead of the table (see ``_maintain``).
        self.batch_in_flight = False
        #: Held by the agent from the first event of a batch to its states' store, and by
        #: :func:`_expire_held` from its last look at a held state to the state's deletion:
        #: a batch must not route an appeal whose held events are being dead-lettered, nor
        #: store a copy of a state deleted meanwhile.
        self.table_lock = asyncio.Lock()
        self.gauge_authorities: set[str] = set()  # exported by _refresh_gauges last time
        self.index_dirty: set[int] = set()
        #: The Redis process the index markers must name (``timers.server_token``); read by
        #: each maintenance pass, None until the first.
        self.redis_token: str | None = None
        #: One figures' rebuild at a time (the agent's and the maintenance pass's), and the
        #: count of assignments, which tells a rebuild that a rebalance came in its middle.
        self.rebuild_lock = asyncio.Lock()
        self.assign_gen = 0
        self.table = app.Table(
            "sla-state",
            partitions=ctx.settings.partitions,
            key_type=bytes,
            use_partitioner=True,
        )
        self.routed_topic = t.topic_name(ctx.settings, t.ROUTED)
        self.external_lifecycle_topic = t.topic_name(ctx.settings, t.LIFECYCLE)
        self.lifecycle_topic = t.topic_name(ctx.settings, t.SLA_LIFECYCLE)
        self.ticks_topic = t.topic_name(ctx.settings, t.SLA_TICKS)
        self.owns = lifecycle_routing.PartitionCheck(ctx.settings.partitions)

    def assigned_partitions(self) -> set[int]:
        return {
            tp.partition for tp in self.app.consumer.assignment()
            if tp.topic == self.routed_topic
        }

    def refresh_rules(self) -> None:
        """Rebuild the policy book when the rules watcher has swapped the routing rules.

        The authorities' SLA overrides live in the routing rules; the book was built once at
        start, so an edited override reached the router on reload but not the deadlines of
        new appeals until a restart. Appeals already tracked keep their deadlines (a change of
        policy is not an event of theirs; ``appeals sla recompute`` applies it to them).

        The book is the process's one for these rules (``deadline_service.rules_book``), which
        intake and route use too. The rules loader has validated the overrides with the same
        loader, so a book that cannot be built is unexpected (an edited policy file): the old
        book stays, for every agent, with an error in the log.
        """
        current = getattr(self.router, "rules", None)
        if current is None:
            return
        # Also when only the policy file changed (the watcher loads new rules for it, and a
        # recompute replaces the book of the rules in use): intake and route take that book at
        # their next call, and so must this agent, or a subcategory route now forwards would
        # get no deadline of its own.
        book, own = rules_book(current)
        if current is self.rules_of and book is getattr(self, "book_of", None):
            return
        if own and book is not getattr(self, "book_of", None):
            service = DeadlineService(book)
            settings = self.ctx.settings
            self.rules = sla_rules(service, settings, self.router)
            log.info("SLA: policies rebuilt from the reloaded routing rules or policy file")
            create_breach_series(current, service.book)
            self.book_of = book
        self.rules_of = current

    def partition_aggregates(self, partition: int) -> PartitionAggregates:
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PartitionAggregates()
        return agg

    async def rebuild_aggregates(self) -> bool:
        """Sum the contributions of every appeal in our partitions (after recovery); False
        when a rebalance came in its middle (``needs_rebuild`` stays set: run it again).

        It yields to the event loop every :data:`YIELD_EVERY` states, over a snapshot of the
        table, and runs under ``rebuild_lock``: the agent, arriving with a batch meanwhile,
        waits for it and finds it done.

        A stored state whose figures cannot be counted (one an older version stored half
        applied) is left out with an error in the log: it ran inside the batch's
        ``crash_on_error``, so it would otherwise end the worker on every start.
        """
        async with self.rebuild_lock:
            if not self.needs_rebuild:
                return True
            generation = self.assign_gen
            assigned = self.assigned_partitions()
            fresh = {p: PartitionAggregates() for p in assigned}
            for n, (key, state) in enumerate(list(self.table.items()), 1):
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    if self.assign_gen != generation:
                        log.info("SLA aggregates rebuild interrupted by a rebalance; it "
                                 "starts again")
                        return False
                agg = fresh.get(state.get("p", -1)) if isinstance(state, dict) else None
                if agg is None or "id" not in state:
                    continue
                try:
                    counted = keyed_contributions(state)
                    answers = [(subject, day, seconds)
                               for auth, day, seconds in responses(state)
                               for subject in [auth, *subjects(state)[1:]]]
                except Exception as exc:
                    log.error("SLA: the stored state of %r cannot be counted, left out of the "
                              "figures: %s", key, type(exc).__name__)
                    continue
                agg.counters.update(counted)
                for subject, day, seconds in answers:
                    agg.add_response(subject, day, seconds)
            self.aggregates = fresh
            self.index_dirty |= assigned
            self.needs_rebuild = False
            log.info("SLA aggregates rebuilt for partitions %s", sorted(assigned))
            return True


def _recovering(app: Any) -> bool:
    """A rebalance or the tables' recovery is under way (Faust's own flags): a figures'
    rebuild now would be redone when it ends."""
    return bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))


def sla_rules(service: DeadlineService, settings: Any, router: Any) -> SlaRules:
    """The SLA clock's rules: the policy book's deadlines plus each authority's own zone (for
    the receiving body of a redirect; the first routing carries it in the routed record)."""

    def zone_of(authority_id: str) -> str | None:
        try:
            name = router.authority(authority_id).timezone
        except (KeyError, AttributeError):
            return None
        return known_zone(name)  # the rules loader checked it; one this host lacks: None

    return dataclasses.replace(service.rules(settings.warning_share, settings.escalation_after),
                               zone_of=zone_of, early_hold=float(settings.sla_early_max_age))


def appeal_zone(region: str, hint: str | None) -> str:
    """The zone an appeal's deadlines are counted in: the routed authority's (the record's
    ``timezone``, from the rules) when it names a known zone, else the region's, else Moscow."""
    if hint:
        if known_zone(hint):
            return hint
        log.warning("SLA: routed record names an unknown time zone %r; the region's is used",
                    hint[:64])
    return region_timezone_or_moscow(region)


def figure_zones(router: Any, region: str) -> tuple[str, str] | None:
    """The zones of the days a new appeal's place and category figures are kept on: the ones
    the API cuts their windows on, from the routing rules by the same functions
    (``RoutingRules.day_zone``, ``category_zone``). None without rules (the state then falls
    back to the region's capital zone) or for a zone this host does not know."""
    rules = getattr(router, "rules", None)
    if rules is None:
        return None
    place, category = known_zone(rules.day_zone(region)), known_zone(rules.category_zone())
    if place is None or category is None:
        return None
    return place, category


def create_breach_series(rules: Any, book: Any = None) -> None:
    """Create the breach counters' series at 0: every authority of the rules per regime, and
    per regime the breaches of the answer deadline and of each stage the policy book's regime
    defaults track (``book``: a ``PolicyBook``; None: the answer deadline's only).

    ``increase()`` does not count a series' first sample. Created at the first breach, the
    series of a restarted worker began with the whole burst its sweep emits for the deadlines
    missed while it was down, and ``AppealsAuthorityBreachRateHigh`` stayed quiet for 40
    breaches of one authority in an hour (review of session 16). The sets are bounded: the
    authorities of the routing rules times four regimes.
    """
    for regime in REGIMES:
        metrics.child(metrics.SLA_ALERTS, "breach", regime, "answer")
        if book is not None and regime in book.regimes:
            for stage in book.resolve(regime).stages:
                metrics.child(metrics.SLA_ALERTS, "breach", regime, stage)
        for authority_id in rules.authorities:
            metrics.child(metrics.BREACHES, authority_id, regime)


def install(app: faust.App, ctx: WorkerContext, router: Any) -> SlaRuntime:
    settings = ctx.settings
    # reload=False: a worker whose policies cannot be built does not start.
    service = DeadlineService(policy_book(router.rules, reload=False))
    rules = sla_rules(service, settings, router)

    def resolve_parent(authority_id: str) -> str | None:
        try:
            parent: str | None = router.authority(authority_id).parent
            return parent
        except KeyError:
            return None

    rt = SlaRuntime(app, ctx, rules, resolve_parent, appeal_zone)
    rt.router = router
    rt.rules_of = router.rules
    rt.book_of = service.book
    create_breach_series(router.rules, service.book)
    source = ctx.topology.channel_of(t.ROUTED, t.LIFECYCLE, t.SLA_LIFECYCLE, t.SLA_TICKS)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        rt.needs_rebuild = True
        rt.assign_gen += 1

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _recovered(app: faust.App, **_: Any) -> None:
        # Faust sends this once the assigned tables are recovered (or need none). A figures'
        # rebuild that ran or runs meanwhile read a table still being recovered: it is
        # interrupted, or redone, on the complete table.
        rt.needs_rebuild = True
        rt.assign_gen += 1

    @app.agent(source, name="sla")
    async def sla(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings, stage=STAGE):
            with crash_on_error(STAGE):
                rt.refresh_rules()
                if rt.needs_rebuild and not _recovering(app):
                    # One attempt: a rebalance in its middle leaves needs_rebuild set for the
                    # next batch or maintenance pass; the end of the tables' recovery sets it
                    # again (_recovered), so no rebuild of a half-recovered table stands.
                    await rt.rebuild_aggregates()
                async with rt.table_lock:
                    rt.batch_in_flight = True
                    try:
                        outbox = ctx.outbox(STAGE)
                        batch = Batch(now=time.time())
                        for event in events:
                            await _handle(rt, outbox, event, batch)
                        await outbox.flush()
                        assigned = rt.assigned_partitions()
                        await _write_redis(rt, _store(rt, batch.changed, assigned),
                                           {p: plan for p, plan in batch.schedule.items()
                                            if p in assigned})
                    finally:
                        rt.batch_in_flight = False
                observe_stage_latency(STAGE, events)

    @app.timer(settings.sweep_interval)
    async def sweep() -> None:
        await _sweep(rt)

    @app.timer(2.0)
    async def publish_figures() -> None:
        await _maintain(rt)

    @app.timer(HELD_SCAN_EVERY)
    async def expire_held() -> None:
        await _expire_held(rt, time.time())

    return rt


@dataclass(slots=True)
class Batch:
    """What one batch has decided so far: the states to store, the timer changes."""

    now: float
    changed: dict[bytes, State] = field(default_factory=dict)
    schedule: dict[int, timers.Plan] = field(default_factory=dict)
    #: key -> (the state in ``changed``, its ``keyed_contributions``): the figures an event
    #: of this batch left it with are the figures the next event of the appeal starts from,
    #: so they are counted once, not after one event and again before the next. Used only
    #: while ``changed`` still holds that very object (states there are never changed in
    #: place: every event works on a copy).
    counted: dict[bytes, tuple[State, Contributions]] = field(default_factory=dict)


class PendingOverflow(Exception):
    """The appeal already holds :data:`MAX_PENDING` events waiting for its routing."""


async def _handle(rt: SlaRuntime, outbox: Outbox, event: faust.EventT, batch: Batch) -> None:
    """One event of a batch: read, applied to its appeal, and then added to ``batch``.

    Bad input never ends the worker and is never dropped without a trace: whatever cannot be
    read or applied goes to the dead-letter topic with its reason (counted there by stage and
    reason), and the batch goes on. The transition runs on a private copy of the appeal's
    state, and only a transition that went through is added to ``batch``: one that raised
    halfway must not leave its marks on the table's value, nor on what an earlier event of
    the same batch made of the state (a half-applied state, once stored, failed every later
    write of it and every restart).
    """
    msg = event.message
    key = msg.key if isinstance(msg.key, bytes) else None
    external = msg.topic == rt.external_lifecycle_topic
    try:
        data, respelt = _read(rt, msg.topic, msg.value)
    except InvalidEvent as exc:
        await outbox.dead_letter(event, stage=LIFECYCLE_STAGE if external else STAGE,
                                 reason=exc.reason, detail=exc.detail)
        return
    if external:
        forward = lifecycle_routing.forward_to(data, key, msg.partition, rt.owns)
        if forward is not None:
            # Triage decisions, and events a foreign partitioner put on a
            # partition that does not own the appeal: re-keyed, seen again. The producer's
            # bytes, unless its appeal id was spelt otherwise (upper case): then the event
            # with the canonical id, so the triage agent reads the id it is keyed by.
            if forward == t.TRIAGE_DECISIONS:
                # Checked here: the triage agent is not the SLA agent, and the re-keyed events
                # are checked when read back. A decision stamped in the future was routed,
                # or sent as the late redirect with its ``at``, which this agent then refused:
                # the triage table had marked the appeal decided and ignored the correction.
                try:
                    _check_not_ahead(rt, data)
                except FutureTimestamp as exc:
                    await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                             detail=str(exc)[:300])
                    return
            value = orjson.dumps(data) if respelt else msg.value or b""
            await outbox.send(forward, data["appeal_id"].encode(), value)
            return
        metrics.LIFECYCLE_DIRECT.inc()
    if key is None:
        await outbox.dead_letter(event, stage=STAGE, reason="no_key")
        return
    if msg.topic == rt.lifecycle_topic and recompute.is_control(data):
        await _recompute(rt, outbox, event, data, batch)
        return
    if msg.topic == rt.routed_topic and key != str(data.get("appeal_id", "")).encode():
        # Stored under the key, its timers and ticks under the appeal id: a tick found no
        # state and no alert was ever sent (review of session 15). The route agent keys by
        # the appeal id; another producer's record must say the same.
        await outbox.dead_letter(event, stage=STAGE, reason="key_mismatch",
                                 detail="the record's key is not its appeal_id")
        return
    refused: list[tuple[dict[str, Any], str, str]] = []
    new: State | None
    try:
        source = batch.changed.get(key)
        known = batch.counted.get(key) if source is not None else None
        figures = Figures(known[1] if known is not None and known[0] is source else None)
        old = rt.table.get(key) if source is None else source
        state = copy_state(old)
        if msg.topic == rt.ticks_topic:
            new, effects = _on_tick(rt, state, data, figures)
        elif msg.topic == rt.routed_topic:
            new, effects = _on_routed(rt, state, data, msg.partition, refused, figures)
        else:
            # The one place an authority's event is first looked at: refused here when
            # stamped in the future, before it is applied or held for its routing (held events
            # are not checked again when the routing applies them).
            _check_not_ahead(rt, data)
            new, effects = _on_lifecycle(rt, state, data, figures, batch.now)
    except RedirectRefused as exc:
        metrics.child(metrics.LIFECYCLE, "redirected", "rejected").inc()
        await outbox.dead_letter(event, stage=STAGE, reason="redirect_refused",
                                 detail=str(exc)[:300])
        return
    except PendingOverflow as exc:
        await outbox.dead_letter(event, stage=STAGE, reason="pending_overflow",
                                 detail=str(exc)[:300])
        return
    except NotApplied as exc:
        await outbox.dead_letter(event, stage=STAGE, reason=exc.reason,
                                 detail=str(exc)[:300])
        return
    except Exception as exc:
        # The transitions are pure functions of (state, event): whatever one raises, this
        # event raises it again on every replay, so it goes to the dead-letter topic rather
        # than ending the worker in a crash loop (an OverflowError from deadline arithmetic
        # on a far-off date did, while only KeyError, ValueError and TypeError were caught).
        log.warning("SLA: cannot apply %s[%d]@%d: %s", msg.topic, msg.partition,
                    msg.offset, type(exc).__name__)
        await outbox.dead_letter(event, stage=STAGE, reason=UNPROCESSABLE,
                                 detail=f"{type(exc).__name__}: {exc}"[:300])
        return
    for held, reason, why in refused:
        await outbox.dead_letter_raw(orjson.dumps(held), key, topic=rt.lifecycle_topic,
                                     partition=-1, offset=-1, stage=STAGE, reason=reason,
                                     detail=why[:300])
    if new is None:
        return
    batch.changed[key] = new
    if figures.after is not None:
        batch.counted[key] = (new, figures.after)
    else:
        batch.counted.pop(key, None)
    if "id" not in new:  # still only pending events
        return
    await _dead_letter_expired(rt, outbox, key, new, effects)
    try:
        await _emit(rt, outbox, new, effects, batch.now)
        await _emit_ends(rt, outbox, old, new, effects)
    except Exception as exc:  # a bug must not stop every other appeal
        log.exception("SLA: cannot emit effects of %s[%d]@%d", msg.topic, msg.partition,
                      msg.offset)
        await outbox.dead_letter(event, stage=STAGE, reason="internal_error",
                                 detail=type(exc).__name__)
    batch.schedule.setdefault(new["p"], timers.Plan()).record(effects)


async def _dead_letter_expired(rt: SlaRuntime, outbox: Outbox, key: bytes, state: State,
                               effects: Effects) -> None:
    """Dead-letter (``held_expired``) the kept reopens and answers the transition gave up
    (``engine.HELD_EXPIRED``): the event as far as the state kept it (id, kind, stamp; its
    other fields were never kept, and no personal data is among these), for the sender to
    resend once the event it waited for is sent."""
    for held in effects.expired:
        value = {"schema_version": 1, "event_id": held.event_id, "appeal_id": state["id"],
                 "event": held.kind, "at": _iso_utc(held.at)}
        await outbox.dead_letter_raw(orjson.dumps(value), key, topic=rt.lifecycle_topic,
                                     partition=-1, offset=-1, stage=STAGE,
                                     reason=HELD_EXPIRED, detail=held.detail)
        metrics.child(metrics.LIFECYCLE, held.kind, HELD_EXPIRED).inc()


def _read(rt: SlaRuntime, topic: str, raw: bytes | None) -> tuple[dict[str, Any], bool]:
    """The event as a dict, checked against the schema of the topic it came from, and
    whether its appeal id was rewritten to the canonical spelling.

    The internal topics are checked too: anything on a topic can be bad (a record written by
    hand, a producer of another version), and an unchecked one reached the state machine (a
    routed appeal without an id was stored, then refused by Redis on every write). On
    ``appeals.sla.lifecycle`` only recompute controls have a shape of their own.

    A lifecycle event's ``appeal_id`` is made canonical here
    (:func:`schemas.records.canonical_appeal_id`: a hex id in lower case), before it is keyed,
    checked for its partition or held: this agent is where authorities' events enter the
    pipeline, and what it re-publishes carries the canonical id, so the SLA state, its
    alerts (notify), the read model and the triage agent all see one spelling.
    """
    if topic == rt.routed_topic:
        return parse_event(raw, RoutedAppeal.schema), False
    if topic == rt.ticks_topic:
        return parse_event(raw, SlaTick.schema), False
    if topic == rt.external_lifecycle_topic:
        data = parse_event(raw, LifecycleEvent.schema)
    else:
        data = parse_event(raw)
        if recompute.is_control(data):
            return data, False
        validate(LifecycleEvent.schema, data)
    sent = data["appeal_id"]
    data["appeal_id"] = canonical_appeal_id(sent)
    return data, data["appeal_id"] != sent


async def _recompute(rt: SlaRuntime, outbox: Outbox, event: faust.EventT, data: dict[str, Any],
                     batch: Batch) -> None:
    """`appeals sla recompute`: every open appeal of this partition."""
    msg = event.message
    try:
        moved = await recompute.recompute_partition(rt, data, msg.partition, batch.changed)
    except ValueError as exc:  # a broken policy or calendar file
        log.error("SLA recompute refused: %s", exc)
        await outbox.dead_letter(event, stage=STAGE, reason="recompute_failed",
                                 detail=str(exc)[:300])
        return
    for moved_key, moved_state, moved_effects in moved:
        # The state the recompute started from (as recompute_partition took it): an earlier
        # event of the batch wins over the table. Its alerts that the new deadline ends
        # (a breach cured by a later deadline) get their end records, as an extension's do;
        # without them they kept firing until APPEALS_ALERT_TTL.
        old = batch.changed.get(moved_key)
        if old is None:
            old = rt.table.get(moved_key)
        batch.changed[moved_key] = moved_state
        batch.schedule.setdefault(moved_state["p"], timers.Plan()).record(moved_effects)
        try:
            await _emit(rt, outbox, moved_state, moved_effects, batch.now)
            await _emit_ends(rt, outbox, old, moved_state, moved_effects)
        except Exception:  # a bug must not stop the recompute of every other appeal
            log.exception("SLA: cannot emit the recompute effects of %r", moved_key)


def _on_routed(rt: SlaRuntime, state: State | None, data: dict[str, Any], partition: int,
               refused: list[tuple[dict[str, Any], str, str]], figures: Figures | None = None,
               ) -> tuple[State | None, Effects]:
    """A new appeal's state, with the lifecycle events that overtook its routing applied.

    Each held event is applied on its own copy of the state: one that cannot be applied is
    left out and handed back in ``refused`` as (event, reason, detail), for the caller to
    dead-letter, and the routing and the other held events still take effect (a held event
    that raised used to take the routing down with it: the appeal never got SLA state). A held
    redirect gets the same check as one arriving after routing (the body complained about, an
    unknown body).
    """
    if state is not None and "id" in state:
        metrics.child(metrics.LIFECYCLE, "routed", "duplicate").inc()
        return None, Effects(outcome="duplicate")
    # parse_datetime, not fromisoformat: RFC 3339 (and the schema) allow a lower-case "z",
    # which fromisoformat refuses; such an appeal was dead-lettered and never tracked.
    registered_ts = parse_datetime(data["registered_at"]).timestamp()
    tz = rt.region_tz(data["region"], data.get("timezone"))
    new, effects = new_state(data, partition, registered_ts, tz, rt.rules,
                             figure_zones(getattr(rt, "router", None), data["region"]))
    counted = keyed_contributions(new)
    for pending in (state or {}).get("pending", []):
        trial = cast(State, copy_state(new))
        try:
            _check_not_before_registration(rt, trial, pending)
            if pending.get("event") == "redirected" and rt.router is not None:
                _check_redirect(rt.router, trial, pending)
            more = apply_lifecycle(trial, pending, rt.rules, rt.resolve_parent)
            _check_reporter(trial, pending, more)
            trial_counted = keyed_contributions(trial)
        except RedirectRefused as exc:
            metrics.child(metrics.LIFECYCLE, "redirected", "rejected").inc()
            refused.append((pending, "redirect_refused", str(exc)))
            continue
        except NotApplied as exc:
            refused.append((pending, exc.reason, str(exc)))
            continue
        except Exception as exc:  # as for any event: see _handle
            refused.append((pending, UNPROCESSABLE, f"{type(exc).__name__}: {exc}"))
            continue
        new, counted = trial, trial_counted
        _merge(effects, more)
    rt.partition_aggregates(partition).apply_delta([], counted)
    metrics.child(metrics.LIFECYCLE, "routed", "applied").inc()
    if figures is not None:
        figures.after = counted
    return new, effects


def _merge(into: Effects, more: Effects) -> None:
    into.alerts.extend(more.alerts)
    into.timers.extend(more.timers)
    into.cancel.extend(more.cancel)
    into.expired.extend(more.expired)
    if more.answered:
        into.answered = more.answered
    into.answers += more.answers


def _on_lifecycle(rt: SlaRuntime, state: State | None, data: dict[str, Any],
                  figures: Figures | None = None, now: float | None = None,
                  ) -> tuple[State | None, Effects]:
    """One lifecycle event applied to its appeal's state, or held until the routing comes.

    A held state records ``since``, the wall-clock moment (``now``: the batch's) its first
    event was held, which :func:`_expire_held` measures ``APPEALS_SLA_PENDING_MAX_AGE`` from.
    """
    if state is None or "id" not in state:
        # The authority's event overtook the routing (different topics): keep it for later.
        pending = list((state or {}).get("pending", []))
        if any(p.get("event_id") == data.get("event_id") for p in pending):
            return None, Effects(outcome="duplicate")
        if len(pending) >= MAX_PENDING:
            # The held events are applied in order once the routing comes, so the newest is
            # refused: dropping the oldest would apply a history without its beginning.
            raise PendingOverflow(f"{len(pending)} events already wait for this appeal's "
                                  "routing")
        event_time(data)  # a moment the engine cannot read is refused now, not at routing
        pending.append(data)
        metrics.child(metrics.LIFECYCLE, data.get("event", "unknown"), "pending").inc()
        since = (state or {}).get("since")
        if not _is_moment(since):
            since = time.time() if now is None else now
        return {"pending": pending, "since": since}, Effects(outcome="pending")
    _check_not_before_registration(rt, state, data)
    if (data["event"] == "redirected" and rt.router is not None
            and data.get("event_id") not in state.get("events", ())):
        # A repeat (a replay, an authority resending its log) is the engine's ``duplicate``:
        # judged by the router after its first delivery moved the appeal, it was a redirect
        # to the body that now holds it and went to the dead-letter topic.
        _check_redirect(rt.router, state, data)
    before = _before(state, figures)
    effects = apply_lifecycle(state, data, rt.rules, rt.resolve_parent)
    _check_reporter(state, data, effects)
    if effects.outcome in ("duplicate",):
        metrics.child(metrics.LIFECYCLE, data["event"], effects.outcome).inc()
        return None, effects
    rt.partition_aggregates(state["p"]).apply_delta(before, _after(state, figures))
    metrics.child(metrics.LIFECYCLE, data["event"], effects.outcome).inc()
    return state, effects


class NotApplied(ValueError):
    """A lifecycle event the engine did not apply and that goes to the dead-letter topic
    with the engine's outcome as its reason (``reason``); never applied, its id not kept."""

    reason = ""


class ForeignAuthority(NotApplied):
    """Reported by a body that does not hold the appeal (``authority_id`` is not the
    current one)."""

    reason = FOREIGN_AUTHORITY


class HistoryOverflow(NotApplied):
    """A reopen, redirect or pause beyond the appeal's ``MAX_HISTORY``."""

    reason = HISTORY_OVERFLOW


class EarlyResumeOverflow(NotApplied):
    """A resume of a running appeal that already keeps ``MAX_EARLY_RESUMES`` resumes for
    pauses that have not arrived (``engine._resumed``). Dropping the oldest kept one instead,
    without a trace, left the pause it would have ended holding the appeal for good."""

    reason = EARLY_RESUME_OVERFLOW


class BeforePeriod(NotApplied):
    """A pause stamped before the answer period it would pause began, an extension or a
    redirect stamped before the redirect or reopen that began the period it would extend or
    hand on, or any event stamped before the appeal's registration by more than
    ``APPEALS_SLA_PAST_TOLERANCE`` (:func:`_check_not_before_registration`)."""

    reason = BEFORE_PERIOD


class ExtensionRefused(NotApplied):
    """An extension the rules refuse: beyond the policy's number for the body, declared after
    the deadline, ``extension_days`` the policy or calendar refuses, one that moves nothing,
    or one of an appeal answered or closed (the detail names which). Counted only, it let the
    body's system believe its deadline had moved."""

    reason = EXTENSION_REFUSED


class WrongState(NotApplied):
    """An event the appeal's state refuses (``engine.NOT_OPEN``, ``NOT_CLOSED``, ``IGNORED``)
    or one more than the engine keeps for an event that has not arrived
    (``EARLY_EVENT_OVERFLOW``); the reason is the engine's outcome, the detail names the state
    and its moment. Only counted before, with the id kept: the sender never learnt of it, and
    its resend was swallowed as a duplicate."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


#: Engine outcomes :class:`WrongState` dead-letters.
_WRONG_STATE = frozenset({NOT_OPEN, NOT_CLOSED, IGNORED, EARLY_EVENT_OVERFLOW})


class FutureTimestamp(NotApplied):
    """Stamped further ahead of the SLA clock than ``APPEALS_SLA_FUTURE_TOLERANCE``."""

    reason = FUTURE_TIMESTAMP


def _check_not_ahead(rt: SlaRuntime, data: dict[str, Any]) -> None:
    """Raise :class:`FutureTimestamp` for an event whose ``at`` the SLA clock has not reached
    yet, give or take ``APPEALS_SLA_FUTURE_TOLERANCE``.

    Why: the engine judges an answer, close or extension by its ``at`` against the deadline,
    so an event from the future decides now what only the clock may decide later. A body's
    system that writes local time with a UTC offset (12:00 in Altai sent as 12:00+00:00, seven
    hours ahead) had an on-time answer recorded as late, its breach alert sent hours before
    the deadline, and the warning never sent. The tolerance is wall-clock seconds (clock skew
    between systems), measured through ``clock.wall_time_of``: on the demo's sped-up clock it
    is as many times longer on the SLA clock, so the lag between the demo's producer and a
    worker never refuses the demo's own events.
    """
    clock = rt.ctx.clock
    at = event_time(data)
    now = clock.now()
    tolerance = float(rt.ctx.settings.sla_future_tolerance)
    if clock.wall_time_of(at) - clock.wall_time_of(now) <= tolerance:
        return
    event = data.get("event", "unknown")
    metrics.child(metrics.LIFECYCLE, event, "rejected").inc()
    raise FutureTimestamp(
        f"{event} stamped {_span(at - now)} ahead of the SLA clock, more than "
        f"APPEALS_SLA_FUTURE_TOLERANCE ({tolerance:g} s) allows: is the sender's clock or "
        "time zone wrong (local time sent as UTC)?")


def _check_not_before_registration(rt: SlaRuntime, state: State,
                                   data: dict[str, Any]) -> None:
    """Raise :class:`BeforePeriod` for an event stamped before its appeal was registered by
    more than ``APPEALS_SLA_PAST_TOLERANCE``.

    Why: the engine takes answers, closes and extensions in the first answer period whatever
    their stamp (``engine._before_period`` leaves that period alone, so that a sender's clock a
    little behind the intake's loses no answer). An answer dated years early (a mistyped
    year) was then applied as given in time, in 0 s: it raised the body's on-time share and
    pulled its median response time down, and nobody learnt of the typo. A redirect so dated
    started the receiving body's period overdue, and a close closed the appeal before it
    existed. Such an event is dead-lettered for someone to correct. The tolerance is days, not
    the minutes of clock skew :func:`_check_not_ahead` allows: registration is the legal moment
    (``workers.intake.core.registration_time``), but a body's own system may stamp on a
    register kept by the date (a letter registered "on 2 March", at midnight, before its
    receipt that morning), and such events are real. It is in wall-clock seconds through
    ``clock.wall_time_of``, so that the demo's sped-up clock refuses none of its own events.
    It counts from the earlier of registration and receipt (``rcpt``, the routed record's
    ``received_at``, kept only when earlier; states stored before lack it): a 59-FZ letter
    without a ``reg_date`` that intake read late is registered at the end of the registration
    stage, up to twelve days after its receipt over New Year, and the body's ``accepted``
    stamped on the day it got the letter was dead-lettered as a mistyped year.

    Checked by the agent, not the engine: the engine is a pure function of state and event
    and knows no wall clock. It runs where an event meets its routed appeal, applied at once
    (:func:`_on_lifecycle`) or held until its routing came (:func:`_on_routed`). A repeat of
    an event the state already holds is left to the engine (``duplicate``): one an older
    version applied is not dead-lettered at each replay.
    """
    event = data.get("event", "unknown")
    registered = state.get("reg")
    if (event not in STAMPED_KINDS or not _is_moment(registered)
            or data.get("event_id") in state.get("events", ())):
        return
    since, what = registered, "registered"
    received = state.get("rcpt")
    if _is_moment(received) and received < registered:
        since, what = received, "received"
    clock = rt.ctx.clock
    at = event_time(data)
    tolerance = float(rt.ctx.settings.sla_past_tolerance)
    if clock.wall_time_of(since) - clock.wall_time_of(at) <= tolerance:
        return
    metrics.child(metrics.LIFECYCLE, event, "rejected").inc()
    raise BeforePeriod(
        f"{event} stamped {_span(since - at)} before the appeal was {what} "
        f"({_iso_utc(since)}), more than APPEALS_SLA_PAST_TOLERANCE ({tolerance:g} s) "
        "allows: is its date (the year) mistyped?")


def _span(seconds: float) -> str:
    """A duration for a dead letter's detail: seconds, hours or days."""
    if seconds < 3600:
        return f"{seconds:.0f} s"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _check_reporter(state: State, data: dict[str, Any], effects: Effects) -> None:
    """Raise :class:`NotApplied` for an event the engine refused (its outcome says which)."""
    event = data.get("event", "unknown")
    if effects.outcome == HISTORY_OVERFLOW:
        refusal: NotApplied = HistoryOverflow(
            f"{event}: the appeal already has {state.get('hist')} reopens, redirects and "
            "pauses")
    elif effects.outcome == BEFORE_PERIOD:
        verb = {"extended": "extend", "redirected": "hand on"}.get(event, "pause")
        refusal = BeforePeriod(f"{event} stamped {data.get('at')}, before the answer period "
                               f"it would {verb} began (registration, redirect or reopen)")
    elif effects.outcome == EXTENSION_REFUSED:
        refusal = ExtensionRefused(f"{event} refused: {effects.detail}")
    elif effects.outcome == EARLY_RESUME_OVERFLOW:
        refusal = EarlyResumeOverflow(effects.detail)
    elif effects.outcome == FOREIGN_AUTHORITY:
        refusal = ForeignAuthority(f"{event} reported by {data.get('authority_id')!r}, the "
                                   f"appeal is held by {state.get('auth')!r}")
    elif effects.outcome in _WRONG_STATE:
        refusal = WrongState(effects.outcome, effects.detail or f"{event}: {effects.outcome}")
    else:
        return
    metrics.child(metrics.LIFECYCLE, event, "rejected").inc()
    raise refusal


class RedirectRefused(ValueError):
    """A redirect to an unknown body, to the body the complaint is about (59-FZ art. 8), or
    to the body that already holds the appeal."""


def _check_redirect(router: Any, state: State, data: dict[str, Any]) -> None:
    from workers.routing import RedirectRejected, UnknownAuthority

    try:
        router.redirect(state["id"], data.get("to_authority_id") or "",
                        complaint_about=state.get("complaint_about"),
                        from_authority_id=state.get("auth"))
    except (UnknownAuthority, RedirectRejected) as exc:
        raise RedirectRefused(str(exc)) from None


def _on_tick(rt: SlaRuntime, state: State | None, data: dict[str, Any],
             figures: Figures | None = None) -> tuple[State | None, Effects]:
    tick = SlaTick.from_dict(data)
    if state is None or "id" not in state:
        return None, Effects(outcome="stale")
    before = _before(state, figures)
    effects = apply_tick(state, tick.kind, tick.cycle, rt.rules)
    if effects.outcome not in TICK_CHANGED:
        # Not "no alerts": the tick of an escalation a pause held records it without one
        # (``engine.RECORDED``), and dropping that state lost the escalation and its figures.
        return None, effects
    rt.partition_aggregates(state["p"]).apply_delta(before, _after(state, figures))
    return state, effects


@dataclass(slots=True)
class Figures:
    """One event's figures of its appeal: ``before`` it, if already known (``Batch.counted``),
    and ``after`` it, filled in by a transition that went through."""

    before: Contributions | None = None
    after: Contributions | None = None


def _before(state: State, figures: Figures | None) -> Contributions:
    if figures is not None and figures.before is not None:
        return figures.before
    return keyed_contributions(state)


def _after(state: State, figures: Figures | None) -> Contributions:
    after = keyed_contributions(state)
    if figures is not None:
        figures.after = after
    return after


async def _emit(rt: SlaRuntime, outbox: Any, state: State, effects: Effects, now: float) -> None:
    clock = rt.ctx.clock
    fired_at = dt.datetime.fromtimestamp(clock.now(), dt.UTC).isoformat(timespec="seconds")
    for alert in effects.alerts:
        # A breach reported by a redirect is the handing-on body's, not the state's new one.
        authority_id = alert.authority_id or state["auth"]
        # A stage's alert id names the stage: (appeal, stage, level, run) is its dedupe key.
        what = f"{alert.stage}.{alert.level}" if alert.stage else alert.level
        record = SlaAlert(
            alert_id=f"{state['id']}:{what}:{alert.cycle}",
            appeal_id=state["id"],
            level=alert.level,
            regime=state["regime"],
            region=state["region"],
            authority_id=authority_id,
            notify_authority_id=alert.notify_authority_id,
            due_at=dt.datetime.fromtimestamp(alert.due_ts, dt.UTC).isoformat(timespec="seconds"),
            fired_at=fired_at,
            severity=SEVERITY[alert.level],
            category=state.get("cat"),
            urgent=bool(state.get("urgent")),
            stage=alert.stage or None,
        )
        await outbox.send_record(t.SLA_ALERTS, state["id"], record)
        metrics.child(metrics.SLA_ALERTS, alert.level, state["regime"],
                      alert.stage or "answer").inc()
        if alert.level == "breach" and not alert.stage:
            metrics.child(metrics.BREACHES, authority_id, state["regime"]).inc()
        if alert.from_timer:  # an event reporting a passed deadline is no timer firing late
            metrics.TIMER_LAG.observe(max(0.0, now - clock.wall_time_of(alert.due_ts)))
    if effects.answered is not None:
        seconds, on_time = effects.answered
        metrics.child(metrics.ANSWERED, state["regime"], "true" if on_time else "false").inc()
        metrics.child(metrics.RESPONSE_TIME, state["regime"]).observe(seconds)
        # The answers this transition recorded (engine.responses: the rebuild adds the same).
        agg = rt.partition_aggregates(state["p"])
        for auth, day, seconds in responses(state)[-max(1, effects.answers):]:
            for subject in [auth, *subjects(state)[1:]]:
                agg.add_response(subject, day, seconds)


async def _emit_ends(rt: SlaRuntime, outbox: Any, old: Any, new: State,
                     effects: Effects) -> None:
    """An end record for each alert the transition ended (:mod:`workers.sla.resolution`):
    notify resolves it at the receivers that took it and drops it where it still waits."""
    before = old if isinstance(old, dict) else None
    stamp = dt.datetime.fromtimestamp(rt.ctx.clock.now(), dt.UTC).isoformat(timespec="seconds")
    for record in end_records(before, new, effects.alerts, stamp):
        await outbox.send_record(t.SLA_ALERTS, new["id"], record)
        metrics.child(metrics.SLA_ALERTS_ENDED, record.level,
                      record.stage or "answer").inc()
    note_period(before, new, effects.alerts)


def _store(rt: SlaRuntime, changed: dict[bytes, State], owned: set[int]) -> dict[bytes, State]:
    """Write the batch's states to the table, except those of partitions revoked meanwhile.

    ``stream_wait_empty`` is off, so a rebalance can complete while the batch awaits its
    acknowledgements. A late write to a partition this worker no longer owns would reach that
    partition's changelog after the new owner's writes (and reopen its RocksDB here): the next
    recovery would read this stale state as the latest. The offsets of those events are not
    committed by this worker either, so the new owner processes them again. Returns the states
    written.
    """
    written: dict[bytes, State] = {}
    for key, state in changed.items():
        partition = state.get("p")
        if partition is None:
            # Events waiting for their routed record: a state without "p" was written to a
            # revoked partition too (review of session 15). Its key says where it lives.
            partition = rt.owns.partition_of(key)
        if partition not in owned:
            continue
        read_model.bump_version(state)
        rt.table[key] = state
        written[key] = state
    skipped = len(changed) - len(written)
    if skipped:
        log.info("SLA: %d states of revoked partitions left to their new owner", skipped)
    return written


async def _write_redis(rt: SlaRuntime, changed: dict[bytes, State],
                       schedule: dict[int, timers.Plan]) -> None:
    """Timer index and per-appeal read model; a Redis fault marks the index for rebuild.

    The rebuild rewrites the read model of the whole partition too, so a batch whose writes
    failed is repaired by it.
    """
    if not changed:
        return
    try:
        if schedule:
            await timers.write_plans(rt.ctx.redis, rt.prefix, schedule)
        await read_model.write(rt.ctx.redis, rt.prefix, changed.values(), rt.ctx.clock.now(),
                               clock=rt.ctx.clock)
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("sla_index").inc()
        dirty = set(schedule) | {s["p"] for s in changed.values() if "p" in s}
        rt.index_dirty |= dirty
        log.warning("Redis write failed; timer index and read model of partitions %s marked "
                    "for rebuild", sorted(dirty))


async def _sweep(rt: SlaRuntime) -> None:
    """Emit ticks for due timers of our partitions; remove them once the ticks are written."""
    if rt.needs_rebuild or not cast(Any, rt.app.tables).recovery.completed.is_set():
        return
    partitions = sorted(rt.assigned_partitions())
    if not partitions:
        return
    now_sla = rt.ctx.clock.now()
    redis_ = rt.ctx.redis
    try:
        async with redis_.pipeline(transaction=False) as pipe:
            for p in partitions:
                pipe.get(timers.ready_key(rt.prefix, p))
                pipe.zrangebyscore(timers.due_key(rt.prefix, p), "-inf", now_sla, start=0,
                                   num=5000, withscores=True)
            replies = await pipe.execute()
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("sla_sweep").inc()
        return
    outbox = rt.ctx.outbox("sla_sweep")
    fired: dict[int, list[Any]] = {}
    for i, p in enumerate(partitions):
        ready, due = replies[2 * i], replies[2 * i + 1]
        if not timers.marker_matches(ready, rt.redis_token):
            rt.index_dirty.add(p)
            continue
        for member, score in due:
            appeal_id, kind, cycle = timers.parse_member(member)
            tick = SlaTick(appeal_id=appeal_id, kind=kind, due_ts=float(score), cycle=cycle)
            await outbox.send_record(t.SLA_TICKS, appeal_id, tick)
            sent = fired.setdefault(p, [])
            sent.append(member)
            if len(sent) % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a deadline burst: thousands due at 23:59:59
    if not fired:
        return
    await outbox.flush()
    try:
        async with redis_.pipeline(transaction=False) as pipe:
            for p, members in fired.items():
                pipe.zrem(timers.due_key(rt.prefix, p), *members)
            await pipe.execute()
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("sla_sweep").inc()


async def _maintain(rt: SlaRuntime) -> None:
    """Rebuild what Redis lost, publish figures, refresh gauges.

    A partition whose index readiness marker is gone or names another Redis process (Redis
    restarted empty, or from an older snapshot) is rebuilt here, before its figures are
    published, and one still marked for rebuild afterwards is not published. Only the sweep
    used to notice a lost marker: a pass before it published the figures a batch had just
    made dirty, and their ``agg:partitions`` entries are what the API's readiness reads, so
    the API stopped answering 503 "rebuilding" while the appeals' records and open breaches
    were still missing (404 for tracked appeals, a short breach list).

    A Redis outage stops the pass and marks every partition for rebuild. A bad stored state is
    not an outage: it is left out of its partition's rebuild (:func:`_writable`), and whatever
    else fails in one partition's rebuild stays with that partition. One state without an id
    used to fail every rebuild with Redis's ``DataError``, taken for an outage: every
    partition was marked again and no partition's figures were published, every 2 s.
    """
    if not cast(Any, rt.app.tables).recovery.completed.is_set() or _recovering(rt.app):
        return
    if rt.needs_rebuild:
        if rt.batch_in_flight:
            # The batch has changed the figures for states it has not stored yet (it awaits
            # the broker): a rebuild from the table now would drop those changes until the
            # next rebuild. The agent rebuilds before its next batch; the next pass does
            # when the stream is idle.
            return
        if not await rt.rebuild_aggregates():
            return  # a rebalance came in its middle; the next pass starts again
    assigned = rt.assigned_partitions()
    try:
        rt.redis_token = await timers.server_token(rt.ctx.redis)
        await _mark_lost_indexes(rt, assigned)
        dirty = sorted(rt.index_dirty & assigned)
        # Unmarked before the snapshot, not after the awaits: a write that fails while this
        # rebuild is in flight marks the partition again and must not be lost (the same race
        # as the figures' dirty flag in ``publish``).
        rt.index_dirty.difference_update(dirty)
        guard = await timers.set_guard(rt.ctx.redis, rt.prefix) if dirty else None
        states_of = await _states_by_partition(rt, set(dirty)) if dirty else {}
        for p in dirty:
            if p not in rt.assigned_partitions():
                continue  # revoked during the pass: its new owner rebuilds it
            try:
                await _rebuild_partition(rt, p, states_of[p], guard)
            except redis.exceptions.DataError:  # refused by the client: a value, not Redis
                log.exception("SLA: rebuild of partition %d failed on a value Redis cannot "
                              "take; the other partitions go on", p)
            except (redis.exceptions.RedisError, OSError):
                raise  # an outage: the whole pass stops, below
            except Exception:  # a state of this partition: the other partitions go on
                log.exception("SLA: rebuild of partition %d failed; the other partitions go "
                              "on", p)
            await asyncio.sleep(0)
        if guard is not None:
            await rt.ctx.redis.delete(guard)
        oldest = oldest_kept_day(rt.ctx.clock.now())
        for p in sorted(assigned):
            if p not in rt.assigned_partitions():
                # Revoked while this pass awaited Redis: its new owner publishes it. Taken
                # once at the start, the assignment let a stale owner overwrite the new
                # owner's figures, and a quiet partition then kept them (review of session
                # 16). A revoke during the publish itself is not covered.
                continue
            agg = rt.partition_aggregates(p)
            agg.expire(oldest)
            if agg.dirty and p not in rt.index_dirty:  # else published once rebuilt
                await publish(rt.ctx.redis, rt.prefix, p, agg)
        sizes = 0
        async with rt.ctx.redis.pipeline(transaction=False) as pipe:
            for p in assigned:
                pipe.zcard(timers.due_key(rt.prefix, p))
            for n in await pipe.execute():
                sizes += int(n)
        metrics.TIMERS.set(sizes)
    except (redis.exceptions.RedisError, OSError):
        metrics.REDIS_ERRORS.labels("sla_maintain").inc()
        rt.index_dirty |= assigned
    _refresh_gauges(rt, assigned)


async def _mark_lost_indexes(rt: SlaRuntime, partitions: set[int]) -> None:
    """Mark for rebuild each of ``partitions`` whose index readiness marker does not say its
    index is complete in this Redis process (the sweep's check, :func:`timers.marker_matches`)."""
    ordered = sorted(partitions)
    if not ordered:
        return
    markers = await rt.ctx.redis.mget([timers.ready_key(rt.prefix, p) for p in ordered])
    for p, marker in zip(ordered, markers, strict=True):
        if not timers.marker_matches(marker, rt.redis_token):
            rt.index_dirty.add(p)


def _is_moment(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _held_only(state: Any) -> TypeGuard[State]:
    """A state that is only lifecycle events waiting for a routing that has not come."""
    return (isinstance(state, dict) and "id" not in state
            and isinstance(state.get("pending"), list) and bool(state["pending"]))


def _held_since(state: State) -> float:
    """When the held events of ``state`` began to wait (wall clock).

    A state held before ``since`` was recorded has the newest ``at`` of its events instead
    (the SLA clock runs at wall-clock speed in production); one without a readable moment
    counts as held for ever, so its events are dead-lettered at the next pass."""
    since = state.get("since")
    if _is_moment(since):
        return float(since)
    moments = []
    for held in state["pending"]:
        try:
            moments.append(event_time(held))
        except Exception:  # whatever it is, it names no moment
            continue
    return max(moments, default=0.0)


def _iso_utc(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return "an unknown moment"


async def _expire_held(rt: SlaRuntime, now: float) -> int:
    """Dead-letter (``unknown_appeal``) the events held longer than
    ``APPEALS_SLA_PENDING_MAX_AGE`` for an appeal never routed, and delete their state;
    returns how many states were deleted.

    Why: a lifecycle event for an appeal whose routing has not come is held in the state
    table under the appeal's key until the routing applies it. For an id no appeal has (a
    typo, another system's id, an appeal that never reached routing) the routing never comes:
    the events stayed in the table for good and nobody learnt of them. Their dead letters keep
    them, with the key, for an operator to correct and replay.

    Runs from a timer every :data:`HELD_SCAN_EVERY` seconds on the partitions this worker
    owns, after the tables' recovery. The candidates come from one pass over a snapshot of
    the table that yields every :data:`YIELD_EVERY` states; each is looked at again, its dead
    letters sent and acknowledged, and the state deleted under ``table_lock``, so no batch
    routes the appeal or stores a copy of the state in between. Dead letters first: a crash
    before the deletion sends them again at the next pass rather than losing the events. A
    partition revoked before the deletion is left to its new owner (which may dead-letter
    the same events again).
    """
    if not cast(Any, rt.app.tables).recovery.completed.is_set() or _recovering(rt.app):
        return 0
    max_age = float(rt.ctx.settings.sla_pending_max_age)
    assigned = rt.assigned_partitions()
    candidates: list[bytes] = []
    for n, (key, state) in enumerate(list(rt.table.items()), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if (isinstance(key, bytes) and _held_only(state)
                and rt.owns.partition_of(key) in assigned
                and _held_since(state) + max_age <= now):
            candidates.append(key)
    if not candidates:
        return 0
    deleted = 0
    async with rt.table_lock:
        assigned = rt.assigned_partitions()
        outbox = rt.ctx.outbox(STAGE)
        expired: list[bytes] = []
        for key in candidates:
            state = rt.table.get(key)  # again: a batch may have routed it meanwhile
            if not _held_only(state) or rt.owns.partition_of(key) not in assigned:
                continue
            since = _held_since(state)
            if since + max_age > now:
                continue
            detail = (f"no routing for this appeal id within {max_age / 86400:g} days "
                      f"(held since {_iso_utc(since)})")
            for held in state["pending"]:
                await outbox.dead_letter_raw(orjson.dumps(held), key, topic=rt.lifecycle_topic,
                                             partition=-1, offset=-1, stage=STAGE,
                                             reason=UNKNOWN_APPEAL, detail=detail)
            expired.append(key)
        await outbox.flush()
        owned = rt.assigned_partitions()
        for key in expired:
            if rt.owns.partition_of(key) in owned and rt.table.get(key) is not None:
                del rt.table[key]
                deleted += 1
    if deleted:
        log.warning("SLA: %d appeal ids held lifecycle events for more than %g days without "
                    "a routing; the events are dead-lettered as %s", deleted,
                    max_age / 86400, UNKNOWN_APPEAL)
    return deleted


async def _states_by_partition(rt: SlaRuntime, partitions: set[int]) -> dict[int, list[State]]:
    """The stored states of ``partitions`` that can go to Redis (:func:`_writable`), from one
    pass over a snapshot of the table that yields every :data:`YIELD_EVERY` states (one full
    scan per partition, with no yield, held the loop for seconds at 1,000,000 appeals)."""
    out: dict[int, list[State]] = {p: [] for p in partitions}
    for n, state in enumerate(list(rt.table.values()), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if not isinstance(state, dict) or "id" not in state:
            continue
        bucket = out.get(state.get("p", -1))
        if bucket is not None and _writable(rt, state):
            bucket.append(state)
    return out


async def _rebuild_partition(rt: SlaRuntime, p: int, states: list[State],
                             guard: str | None = None) -> None:
    """The due-time index and read model of partition ``p``, from its stored ``states``."""
    count = await timers.rebuild(rt.ctx.redis, rt.prefix, p, states,
                                 lambda st: rt.rules.of(st).escalation_after,
                                 token=rt.redis_token or "1", guard=guard,
                                 early_hold=rt.rules.early_hold)
    if count < 0:
        rt.index_dirty.add(p)
        log.warning("SLA: Redis lost part of partition %d's due-time index while it was "
                    "rebuilt; rebuilding again", p)
        return
    metrics.INDEX_REBUILDS.inc()
    log.info("SLA due-time index of partition %d rebuilt: %d timers", p, count)
    # The index is missing after Redis lost its data (or at start-up): the read model
    # and the published figures of this partition are derived data lost with it.
    # Versions keep this snapshot from overwriting what the agent wrote meanwhile.
    await read_model.write(rt.ctx.redis, rt.prefix, states, rt.ctx.clock.now(),
                           clock=rt.ctx.clock, skip_expired=True)
    rt.partition_aggregates(p).dirty = True


def _writable(rt: SlaRuntime, state: State) -> bool:
    """Can this stored state go to Redis (its read-model record and its timers)?

    The table may hold states no version of this agent should have stored (an older one
    stored a routed appeal without an id, and answers applied halfway); they are left out of
    the rebuild, with an error in the log naming their appeal, so that the rest is rebuilt.
    """
    try:
        read_model.script_args(state, "", 0.0)  # whether it can be written: any moment
        for timer in timers.pending_timers(state, lambda st: rt.rules.of(st).escalation_after,
                                           early_hold=rt.rules.early_hold):
            if not math.isfinite(timer.due_ts):
                raise ValueError(f"the {timer.kind} timer is due at {timer.due_ts}")
    except Exception as exc:
        log.error("SLA: the stored state of appeal %r is left out of the rebuild: %s",
                  str(state.get("id"))[:80], f"{type(exc).__name__}: {exc}"[:200])
        return False
    return True


def _refresh_gauges(rt: SlaRuntime, assigned: set[int]) -> None:
    open_by: dict[str, int] = {}
    overdue_by: dict[str, int] = {}
    for p in assigned:
        for (auth, _day, counter), n in rt.partition_aggregates(p).counters.items():
            if ":" in auth:  # second keys (muni:, cat:) are not authorities
                continue
            if counter == "open":
                open_by[auth] = open_by.get(auth, 0) + n
            elif counter == "open_overdue":
                overdue_by[auth] = overdue_by.get(auth, 0) + n
    # A counter that reached zero is deleted from the partials, and partitions move between
    # workers: so authorities exported last time but absent now are set to 0 (still ours to
    # report: the series stays, at zero) — else the last non-zero value would stay for good.
    shown = set(open_by) | set(overdue_by)
    for auth in shown | rt.gauge_authorities:
        metrics.OPEN.labels(auth).set(open_by.get(auth, 0))
        metrics.OPEN_OVERDUE.labels(auth).set(overdue_by.get(auth, 0))
    rt.gauge_authorities = shown
