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
import datetime as dt
import logging
import time
from typing import Any, cast

import faust
import orjson
import redis.exceptions

from monitoring import metrics
from schemas.records import LifecycleEvent, SlaAlert, SlaTick
from schemas.validation import InvalidEvent
from streams import topics as t
from workers.aggregates.partials import PartitionAggregates, oldest_kept_day, publish
from workers.runtime import (
    WorkerContext,
    batches,
    crash_on_error,
    observe_stage_latency,
    parse_event,
)
from workers.sla import lifecycle_routing, read_model, recompute, timers
from workers.sla.deadline_service import DeadlineService, load_book
from workers.sla.engine import (
    Effects,
    SlaRules,
    State,
    apply_lifecycle,
    apply_tick,
    keyed_contributions,
    new_state,
    responses,
    subjects,
)

log = logging.getLogger(__name__)

STAGE = "sla"
LIFECYCLE_STAGE = "lifecycle"
SEVERITY = {"warning": "warning", "breach": "critical", "escalation": "page"}
MAX_PENDING = 32


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
        self.prefix = f"{ctx.settings.app_id}:"
        self.aggregates: dict[int, PartitionAggregates] = {}
        self.needs_rebuild = True
        self.gauge_authorities: set[str] = set()  # exported by _refresh_gauges last time
        self.index_dirty: set[int] = set()
        self.table = app.Table(
            "sla-state",
            partitions=ctx.settings.partitions,
            key_type=bytes,
            use_partitioner=True,
        )
        self.routed_topic = t.topic_name(ctx.settings, t.ROUTED)

    def assigned_partitions(self) -> set[int]:
        return {
            tp.partition for tp in self.app.consumer.assignment()
            if tp.topic == self.routed_topic
        }

    def partition_aggregates(self, partition: int) -> PartitionAggregates:
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PartitionAggregates()
        return agg

    def rebuild_aggregates(self) -> None:
        """Sum the contributions of every appeal in our partitions (after recovery)."""
        assigned = self.assigned_partitions()
        fresh = {p: PartitionAggregates() for p in assigned}
        for state in self.table.values():
            agg = fresh.get(state.get("p", -1)) if isinstance(state, dict) else None
            if agg is None or "id" not in state:
                continue
            agg.counters.update(keyed_contributions(state))
            for auth, day, seconds in responses(state):
                for subject in [auth, *subjects(state)[1:]]:
                    agg.add_response(subject, day, seconds)
        self.aggregates = fresh
        self.index_dirty |= assigned
        self.needs_rebuild = False
        log.info("SLA aggregates rebuilt for partitions %s", sorted(assigned))


def install(app: faust.App, ctx: WorkerContext, router: Any) -> SlaRuntime:
    settings = ctx.settings
    service = DeadlineService(load_book(router.rules.authorities.values()))
    rules = service.rules(settings.warning_share, settings.escalation_after)

    def resolve_parent(authority_id: str) -> str | None:
        try:
            parent: str | None = router.authority(authority_id).parent
            return parent
        except KeyError:
            return None

    from workers.geo.regions import region_timezone

    def region_tz(region: str, hint: str | None) -> str:
        if hint:
            return hint
        try:
            return region_timezone(region)
        except KeyError:
            return "Europe/Moscow"

    rt = SlaRuntime(app, ctx, rules, resolve_parent, region_tz)
    rt.router = router
    topo = ctx.topology
    source = topo.channel_of(t.ROUTED, t.LIFECYCLE, t.SLA_LIFECYCLE, t.SLA_TICKS)
    lifecycle_topic = t.topic_name(settings, t.SLA_LIFECYCLE)
    external_lifecycle_topic = t.topic_name(settings, t.LIFECYCLE)
    owns = lifecycle_routing.PartitionCheck(settings.partitions)
    ticks_topic = t.topic_name(settings, t.SLA_TICKS)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        rt.needs_rebuild = True

    @app.agent(source, name="sla")
    async def sla(stream: faust.StreamT) -> None:
        async for events in batches(stream, settings):
            with crash_on_error(STAGE):
                if rt.needs_rebuild:
                    rt.rebuild_aggregates()
                outbox = ctx.outbox(STAGE)
                now = time.time()
                changed: dict[bytes, State] = {}
                schedule: dict[int, timers.Plan] = {}
                for event in events:
                    msg = event.message
                    key = msg.key if isinstance(msg.key, bytes) else None
                    external = msg.topic == external_lifecycle_topic
                    try:
                        if external:
                            data = parse_event(msg.value, LifecycleEvent.schema)
                        else:
                            data = parse_event(msg.value)
                    except InvalidEvent as exc:
                        await outbox.dead_letter(event, stage=LIFECYCLE_STAGE if external
                                                 else STAGE, reason=exc.reason, detail=exc.detail)
                        continue
                    if external:
                        forward = lifecycle_routing.forward_to(data, key, msg.partition, owns)
                        if forward is not None:
                            # Triage decisions, and events a foreign partitioner put on a
                            # partition that does not own the appeal: re-keyed, seen again.
                            await outbox.send(forward, data["appeal_id"].encode(), msg.value or b"")
                            continue
                        metrics.LIFECYCLE_DIRECT.inc()
                    if key is None:
                        await outbox.dead_letter(event, stage=STAGE, reason="no_key")
                        continue
                    if msg.topic == lifecycle_topic and recompute.is_control(data):
                        # `appeals sla recompute`: every open appeal of this partition.
                        try:
                            moved = recompute.recompute_partition(rt, data, msg.partition, changed)
                        except ValueError as exc:  # a broken policy or calendar file
                            log.error("SLA recompute refused: %s", exc)
                            await outbox.dead_letter(event, stage=STAGE, reason="recompute_failed",
                                                     detail=str(exc)[:300])
                            continue
                        for moved_key, moved_state, moved_effects in moved:
                            changed[moved_key] = moved_state
                            await _emit(rt, outbox, moved_state, moved_effects, now)
                            schedule.setdefault(moved_state["p"], timers.Plan()).record(
                                moved_effects)
                        continue
                    state = changed.get(key)
                    if state is None:
                        # A private copy: a transition that is then discarded (a repeat, an
                        # error) must not leave its marks on the table's in-memory value.
                        state = _copy_state(rt.table.get(key))
                    new: State | None
                    try:
                        if external or msg.topic == lifecycle_topic:
                            new, effects = _on_lifecycle(rt, state, data)
                        elif msg.topic == ticks_topic:
                            new, effects = _on_tick(rt, state, data)
                        else:
                            refused: list[tuple[dict[str, Any], str]] = []
                            new, effects = _on_routed(rt, state, data, msg.partition, refused)
                            for held, why in refused:
                                await outbox.dead_letter_raw(
                                    orjson.dumps(held), key, topic=lifecycle_topic,
                                    partition=-1, offset=-1, stage=STAGE,
                                    reason="redirect_refused", detail=why[:300])
                    except RedirectRefused as exc:
                        metrics.child(metrics.LIFECYCLE, "redirected", "rejected").inc()
                        await outbox.dead_letter(event, stage=STAGE, reason="redirect_refused",
                                                 detail=str(exc)[:300])
                        continue
                    except (KeyError, ValueError, TypeError) as exc:
                        log.warning("SLA: cannot apply %s[%d]@%d: %s", msg.topic, msg.partition,
                                    msg.offset, type(exc).__name__)
                        await outbox.dead_letter(event, stage=STAGE, reason="unprocessable",
                                                 detail=f"{type(exc).__name__}: {exc}"[:300])
                        continue
                    if new is None:
                        continue
                    changed[key] = new
                    if "id" not in new:  # still only pending events
                        continue
                    try:
                        await _emit(rt, outbox, new, effects, now)
                    except Exception as exc:  # a bug must not stop every other appeal
                        log.exception("SLA: cannot emit effects of %s[%d]@%d", msg.topic,
                                      msg.partition, msg.offset)
                        await outbox.dead_letter(event, stage=STAGE, reason="internal_error",
                                                 detail=type(exc).__name__)
                    schedule.setdefault(new["p"], timers.Plan()).record(effects)
                await outbox.flush()
                assigned = rt.assigned_partitions()
                await _write_redis(rt, _store(rt, changed, assigned),
                                   {p: plan for p, plan in schedule.items() if p in assigned})
                observe_stage_latency(STAGE, events)

    @app.timer(settings.sweep_interval)
    async def sweep() -> None:
        await _sweep(rt)

    @app.timer(2.0)
    async def publish_figures() -> None:
        await _maintain(rt)

    return rt


def _copy_state(state: State | None) -> State | None:
    if state is None:
        return None
    return {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()}


def _on_routed(rt: SlaRuntime, state: State | None, data: dict[str, Any], partition: int,
               refused: list[tuple[dict[str, Any], str]] | None = None,
               ) -> tuple[State | None, Effects]:
    """A new appeal's state, with the lifecycle events that overtook its routing applied.

    A held redirect gets the same check as one arriving after routing (the body complained
    about, an unknown body); a refused one is left out and handed back in ``refused`` with the
    reason, for the caller to dead-letter.
    """
    if state is not None and "id" in state:
        metrics.child(metrics.LIFECYCLE, "routed", "duplicate").inc()
        return None, Effects(outcome="duplicate")
    registered_ts = dt.datetime.fromisoformat(data["registered_at"]).timestamp()
    tz = rt.region_tz(data["region"], data.get("timezone"))
    new, effects = new_state(data, partition, registered_ts, tz, rt.rules)
    metrics.child(metrics.LIFECYCLE, "routed", "applied").inc()
    for pending in (state or {}).get("pending", []):
        if pending.get("event") == "redirected" and rt.router is not None:
            try:
                _check_redirect(rt.router, new, pending)
            except RedirectRefused as exc:
                metrics.child(metrics.LIFECYCLE, "redirected", "rejected").inc()
                if refused is not None:
                    refused.append((pending, str(exc)))
                continue
        _merge(effects, apply_lifecycle(new, pending, rt.rules, rt.resolve_parent))
    rt.partition_aggregates(partition).apply_delta([], keyed_contributions(new))
    return new, effects


def _merge(into: Effects, more: Effects) -> None:
    into.alerts.extend(more.alerts)
    into.timers.extend(more.timers)
    into.cancel.extend(more.cancel)
    if more.answered:
        into.answered = more.answered
    into.answers += more.answers


def _on_lifecycle(rt: SlaRuntime, state: State | None,
                  data: dict[str, Any]) -> tuple[State | None, Effects]:
    if state is None or "id" not in state:
        # The authority's event overtook the routing (different topics): keep it for later.
        pending = list((state or {}).get("pending", []))
        if any(p.get("event_id") == data.get("event_id") for p in pending):
            return None, Effects(outcome="duplicate")
        pending.append(data)
        metrics.child(metrics.LIFECYCLE, data.get("event", "unknown"), "pending").inc()
        return {"pending": pending[-MAX_PENDING:]}, Effects(outcome="pending")
    if data["event"] == "redirected" and rt.router is not None:
        _check_redirect(rt.router, state, data)
    before = keyed_contributions(state)
    effects = apply_lifecycle(state, data, rt.rules, rt.resolve_parent)
    metrics.child(metrics.LIFECYCLE, data["event"], effects.outcome).inc()
    if effects.outcome in ("duplicate",):
        return None, effects
    rt.partition_aggregates(state["p"]).apply_delta(before, keyed_contributions(state))
    return state, effects


class RedirectRefused(ValueError):
    """A redirect to an unknown body, or to the body the complaint is about (59-FZ art. 8)."""


def _check_redirect(router: Any, state: State, data: dict[str, Any]) -> None:
    from workers.routing import RedirectRejected, UnknownAuthority

    try:
        router.redirect(state["id"], data.get("to_authority_id") or "",
                        complaint_about=state.get("complaint_about"))
    except (UnknownAuthority, RedirectRejected) as exc:
        raise RedirectRefused(str(exc)) from None


def _on_tick(rt: SlaRuntime, state: State | None,
             data: dict[str, Any]) -> tuple[State | None, Effects]:
    tick = SlaTick.from_dict(data)
    if state is None or "id" not in state:
        return None, Effects(outcome="stale")
    before = keyed_contributions(state)
    effects = apply_tick(state, tick.kind, tick.cycle, rt.rules)
    if not effects.alerts:
        return None, effects
    rt.partition_aggregates(state["p"]).apply_delta(before, keyed_contributions(state))
    return state, effects


async def _emit(rt: SlaRuntime, outbox: Any, state: State, effects: Effects, now: float) -> None:
    clock = rt.ctx.clock
    fired_at = dt.datetime.fromtimestamp(clock.now(), dt.UTC).isoformat(timespec="seconds")
    for alert in effects.alerts:
        record = SlaAlert(
            alert_id=f"{state['id']}:{alert.level}:{alert.cycle}",
            appeal_id=state["id"],
            level=alert.level,
            regime=state["regime"],
            region=state["region"],
            authority_id=state["auth"],
            notify_authority_id=alert.notify_authority_id,
            due_at=dt.datetime.fromtimestamp(alert.due_ts, dt.UTC).isoformat(timespec="seconds"),
            fired_at=fired_at,
            severity=SEVERITY[alert.level],
            category=state.get("cat"),
            urgent=bool(state.get("urgent")),
        )
        await outbox.send_record(t.SLA_ALERTS, state["id"], record)
        metrics.SLA_ALERTS.labels(alert.level, state["regime"]).inc()
        if alert.level == "breach":
            metrics.BREACHES.labels(state["auth"], state["regime"]).inc()
        metrics.TIMER_LAG.observe(max(0.0, now - clock.wall_time_of(alert.due_ts)))
    if effects.answered is not None:
        seconds, on_time = effects.answered
        metrics.ANSWERED.labels(state["regime"], "true" if on_time else "false").inc()
        metrics.RESPONSE_TIME.labels(state["regime"]).observe(seconds)
        # The answers this transition recorded (engine.responses: the rebuild adds the same).
        agg = rt.partition_aggregates(state["p"])
        for auth, day, seconds in responses(state)[-max(1, effects.answers):]:
            for subject in [auth, *subjects(state)[1:]]:
                agg.add_response(subject, day, seconds)


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
        if partition is not None and partition not in owned:
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
            async with rt.ctx.redis.pipeline(transaction=False) as pipe:
                for partition, plan in schedule.items():
                    timers.schedule(pipe, rt.prefix, partition, *plan.net())
                await pipe.execute()
        await read_model.write(rt.ctx.redis, rt.prefix, changed.values(), rt.ctx.clock.now())
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
                pipe.exists(timers.ready_key(rt.prefix, p))
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
        if not ready:
            rt.index_dirty.add(p)
            continue
        for member, score in due:
            appeal_id, kind, cycle = timers.parse_member(member)
            tick = SlaTick(appeal_id=appeal_id, kind=kind, due_ts=float(score), cycle=cycle)
            await outbox.send_record(t.SLA_TICKS, appeal_id, tick)
            fired.setdefault(p, []).append(member)
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
    """Rebuild what Redis lost, publish figures, refresh gauges."""
    if not cast(Any, rt.app.tables).recovery.completed.is_set():
        return
    if rt.needs_rebuild:
        rt.rebuild_aggregates()
    assigned = rt.assigned_partitions()
    try:
        for p in sorted(rt.index_dirty & assigned):
            # Unmarked before the snapshot, not after the awaits: a write that fails while
            # this rebuild is in flight marks the partition again and must not be lost (the
            # same race as the figures' dirty flag in ``publish``).
            rt.index_dirty.discard(p)
            states = [s for s in list(rt.table.values())
                      if isinstance(s, dict) and s.get("p") == p and "id" in s]
            count = await timers.rebuild(rt.ctx.redis, rt.prefix, p, states,
                                         lambda st: rt.rules.of(st).escalation_after)
            metrics.INDEX_REBUILDS.inc()
            log.info("SLA due-time index of partition %d rebuilt: %d timers", p, count)
            # The index is missing after Redis lost its data (or at start-up): the read model
            # and the published figures of this partition are derived data lost with it.
            # Versions keep this snapshot from overwriting what the agent wrote meanwhile.
            await read_model.write(rt.ctx.redis, rt.prefix, states, rt.ctx.clock.now())
            rt.partition_aggregates(p).dirty = True
            await asyncio.sleep(0)
        oldest = oldest_kept_day(rt.ctx.clock.now())
        for p in sorted(assigned):
            agg = rt.partition_aggregates(p)
            agg.expire(oldest)
            if agg.dirty:
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
