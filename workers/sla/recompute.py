"""``appeals sla recompute``: new deadlines for open appeals after a calendar or policy change.

Why a control event rather than a script over the table: Faust tables can only change inside
stream iteration, and each appeal's state lives on the worker that owns its partition. So the
command publishes one control message per partition of ``appeals.sla.lifecycle`` (the SLA
agent's input, not validated as an authority's event); the worker owning partition ``p``
reloads the policy book and calendar files from disk (``APPEALS_POLICY_FILE``,
``APPEALS_CALENDAR_FILE``: the same paths, re-read) and recomputes every open appeal of ``p``
with :func:`workers.sla.engine.recompute`, inside its stream, through the same outbox, table and
Redis writes as any other event. A repeated or replayed request changes nothing, because an
unchanged due moment leaves the state untouched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any, cast

import orjson

from monitoring import metrics
from streams import topics as t
from streams.settings import Settings
from workers.sla.engine import Effects, State, copy_state, keyed_contributions, recompute

log = logging.getLogger(__name__)

#: Appeals recomputed between two yields to the event loop (see :func:`recompute_partition`).
YIELD_EVERY = 1000

CONTROL = "recompute"
KEY_PREFIX = b"\x00control:"
"""Control keys start with NUL: appeal ids are hex, so a control key never names an appeal."""


def is_control(data: dict[str, Any]) -> bool:
    return data.get("control") == CONTROL


def control_message(request_id: str, partition: int, reason: str | None = None,
                    requested_at: str | None = None) -> tuple[bytes, bytes]:
    """(key, value) of one partition's recompute request."""
    value = {
        "control": CONTROL,
        "request_id": request_id,
        "partition": partition,
        "requested_at": requested_at
        or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    return KEY_PREFIX + request_id.encode(), orjson.dumps(value)


def reload_rules(rt: Any) -> None:
    """Re-read policy and calendar files; raises (PolicyError, CalendarFileError) if broken."""
    from workers.deadlines.calendar import BusinessCalendar
    from workers.deadlines.compute import default_calendar
    from workers.sla.deadline_service import DeadlineService, refresh_book

    router = getattr(rt, "router", None)
    # Both files are read and checked before anything in use is replaced. The calendar's
    # process-wide cache used to be cleared first: a broken calendar file refused the
    # request and then failed every later deadline (new appeals dead-lettered as
    # unprocessable) while the log said only "recompute refused" (review of session 15).
    calendar = BusinessCalendar.from_env()
    # The process's shared book (with the authorities' own SLA blocks), the file read again:
    # intake and route take the same one. A book of the recompute's own put the SLA agent on
    # other policies than route, which dropped a subcategory the edited file added. A file
    # changed within the rules watcher's poll may be mid-save: the request is refused.
    book = refresh_book(router.rules if router is not None else None)
    default_calendar.cache_clear()
    service = DeadlineService(book, calendar)
    from workers.sla.agent import sla_rules

    # The same rules the agent starts with: the authorities' own zones (``zone_of``, for the
    # receiving body of a redirect) included, or a recompute counted redirected appeals in
    # the wrong zone from then on.
    rt.rules = sla_rules(service, rt.ctx.settings, router)
    rt.book_of = book
    if router is not None:
        rt.rules_of = router.rules


async def recompute_partition(rt: Any, data: dict[str, Any], partition: int,
                              changed: dict[bytes, State]) -> list[tuple[bytes, State, Effects]]:
    """Recompute every open appeal of ``partition``; returns those whose deadline moved.

    Yields to the event loop every :data:`YIELD_EVERY` appeals: a partition of 250,000 open
    appeals took ~45 s in one step on this host, every other agent and timer waiting. It runs
    inside the SLA agent's batch, so nothing else writes the table meanwhile.

    ``changed`` holds states written earlier in the same batch (not yet in the table): they
    win over the table's copies. The caller stores the returned states and sends effects.
    """
    request_id = str(data.get("request_id") or "")
    if getattr(rt, "recompute_request", None) != request_id:
        reload_rules(rt)  # once per request and worker, not once per partition
        rt.recompute_request = request_id
    now = rt.ctx.clock.now()
    candidates: dict[bytes, State] = {}
    for key, state in _items(rt.table):
        if isinstance(state, dict) and state.get("p") == partition and "id" in state:
            candidates[key] = state
    for key, state in changed.items():
        if "id" in state and state.get("p") == partition:
            candidates[key] = state
    out: list[tuple[bytes, State, Effects]] = []
    counts: dict[str, int] = {}
    for n, (key, stored) in enumerate(candidates.items(), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        # Each appeal on a private copy, and one that cannot be recomputed (a state an older
        # version stored half applied) is left as it is: it must neither refuse the request
        # for the whole partition nor leave the appeals before it moved in the table with no
        # timers armed for their new deadlines.
        try:
            state = cast(State, copy_state(stored))
            before = keyed_contributions(stored)
            effects = recompute(state, rt.rules, now)
            after = keyed_contributions(state) if effects.outcome == "recomputed" else before
        except Exception as exc:
            log.error("SLA recompute: the stored state of %r cannot be recomputed, left as it "
                      "is: %s", key, type(exc).__name__)
            counts["unprocessable"] = counts.get("unprocessable", 0) + 1
            metrics.LIFECYCLE.labels("recompute", "unprocessable").inc()
            continue
        counts[effects.outcome] = counts.get(effects.outcome, 0) + 1
        metrics.LIFECYCLE.labels("recompute", effects.outcome).inc()
        if effects.outcome != "recomputed":
            continue
        rt.partition_aggregates(partition).apply_delta(before, after)
        out.append((key, state, effects))
    log.info("SLA recompute %s, partition %d: %s", request_id or "?", partition,
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no appeals")
    return out


def _items(table: Any) -> Iterable[tuple[bytes, Any]]:
    return list(table.items())


def publish_recompute(settings: Settings, partitions: Iterable[int] | None = None,
                      reason: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Publish one request per partition (all by default) and wait for the broker's acks."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    topic = t.topic_name(settings, t.SLA_LIFECYCLE)
    request_id = uuid.uuid4().hex
    try:
        if topic not in t.existing_topics(settings.kafka_bootstrap, timeout=timeout):
            # Asked first: without auto-creation the producer waits for the topic's metadata
            # until max_block_ms, then times out without naming it.
            raise t.TopicMissing(topic)
        # No auto-creation: on a fresh broker the request created appeals.sla.lifecycle with
        # the broker's default partition count, which `topics create` and the workers refuse.
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                 retries=5, request_timeout_ms=int(timeout * 1000),
                                 allow_auto_create_topics=False)
    except KafkaError as exc:
        raise RuntimeError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        available = producer.partitions_for(topic)
        if not available:
            raise t.TopicMissing(topic)
        wanted = sorted(available) if partitions is None else sorted(set(partitions))
        unknown = [p for p in wanted if p not in available]
        if unknown:
            raise RuntimeError(f"topic {topic} has no partition(s) {unknown}; "
                               f"it has 0..{max(available)}")
        futures = []
        for p in wanted:
            key, value = control_message(request_id, p, reason)
            futures.append(producer.send(topic, key=key, value=value, partition=p))
        producer.flush(timeout)
        for fut in futures:
            fut.get(timeout)
    except KafkaError as exc:
        raise RuntimeError(f"publishing to {topic} failed: {exc}") from exc
    finally:
        producer.close()
    return {"request_id": request_id, "topic": topic, "partitions": wanted,
            "reason": reason}
