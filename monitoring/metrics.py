"""Every Prometheus metric the workers (and the intake gateway and the API) export, declared in
one place.

Why one module: dashboards, alert rules and their tests refer to these names, and a test parses
the dashboards against :data:`METRIC_NAMES`; a name invented inside an agent would slip past that
check. Naming follows the Prometheus conventions: base units (seconds), ``_total`` for counters,
bounded label sets. Labels never carry appeal ids or personal data; the ``authority`` label is
bounded by the routing configuration (a few hundred authorities per region at most).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Stage latency buckets: the pipeline works in milliseconds, so buckets run from 1 ms to 10 s.
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Response-time buckets: authorities answer in hours to weeks (fz59 allows 30 days + 30 more).
_RESPONSE_BUCKETS = tuple(
    h * 3600.0 for h in (1, 4, 8, 24, 48, 72, 24 * 5, 24 * 7, 24 * 10, 24 * 15, 24 * 30, 24 * 60)
)

RECEIVED = Counter(
    "appeals_received",
    "Intake events read from the intake topics, by channel.",
    ["channel"],
    registry=REGISTRY,
)
REGISTERED = Counter(
    "appeals_registered",
    "Appeals accepted by intake and published to appeals.registered.",
    ["channel", "regime"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "appeals_duplicates",
    "Intake events recognised as exact duplicates of an already registered appeal.",
    ["channel"],
    registry=REGISTRY,
)
NEAR_DUP_DROPPED = Counter(
    "appeals_near_dup_entries_dropped",
    "Near-duplicate candidates dropped because one author at one address had more than "
    "APPEALS_NEAR_DUP_BUCKET_MAX appeals in the window (an organisation or an operator's "
    "number); resends of those older appeals are not flagged.",
    registry=REGISTRY,
)
DEADLETTER = Counter(
    "appeals_deadletter",
    "Events sent to the dead-letter topic, by stage and reason code.",
    ["stage", "reason"],
    registry=REGISTRY,
)
CLASSIFIED = Counter(
    "appeals_classified",
    "Appeals classified, by category and urgency.",
    ["category", "urgent"],
    registry=REGISTRY,
)
TRIAGED = Counter(
    "appeals_triage",
    "Appeals sent to the manual triage queue because classifier confidence was low.",
    registry=REGISTRY,
)
TRIAGE_WAITING = Gauge(
    "appeals_triage_waiting",
    "Appeals waiting in the triage table for a human decision, in this worker's partitions, "
    "by regime (after APPEALS_TRIAGE_MAX_WAIT, APPEALS_TRIAGE_INCIDENT_MAX_WAIT for incident "
    "and hotline, they go to the region's triage desk).",
    ["regime"],
    registry=REGISTRY,
)
TRIAGE_OLDEST_WAIT = Gauge(
    "appeals_triage_oldest_wait_seconds",
    "Seconds (wall clock) the oldest appeal of the regime waiting for a triage decision in "
    "this worker's partitions has waited since its pending copy was written (0 when none).",
    ["regime"],
    registry=REGISTRY,
)
ROUTED = Counter(
    "appeals_routed",
    "Appeals routed to an authority, by category and routing level.",
    ["category", "level"],
    registry=REGISTRY,
)
LIFECYCLE = Counter(
    "appeals_lifecycle_events",
    "Lifecycle events applied to SLA state, by event type and outcome.",
    ["event", "outcome"],
    registry=REGISTRY,
)
LIFECYCLE_DIRECT = Counter(
    "appeals_lifecycle_direct",
    "Authorities' lifecycle events applied straight from appeals.lifecycle (the rest are "
    "re-keyed once: triage decisions and events a foreign partitioner misplaced).",
    registry=REGISTRY,
)
LIFECYCLE_REKEYED = Counter(
    "appeals_lifecycle_rekeyed",
    "Authorities' lifecycle events re-keyed by appeal_id before use, by reason.",
    ["reason"],
    registry=REGISTRY,
)
SLA_ALERTS = Counter(
    "appeals_sla_alerts",
    "SLA alerts emitted (warning, breach, escalation), by level, regime and stage (answer, or "
    "a tracked stage of the policy file such as redirect or final_answer).",
    ["level", "regime", "stage"],
    registry=REGISTRY,
)
SLA_ALERTS_ENDED = Counter(
    "appeals_sla_alerts_ended",
    "End records of SLA alerts emitted (the period ended, or the deadline the alert was about "
    "moved past it), by the level ended and stage (answer, or a tracked stage).",
    ["level", "stage"],
    registry=REGISTRY,
)
BREACHES = Counter(
    "appeals_sla_breaches",
    "SLA breaches of the answer deadline per authority (bounded by the routing configuration) "
    "and regime; stage breaches are in appeals_sla_alerts_total.",
    ["authority", "regime"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "appeals_notifications",
    "Alert deliveries to supervisors, by channel (log, webhook, alertmanager) and result.",
    ["channel", "result"],
    registry=REGISTRY,
)
NOTIFY_PARKED = Counter(
    "appeals_notify_parked",
    "SLA alerts parked on appeals.notify.retry because a receiver failed the quick attempts, by "
    "channel (webhook, alertmanager).",
    ["channel"],
    registry=REGISTRY,
)
NOTIFY_RETRIES = Counter(
    "appeals_notify_retries",
    "Delivery attempts of parked SLA alerts, by channel and result (sent, failed, rejected).",
    ["channel", "result"],
    registry=REGISTRY,
)
NOTIFY_PARKED_ALERTS = Gauge(
    "appeals_notify_parked_alerts",
    "SLA alerts parked and not yet delivered that this worker parked or is retrying, by channel.",
    ["channel"],
    registry=REGISTRY,
)
NOTIFY_PARKED_OLDEST_AGE = Gauge(
    "appeals_notify_parked_oldest_age_seconds",
    "Seconds since the first failed delivery of the oldest SLA alert this worker parked or is "
    "retrying, by channel (0 when none).",
    ["channel"],
    registry=REGISTRY,
)
ANSWERED = Counter(
    "appeals_answered",
    "Appeals answered, by regime and whether the answer was on time.",
    ["regime", "on_time"],
    registry=REGISTRY,
)
RESPONSE_TIME = Histogram(
    "appeals_response_time_seconds",
    "Time from registration to answer, in seconds of the SLA clock.",
    ["regime"],
    buckets=_RESPONSE_BUCKETS,
    registry=REGISTRY,
)
STAGE_LATENCY = Histogram(
    "appeals_stage_latency_seconds",
    "Wall time from an event's Kafka timestamp to the end of its processing in a stage.",
    ["stage"],
    buckets=_STAGE_BUCKETS,
    registry=REGISTRY,
)
BROKER_ACK_WAIT = Histogram(
    "appeals_broker_ack_wait_seconds",
    "Time a batch waited for the broker to acknowledge its outputs before its offsets may be "
    "committed; the stage's next batch waits behind it.",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "appeals_stage_batch_size",
    "Events handled per batch in a stage: shows whether batching works under load.",
    ["stage"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
    registry=REGISTRY,
)
OPEN = Gauge(
    "appeals_open",
    "Appeals currently open (not answered or closed), per authority, in this worker's partitions.",
    ["authority"],
    registry=REGISTRY,
)
OPEN_OVERDUE = Gauge(
    "appeals_open_overdue",
    "Open appeals past their answer deadline, per authority, in this worker's partitions.",
    ["authority"],
    registry=REGISTRY,
)
ON_TIME_RATIO = Gauge(
    "appeals_on_time_ratio",
    "Answered on time / (answered + open overdue + closed overdue + redirected overdue) per "
    "authority and window.",
    ["authority", "window"],
    registry=REGISTRY,
)
RECORDS_REDELIVERED = Counter(
    "appeals_records_redelivered",
    "Records handed to a stream again after a seek back, which Faust would have dropped as "
    "already read (streams.fastpath.refetched): each one is a record Faust would have lost.",
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "appeals_event_loop_lag_seconds",
    "How late a 100 ms sleep on the worker's event loop wakes up: every agent, fetch and timer "
    "of the process waits this long behind whatever holds the loop.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
TIMERS = Gauge(
    "appeals_sla_timers",
    "SLA timers pending in this worker's partitions (due-time index size).",
    registry=REGISTRY,
)
TIMER_LAG = Histogram(
    "appeals_sla_timer_lag_seconds",
    "Wall-clock delay between an SLA timer's due moment and the alert its tick raised (alerts "
    "an event raises for a deadline already passed, e.g. a late redirect, are not timers).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
INDEX_REBUILDS = Counter(
    "appeals_sla_index_rebuilds",
    "Rebuilds of the Redis due-time index from the SLA table (start-up or Redis lost).",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "appeals_consumer_lag",
    "Records of each assigned partition not yet processed and committed (its end minus the "
    "committed offset; records read into a stream's buffer count until processed).",
    ["topic", "partition"],
    registry=REGISTRY,
)
STAGE_LAST_PROGRESS = Gauge(
    "appeals_stage_last_progress_timestamp_seconds",
    "Unix time a stage of this worker (intake, triage, sla, notify, notify_retry) last finished "
    "a batch, had no record of its partitions waiting to be processed and committed, or could "
    "not work (start-up, rebalance, table recovery): far behind now, the stage hangs.",
    ["stage"],
    registry=REGISTRY,
)
WORKER_UP = Gauge(
    "appeals_worker_up",
    "1 while the worker process is running its agents.",
    registry=REGISTRY,
)
TABLE_STATE_DISCARDED = Counter(
    "appeals_table_state_discarded",
    "Worker starts that discarded the local RocksDB table state (APPEALS_STORE=rocksdb://) "
    "because the last stop on the data directory was not clean (killed or crashed): the "
    "tables then recover fully from their changelogs.",
    registry=REGISTRY,
)
FAUST_PATCH_ACTIVE = Gauge(
    "appeals_faust_patch_active",
    "1 when the worker runs with the Faust patch (fastpath, resume_order, natural_batches, "
    "changelog_flush, ack_safety, fetch_snapshot, end_offsets), 0 "
    "when it runs with Faust's own behaviour, which lost records on recovery and stop: the "
    "installed faust-streaming differs from the checked one (APPEALS_REQUIRE_FAUST_PATCHES="
    "false) or the patch is turned off.",
    ["patch"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "appeals_redis_errors",
    "Failed Redis operations (the pipeline goes on; Redis holds only derived data).",
    ["operation"],
    registry=REGISTRY,
)


# --------------------------------------------------------------------------- intake gateway
# The HTTP intake gateway (workers/intake/gateway.py) serves these on its own ``GET /metrics``,
# from a registry of its own: with the workers' registry it would export ``appeals_worker_up 0``
# and zeroed pipeline counters under its instance (the API keeps its own registry likewise).
# Labels are fixed sets: ``endpoint`` is a route name (never the raw path), ``code`` the HTTP
# status the gateway answered, ``outcome`` what became of posted appeals. No client ids.
GATEWAY_REGISTRY = CollectorRegistry(auto_describe=True)

# Gateway answers: milliseconds when all is well, up to APPEALS_GATEWAY_SEND_TIMEOUT (30 s) when
# Kafka stalls.
_GATEWAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

GATEWAY_REQUESTS = Counter(
    "appeals_gateway_requests",
    "HTTP requests answered by the intake gateway, by endpoint (v1_appeals, open311_requests, "
    "open311_request, open311_services, healthz, metrics, other) and status code.",
    ["endpoint", "code"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_REQUEST_DURATION = Histogram(
    "appeals_gateway_request_duration_seconds",
    "Time the intake gateway took to answer a request, by endpoint.",
    ["endpoint"],
    buckets=_GATEWAY_BUCKETS,
    registry=GATEWAY_REGISTRY,
)
GATEWAY_APPEALS = Counter(
    "appeals_gateway_appeals",
    "Appeals posted to the intake gateway, by outcome: accepted (stored in Kafka), duplicate "
    "(idempotent retry, nothing sent), rejected (invalid, answered 400; an Idempotency-Key "
    "reused with another request, 422), not_stored (503), "
    "outcome_unknown (504: handed to the producer, not confirmed in time), in_progress (409).",
    ["outcome"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_KAFKA_LAST_ACK = Gauge(
    "appeals_gateway_kafka_last_ack_timestamp_seconds",
    "Unix time of the intake gateway's last send confirmed by Kafka (0 before the first).",
    registry=GATEWAY_REGISTRY,
)

# --------------------------------------------------------------------------- HTTP API
# The read API (workers/api/app.py) registers these in its own registry (``api_registry``) next
# to ``appeals_on_time_ratio`` and ``appeals_redis_errors_total``; API_REGISTRY holds them for
# the catalogue and its lint. ``route`` is the route's path template (``/v1/appeals/{appeal_id}``,
# never the requested path: no appeal ids) or ``unmatched``, ``code`` the status answered.
API_REGISTRY = CollectorRegistry(auto_describe=True)

# API answers: milliseconds from the cached snapshot, up to seconds when a snapshot is computed
# or Redis is slow (its socket timeout is 5 s, a pooled connection is waited for 2 s).
_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

API_REQUESTS = Counter(
    "appeals_api_requests",
    "HTTP requests answered by the read API, by route (its path template, or unmatched) and "
    "status code: 503 when Redis is unreachable, busy or the read model is rebuilt, 500 a bug.",
    ["route", "code"],
    registry=API_REGISTRY,
)
API_REQUEST_DURATION = Histogram(
    "appeals_api_request_duration_seconds",
    "Time the read API took to answer a request, by route (its path template, or unmatched).",
    ["route"],
    buckets=_API_BUCKETS,
    registry=API_REGISTRY,
)
API_READ_MODEL_READY = Gauge(
    "appeals_api_read_model_ready",
    "1 when every one of APPEALS_PARTITIONS partitions has published its figures to the read "
    "model, 0 while it is rebuilt after Redis lost its data (figure, appeal and breach reads "
    "answer 503 rebuilding), as this API process last read it (NaN before its first read).",
    registry=API_REGISTRY,
)
# Unknown until the API first reads the partitions' marker: a 0 at start-up with Redis away
# would read as a rebuild (AppealsApiReadModelRebuilding) instead of an outage.
API_READ_MODEL_READY.set(float("nan"))

# The HTTP servers' own errors, logged at most once a minute each (streams/http_logging.py):
# these count them all. ``server`` is ``gateway`` or ``api``; the API registers them too.
HTTP_BAD_REQUESTS = Counter(
    "appeals_http_bad_requests",
    "Malformed HTTP requests aiohttp refused before any handler (bad request line or header, "
    "a line too long), by server (gateway, api).",
    ["server"],
    registry=GATEWAY_REGISTRY,
)
HTTP_SERVER_ERRORS = Counter(
    "appeals_http_server_errors",
    "Errors aiohttp's server logged outside the handlers' own error handling, by server.",
    ["server"],
    registry=GATEWAY_REGISTRY,
)
HTTP_ACCEPT_ERRORS = Counter(
    "appeals_http_accept_errors",
    "Failed accept() of new connections (out of file descriptors or memory), by server.",
    ["server"],
    registry=GATEWAY_REGISTRY,
)


def _exported_names() -> frozenset[str]:
    """Names as they appear in a scrape, including the suffixes prometheus-client adds."""
    names: set[str] = set()
    for metric in [*REGISTRY.collect(), *GATEWAY_REGISTRY.collect(), *API_REGISTRY.collect()]:
        base = metric.name
        if metric.type == "counter":
            names.update({f"{base}_total", f"{base}_created"})
        elif metric.type == "histogram":
            names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"})
        else:
            names.add(base)
    return frozenset(names)


METRIC_NAMES: frozenset[str] = _exported_names()


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: ``labels()`` takes a lock and checks its
    arguments on every call (~1.5% of a worker's CPU for the per-event lifecycle counter).
    Only for label values from a bounded set, like every label here."""
    key = (id(metric), values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found
