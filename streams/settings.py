"""Configuration: validated defaults, overridden by a TOML file, overridden by the environment.

Why three layers: operators set a handful of things per deployment in the environment (broker,
Redis), keep the rest in a reviewed file (``APPEALS_CONFIG``), and everything has a default that
works on a laptop. A bad value stops the process at start-up with the variable's name in the
message, never halfway through a stream.

Values from the TOML file are checked and converted by the field's type exactly like
environment values (a string ``"false"`` is false, ``"8"`` is 8; a number where a string is
expected is an error), and errors name the file and the key. A top-level key that is not a
setting is an error when its value is a scalar (almost always a typo, e.g. ``partitons = 8``);
tables (``[gateway]`` ...) are kept in ``Settings.extra`` for the sub-systems that read their
own section.

Some sub-systems read variables of their own straight from the environment (the gateway, the
near-duplicate detector, the SLA policy and calendar files ...): :data:`OTHER_VARIABLES` lists
them, so ``appeals config`` shows every variable the code reads.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.urls import http_url_problem

log = logging.getLogger(__name__)

#: Table stores a worker can run with (streams/rocksdb_store.py makes the RocksDB ones).
STORE_SCHEMES = ("memory", "rocksdb", "rocksdict")

#: Apache Kafka's default ``group.min.session.timeout.ms``: a shorter session is refused.
MIN_SESSION_TIMEOUT_S = 6.0
#: Apache Kafka's default ``group.max.session.timeout.ms`` (30 min): a longer one is refused.
MAX_SESSION_TIMEOUT_S = 1800.0

#: Kafka's topic names: these characters only, at most :data:`MAX_TOPIC_NAME` of them.
TOPIC_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")
MAX_TOPIC_NAME = 249
#: The longest topic name APPEALS_TOPIC_PREFIX is put before (of ``streams.topics.SPECS``).
LONGEST_TOPIC_BASE = "appeals.triage.decisions"
#: The longest name Faust puts after APPEALS_APP_ID for a topic of its own: the changelog of the
#: route agent's ``triage-pending`` table. tests/streams/test_settings_limits.py keeps both
#: figures in step with the topics and the tables of a worker.
LONGEST_APP_TOPIC_SUFFIX = "-triage-pending-changelog"
#: APPEALS_TRIAGE_INCIDENT_MAX_WAIT when unset (and APPEALS_TRIAGE_MAX_WAIT is not shorter):
#: an hour, well inside the shortest first-response deadline of DESIGN §2 that is common
#: (4 working hours for a high-importance incident), so the desk still has most of it.
TRIAGE_INCIDENT_WAIT = 3600.0


class ConfigError(ValueError):
    """A setting has a value the system cannot run with; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of a worker. Field docs are printed by ``appeals config``."""

    kafka: str = "kafka://127.0.0.1:9092"
    """APPEALS_KAFKA: broker URL(s), ``kafka://host:port[;host:port]``."""
    redis: str = "redis://127.0.0.1:6379/0"
    """APPEALS_REDIS: Redis URL for the timer index, dedupe keys and read model."""
    app_id: str = "citizen-appeals"
    """APPEALS_APP_ID: Faust application id (consumer group and changelog topic prefix).

    Letters, digits, ``.``, ``_`` and ``-`` only, at most 224 characters (topic names)."""
    topic_prefix: str = ""
    """APPEALS_TOPIC_PREFIX: prepended to every topic name (e.g. ``prod.``).

    Letters, digits, ``.``, ``_`` and ``-`` only, at most 225 characters (topic names)."""
    partitions: int = 8
    """APPEALS_PARTITIONS: partitions of every topic created at start-up."""
    replication: int = 1
    """APPEALS_REPLICATION: replication factor of created topics (3 in production)."""
    store: str = "memory://"
    """APPEALS_STORE: Faust table store: ``memory://`` or ``rocksdb://`` for durable local state."""
    data_dir: str = "var/worker"
    """APPEALS_DATA_DIR: local state (RocksDB tables); a relative path is from the working dir.

    Created with its parents when a worker starts (streams.app.create_app), so the default works
    from any directory: ./var/worker, next to the demo's ./var/demo logs."""
    session_timeout: float = 10.0
    """APPEALS_SESSION_TIMEOUT: consumer-group session timeout, seconds (6..1800)."""
    metrics_port: int = 9464
    """APPEALS_METRICS_PORT: port of the /metrics and /healthz endpoint (0 = any free port)."""
    metrics_host: str = "0.0.0.0"
    """APPEALS_METRICS_HOST: address /metrics listens on (0.0.0.0: every interface, for a
    Prometheus elsewhere; the demo uses 127.0.0.1)."""
    web_port: int = 6066
    """APPEALS_WEB_PORT: Faust's own web server port."""
    web_enabled: bool = False
    """APPEALS_WEB_ENABLED: run Faust's web server (not needed for /metrics)."""
    log_level: str = "info"
    """APPEALS_LOG_LEVEL: debug, info, warning, error or critical (``warn`` slows Faust
    down)."""
    batch_size: int = 500
    """APPEALS_BATCH_SIZE: most events an agent handles in one batch."""
    batch_linger: float = 0.02
    """APPEALS_BATCH_LINGER: seconds an agent waits to fill a batch (0: no wait; only with
    natural batches, which hand a batch over when nothing more is waiting)."""
    natural_batches: bool = True
    """APPEALS_NATURAL_BATCHES: hand a batch over as soon as nothing more is waiting."""
    stream_buffer: int = 8192
    """APPEALS_STREAM_BUFFER: records Faust buffers per stream before fetching pauses."""
    changelog_buffer: int = 4096
    """APPEALS_CHANGELOG_BUFFER: table changelog records queued before streams pause to drain."""
    fetch_max_wait: float = 0.05
    """APPEALS_FETCH_MAX_WAIT: longest a consumer fetch waits for data, seconds (see README)."""
    verify_end_offsets: bool = True
    """APPEALS_VERIFY_END_OFFSETS: probe end offsets the broker may report short (recovery)."""
    seek_before_resume: bool = True
    """APPEALS_SEEK_BEFORE_RESUME: after a rebalance, seek before streams fetch again."""
    gc_threshold: str = "50000,50,1000"
    """APPEALS_GC_THRESHOLD: worker GC thresholds "gen0,gen1,gen2"; "python" leaves GC as is."""
    faust_fastpath: bool = True
    """APPEALS_FAUST_FASTPATH: hand fetched records to streams without a task per record."""
    require_faust_patches: bool = True
    """APPEALS_REQUIRE_FAUST_PATCHES: refuse to start when a Faust patch the loss fixes rest on
    (fastpath, resume_order, natural_batches) does not match the installed faust-streaming.

    false: start anyway with Faust's own behaviour for it (a warning in the log, and
    ``appeals_faust_patch_active`` 0, alert AppealsFaustPatchInactive), which lost records on
    table recovery and on stop; only to keep a worker running while a Faust upgrade is
    checked (streams/faust_patches.py)."""
    max_text_length: int = 20_000
    """APPEALS_MAX_TEXT_LENGTH: longest appeal text accepted, characters."""
    max_message_bytes: int = 1_000_000
    """APPEALS_MAX_MESSAGE_BYTES: largest intake message accepted, bytes, as sent and as intake
    writes it again (orjson re-encoded; ``oversize_message``)."""
    intake_max_age: float = 365 * 86400.0
    """APPEALS_INTAKE_MAX_AGE: seconds (SLA clock) an appeal's ``submitted_at`` may lie before
    intake reads it (a day to 3660 days; a year by default).

    Deadlines count from the legal registration, which follows receipt (59-FZ: at most three
    days after it), not from when intake reads the record; an older ``submitted_at`` is
    dead-lettered as ``invalid_value``: a mistyped year must not make an appeal years overdue
    at once. Within it, an old letter is overdue at once, which is the truth."""
    dedupe_window_days: int = 30
    """APPEALS_DEDUPE_WINDOW_DAYS: how long an exact duplicate is recognised."""
    triage_confidence: float = 0.45
    """APPEALS_TRIAGE_CONFIDENCE: below this classifier confidence an appeal goes to triage."""
    classifier_model: str = ""
    """APPEALS_CLASSIFIER_MODEL: classifier model file the workers load (empty = the model
    shipped in the package); a file written by `appeals classify train --out`.

    Why a setting: a model retrained on triage feedback keeps those texts' words in its
    vocabulary, so it belongs outside the package directory (which ships in the wheel and the
    image), and the workers could load only the packaged one. A worker refuses to start when
    the file is missing, unreadable or not a model this version reads. Pickle runs code:
    only a file of your own `classify train`."""
    triage_max_wait: float = 86400.0
    """APPEALS_TRIAGE_MAX_WAIT: seconds an appeal may wait for a triage decision; then it is
    routed to its region's triage desk (routing_level triage_timeout) with its registration
    time, so its deadlines are tracked (60 s to 7 days; 0 is refused).

    Measured from the pending copy's message time on the triage agent's clock: the message
    time of ``appeals.triage.decisions`` on the appeal's partition (decisions and clock ticks
    in offset order), so whether a decision came in time follows from that log and a replay,
    however its batches fall, decides as the first run did. Not 0 for "no limit": an appeal
    nobody decides must not wait unseen, with its deadlines untracked and its text in the
    triage table, for ever; and at most the 7 days 59-FZ gives for a redirect (art. 8 p. 3),
    which run from registration whether or not anyone triaged the appeal."""
    triage_incident_max_wait: float | None = None
    """APPEALS_TRIAGE_INCIDENT_MAX_WAIT: seconds an ``incident`` or ``hotline`` appeal may wait
    for a triage decision before it goes to the triage desk (60 s to APPEALS_TRIAGE_MAX_WAIT;
    unset: 3600 s, or APPEALS_TRIAGE_MAX_WAIT when that is shorter).

    Why a wait of its own: those regimes' first deadline is counted in working hours (DESIGN
    §2: an incident's first public response within 1-8 of them, 4 for high importance; the
    packaged hotline policy's callback within 8, 4 when urgent), and in triage an appeal has
    no SLA state. With the one global day an incident could wait unwatched past its deadline,
    its breach known only after the timeout routing. The wait is stored with the pending copy
    when the agent stores it: a replay decides as the first run did, and a changed setting
    applies to copies stored from then on (a copy stored by an older version, without one,
    gets the present setting's)."""
    triage_tick_interval: float = 60.0
    """APPEALS_TRIAGE_TICK_INTERVAL: seconds between the triage agent's clock ticks (1 s to the
    shortest wait: APPEALS_TRIAGE_INCIDENT_MAX_WAIT's, itself at most APPEALS_TRIAGE_MAX_WAIT;
    keep it small beside that wait, 60 s against the incident's hour).

    APPEALS_TRIAGE_MAX_WAIT is counted on the decisions topic's message time, which stands
    still on a partition where no decision arrives: every interval, a partition this worker
    owns that holds appeals (or early decisions) waiting and whose clock no decision has moved
    for the interval gets a tick record on ``appeals.triage.decisions``, stamped by the broker
    client's clock. Written into the
    log, so a replay sees the same ticks; an appeal is routed to the desk at most about two
    intervals after its wait ends."""
    warning_share: float | None = None
    """APPEALS_WARNING_SHARE: if set, overrides every SLA policy's warning share (drills, tests)."""
    escalation_after: float | None = None
    """APPEALS_ESCALATION_AFTER: if set, SLA-clock seconds from breach to escalation for all."""
    sla_pending_max_age: float = 7 * 86400.0
    """APPEALS_SLA_PENDING_MAX_AGE: seconds (wall clock) lifecycle events may wait for their
    appeal's routing; then they are dead-lettered as ``unknown_appeal`` (an hour to 366 days)."""
    sla_early_max_age: float = 7 * 86400.0
    """APPEALS_SLA_EARLY_MAX_AGE: seconds (SLA clock, from the event's own ``at``) a reopen or
    answer kept for the event it follows may wait; then it is dead-lettered as
    ``held_expired`` (an hour to 366 days).

    A reopen processed before the close it reopens, or an answer before the reopen it answers,
    is kept for that event; one for an event that never comes (an interim answer followed by
    the final one, a reopen of a close never sent) stayed kept for good, and nobody learnt of
    it. Seven days: re-keying reorders events by seconds, and a sender's retries after an
    outage by a day or two, so a week keeps every real reordering (a long weekend of a
    stopped consumer too) while the sender still hears of a lost event within the week, well
    inside the answer periods it concerns (30 days for 59-FZ). Counted from the stamp, not
    from when it was kept, so a replay expires it at the same moment: a backlog older than
    this expires what it keeps at the next timer sweep."""
    sla_future_tolerance: float = 300.0
    """APPEALS_SLA_FUTURE_TOLERANCE: seconds (wall clock) events may be stamped ahead of now.

    Clock skew between systems: a lifecycle event whose ``at`` is further ahead of the SLA
    clock is dead-lettered as ``future_timestamp`` (0 to 3660 days)."""
    sla_past_tolerance: float = 3 * 86400.0
    """APPEALS_SLA_PAST_TOLERANCE: seconds (wall clock) events may be stamped before their
    appeal's registration.

    Further before, a lifecycle event is dead-lettered as ``before_period`` (a mistyped year).
    Days, not the few minutes of clock skew: registration is the legal moment (intake's
    ``registration_time``), and a body's system may stamp on a register kept by the date (a
    letter registered "on 2 March", at midnight, before its receipt that morning), besides
    clocks that drift (0 to 3660 days)."""
    time_scale: float = 1.0
    """APPEALS_TIME_SCALE: SLA clock speed; the demo runs days per second (1 = real time)."""
    clock_epoch: float = 0.0
    """APPEALS_CLOCK_EPOCH: Unix time at which a scaled SLA clock equals the wall clock
    (required when APPEALS_TIME_SCALE is not 1; e.g. the deployment's start)."""
    sweep_interval: float = 0.25
    """APPEALS_SWEEP_INTERVAL: seconds between timer sweeps of the due-time index."""
    lag_interval: float = 5.0
    """APPEALS_LAG_INTERVAL: seconds between exports of ``appeals_consumer_lag`` (what the
    worker has yet to process and commit, per partition); shorter only where a test watches a
    backlog drain in seconds."""
    stage_stall_timeout: float = 600.0
    """APPEALS_STAGE_STALL_TIMEOUT: seconds a stage of a worker may go without finishing a
    batch while records of its partitions wait to be processed; longer, ``/healthz`` answers
    503 naming the stage (a hung agent). An idle stage, a rebalance or a table recovery never
    counts. At least twice APPEALS_LAG_INTERVAL (what tells an idle stage), at most a day."""
    default_region: str = "22"
    """APPEALS_DEFAULT_REGION: region assumed for routing fallbacks and the demo."""
    email_regime: str = "pos"
    """APPEALS_EMAIL_REGIME: regime of e-mail appeals (not 59-FZ since 30 March 2025)."""
    web_regime: str = "fz59"
    """APPEALS_WEB_REGIME: regime of the authority's web-form appeals."""
    open311_regime: str = "pos"
    """APPEALS_OPEN311_REGIME: regime of civic apps' Open311 requests (``pos`` or ``fz59``).

    They come in on the web channel, but a 59-FZ electronic appeal needs an authenticated
    channel (ESIA) since 30 March 2025, which a civic app in general is not: ``pos`` unless the
    deployment's apps log their users in through ESIA."""
    webhook_url: str = ""
    """APPEALS_WEBHOOK_URL: a supervisors' webhook for every alert (empty = log only)."""
    alertmanager_url: str = ""
    """APPEALS_ALERTMANAGER_URL: Alertmanager base URL for SLA alerts (empty = off)."""
    notify_concurrency: int = 16
    """APPEALS_NOTIFY_CONCURRENCY: alert deliveries a worker runs side by side per receiver."""
    public_url: str = "http://localhost:8080"
    """APPEALS_PUBLIC_URL: base of links to appeals placed in alerts."""
    webhook_attempts: int = 3
    """APPEALS_WEBHOOK_ATTEMPTS: quick attempts per alert and receiver before it is parked."""
    webhook_backoff: float = 0.2
    """APPEALS_WEBHOOK_BACKOFF: first quick-retry delay, seconds; doubles, with jitter."""
    webhook_timeout: float = 5.0
    """APPEALS_WEBHOOK_TIMEOUT: seconds one webhook or Alertmanager request may take."""
    alert_ttl: float = 86400.0
    """APPEALS_ALERT_TTL: seconds an alert stays active in Alertmanager after its delivery."""
    notify_inline_budget: float = 2.0
    """APPEALS_NOTIFY_INLINE_BUDGET: seconds a batch's quick attempts may take before parking."""
    notify_retry_backoff: float = 5.0
    """APPEALS_NOTIFY_RETRY_BACKOFF: first delay of a parked alert's retry, seconds (doubles)."""
    notify_retry_backoff_max: float = 300.0
    """APPEALS_NOTIFY_RETRY_BACKOFF_MAX: longest delay between retries of a parked alert, s."""
    notify_retry_after_max: float = 300.0
    """APPEALS_NOTIFY_RETRY_AFTER_MAX: longest wait a receiver's Retry-After is honoured for, s."""
    notify_retry_max_age: float = 7 * 86400.0
    """APPEALS_NOTIFY_RETRY_MAX_AGE: seconds a parked alert is retried before dead-lettering."""
    routing_rules: str = ""
    """APPEALS_ROUTING_RULES: routing rules file or directory (empty = packaged demo region)."""
    api_host: str = "127.0.0.1"
    """APPEALS_API_HOST: address the HTTP API and supervisor page listen on."""
    api_port: int = 8080
    """APPEALS_API_PORT: port of the HTTP API and supervisor page (0 = any free port)."""
    rating_min_volume: int = 20
    """APPEALS_RATING_MIN_VOLUME: answered + unanswered overdue in a window for a score."""
    rating_refresh: float = 5.0
    """APPEALS_RATING_REFRESH: seconds between recomputations of figures and ratings in the API."""
    api_redis_connections: int = 100
    """APPEALS_API_REDIS_CONNECTIONS: Redis connections one API process opens at most (1..10000).

    More requests than this in flight wait up to 2 s for a free connection, then get
    503 ``busy`` with Retry-After (never "Redis not reachable"); size it with Redis's
    ``maxclients`` (10000 by default) divided by the API replicas and the workers in mind."""
    api_tokens: str = field(default="", repr=False)
    """APPEALS_API_TOKENS: bearer tokens the HTTP API accepts, comma-separated (empty: open).

    Each 16..256 visible ASCII characters, no spaces or commas. Set, every route but
    ``/healthz``, ``/metrics`` and ``/openapi.json`` answers 401 without one of them; empty,
    the API is open and must sit behind an authenticating proxy (it warns at start-up).
    Appeal ids are derived from source ids and guessable, so this is the access control."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Tables of the config file that are not settings (``[gateway]``), for the sub-systems."""

    def __post_init__(self) -> None:
        # First, for every number of seconds, share or scale: ``nan`` and ``inf`` are floats
        # (from the environment or TOML's own inf/nan) and slip through the range checks below
        # (``inf > 0``; ``nan`` fails no ``not``-less comparison), then a clock or a window
        # turns them into 500s. No setting gives infinity a meaning.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                _check(math.isfinite(value), f"APPEALS_{f.name.upper()}",
                       "must be a finite number")
        _check(self.partitions >= 1, "APPEALS_PARTITIONS", "must be at least 1")
        _check(self.replication >= 1, "APPEALS_REPLICATION", "must be at least 1")
        _check(self.batch_size >= 1, "APPEALS_BATCH_SIZE", "must be at least 1")
        _check(self.notify_concurrency >= 1, "APPEALS_NOTIFY_CONCURRENCY", "must be at least 1")
        _check(0.001 <= self.fetch_max_wait <= 5, "APPEALS_FETCH_MAX_WAIT", "must be 0.001..5 s")
        _check(self.stream_buffer >= 16, "APPEALS_STREAM_BUFFER", "must be at least 16")
        _check(self.changelog_buffer >= 100, "APPEALS_CHANGELOG_BUFFER", "must be at least 100")
        # A mistyped scheme passed here and the worker failed after joining Kafka, in a
        # traceback of some 120 lines (review of session 16).
        scheme, sep, _ = self.store.partition("://")
        _check(bool(sep) and scheme in STORE_SCHEMES, "APPEALS_STORE",
               "must be memory:// (tests, the demo) or rocksdb:// (durable; rocksdict:// is "
               "the same store)")
        _check(self.batch_linger >= 0, "APPEALS_BATCH_LINGER", "must not be negative")
        # 0 means "no time bound" to take_events: with natural batches off, a batch then went
        # only when APPEALS_BATCH_SIZE events had arrived, and at a low rate agents stalled.
        _check(self.batch_linger > 0 or self.natural_batches, "APPEALS_BATCH_LINGER",
               "must be above 0 when APPEALS_NATURAL_BATCHES is false (with 0 a batch waits "
               "for APPEALS_BATCH_SIZE events, however long that takes)")
        # Apache Kafka refuses a group member whose session is shorter than the broker's
        # group.min.session.timeout.ms (6 s by default): 1..5 s passed here, and the worker
        # then failed to join its group (INVALID_SESSION_TIMEOUT) instead of stopping here.
        _check(self.session_timeout >= MIN_SESSION_TIMEOUT_S, "APPEALS_SESSION_TIMEOUT",
               f"must be at least {MIN_SESSION_TIMEOUT_S:g} s (Apache Kafka's default "
               "group.min.session.timeout.ms; a broker refuses shorter sessions)")
        # Likewise above group.max.session.timeout.ms (30 min by default): 3600 passed here and
        # the broker refused the JoinGroup (from ~24.9 days on it did not even fit its int32).
        _check(self.session_timeout <= MAX_SESSION_TIMEOUT_S, "APPEALS_SESSION_TIMEOUT",
               f"must be at most {MAX_SESSION_TIMEOUT_S:g} s (Apache Kafka's default "
               "group.max.session.timeout.ms; a broker refuses longer sessions)")
        # Both end up in topic names Kafka refuses otherwise: a space or a slash passed here
        # and every topic creation then failed with InvalidTopicError deep in start-up.
        for name, value, longest, what in (
                ("topic_prefix", self.topic_prefix, LONGEST_TOPIC_BASE, "{}"),
                ("app_id", self.app_id, LONGEST_APP_TOPIC_SUFFIX, "Faust's {}")):
            var = f"APPEALS_{name.upper()}"
            _check(TOPIC_NAME_CHARS.fullmatch(value) is not None, var,
                   f"may hold only letters, digits, '.', '_' and '-' (it is part of Kafka "
                   f"topic names), got {value!r}")
            _check(len(value) + len(longest) <= MAX_TOPIC_NAME, var,
                   f"must be at most {MAX_TOPIC_NAME - len(longest)} characters, got "
                   f"{len(value)}: with it, {what.format(f'topic ...{longest}')} is longer "
                   f"than Kafka's {MAX_TOPIC_NAME}")
        _check(bool(self.app_id), "APPEALS_APP_ID", "must not be empty")
        _check(0 <= self.metrics_port < 65536, "APPEALS_METRICS_PORT", "must be a port number")
        _check(bool(self.metrics_host) and not any(c.isspace() for c in self.metrics_host),
               "APPEALS_METRICS_HOST", "must be a host name or address (0.0.0.0: every one)")
        _check(self.warning_share is None or 0 < self.warning_share < 1,
               "APPEALS_WARNING_SHARE", "must be between 0 and 1")
        _check(3600 <= self.sla_pending_max_age <= 366 * 86400, "APPEALS_SLA_PENDING_MAX_AGE",
               "must be 3600..31622400 s (an hour to 366 days)")
        _check(3600 <= self.sla_early_max_age <= 366 * 86400, "APPEALS_SLA_EARLY_MAX_AGE",
               "must be 3600..31622400 s (an hour to 366 days)")
        _check(0 <= self.sla_future_tolerance <= 3660 * 86400, "APPEALS_SLA_FUTURE_TOLERANCE",
               "must be 0..316224000 s (up to 3660 days; 300 allows for clock skew)")
        _check(0 <= self.sla_past_tolerance <= 3660 * 86400, "APPEALS_SLA_PAST_TOLERANCE",
               "must be 0..316224000 s (up to 3660 days; 259200, three days, allows for "
               "registers kept by the date and clock skew)")
        _check(self.escalation_after is None or self.escalation_after > 0,
               "APPEALS_ESCALATION_AFTER", "must be positive seconds")
        _check(0 <= self.triage_confidence <= 1, "APPEALS_TRIAGE_CONFIDENCE", "must be in [0, 1]")
        if self.classifier_model:
            # Existence here, so `appeals config` and every command say it at once; whether the
            # file is a model is checked where it is loaded (`appeals worker` before Kafka).
            path = self.classifier_model
            _check(os.path.isfile(path), "APPEALS_CLASSIFIER_MODEL",
                   f"({path!r}) must be a model file written by `appeals classify train --out` "
                   f"({'a directory' if os.path.isdir(path) else 'no such file'}; empty: the "
                   "shipped model)")
            _check(os.access(path, os.R_OK), "APPEALS_CLASSIFIER_MODEL",
                   f"({path!r}) is not readable by this user")
        _check(60 <= self.triage_max_wait <= 7 * 86400, "APPEALS_TRIAGE_MAX_WAIT",
               "must be 60..604800 s (a minute to 7 days; there is no 'off': an undecided "
               "appeal goes to the triage desk)")
        _check(self.triage_incident_max_wait is None
               or 60 <= self.triage_incident_max_wait <= self.triage_max_wait,
               "APPEALS_TRIAGE_INCIDENT_MAX_WAIT",
               f"must be 60..{self.triage_max_wait:g} s (a minute to APPEALS_TRIAGE_MAX_WAIT: "
               "an incident or hotline appeal must not wait longer than any other; unset: "
               "3600 s, or APPEALS_TRIAGE_MAX_WAIT when shorter)")
        # Against the shortest wait in effect, the incident and hotline one: checked against
        # the global day only, an interval of hours was taken, and an incident copy on a quiet
        # partition reached the desk hours after its hour.
        shortest = self.triage_short_wait
        incident_wait = ("APPEALS_TRIAGE_INCIDENT_MAX_WAIT" if self.triage_incident_max_wait
                         is not None else "APPEALS_TRIAGE_INCIDENT_MAX_WAIT (unset: 3600 s, or "
                         "APPEALS_TRIAGE_MAX_WAIT when shorter)")
        _check(1 <= self.triage_tick_interval <= shortest,
               "APPEALS_TRIAGE_TICK_INTERVAL",
               f"must be 1..{shortest:g} s (at least a second, and at most the shortest triage "
               f"wait: {incident_wait}, {shortest:g} s here, and APPEALS_TRIAGE_MAX_WAIT, "
               f"{self.triage_max_wait:g} s: a tick ends the wait of appeals on a quiet "
               "partition, so a longer interval would let them wait well past it)")
        _check(self.time_scale > 0, "APPEALS_TIME_SCALE", "must be positive")
        if self.time_scale != 1:
            self._check_scaled_clock()
        _check(self.sweep_interval > 0, "APPEALS_SWEEP_INTERVAL", "must be positive")
        _check(0 < self.lag_interval <= 300, "APPEALS_LAG_INTERVAL",
               "must be more than 0 and at most 300 seconds")
        # Shorter, an idle stage could look stalled between two lag exports, which are what
        # tell it has nothing waiting.
        _check(2 * self.lag_interval <= self.stage_stall_timeout <= 86400,
               "APPEALS_STAGE_STALL_TIMEOUT",
               f"must be at least twice APPEALS_LAG_INTERVAL ({2 * self.lag_interval:g} s) "
               "and at most 86400 s (a day)")
        _check(self.max_text_length >= 1, "APPEALS_MAX_TEXT_LENGTH", "must be positive")
        _check(86400 <= self.intake_max_age <= 3660 * 86400, "APPEALS_INTAKE_MAX_AGE",
               "must be 86400..316224000 s (a day to 3660 days; 31536000, a year, is the "
               "default)")
        # Unchecked until session 15: a window of 0 made Redis refuse every FIRST_SEEN call
        # ("invalid expire time"), and intake silently deduplicated within a batch only.
        _check(1 <= self.dedupe_window_days <= 3660, "APPEALS_DEDUPE_WINDOW_DAYS",
               "must be 1..3660 days")
        _check(self.max_message_bytes >= 512, "APPEALS_MAX_MESSAGE_BYTES",
               "must be at least 512 bytes")
        _check(0 <= self.web_port < 65536, "APPEALS_WEB_PORT", "must be a port number")
        _check(0 <= self.api_port < 65536, "APPEALS_API_PORT", "must be a port number")
        _check(self.rating_min_volume >= 1, "APPEALS_RATING_MIN_VOLUME", "must be at least 1")
        _check(self.rating_refresh > 0, "APPEALS_RATING_REFRESH", "must be positive")
        _check(1 <= self.api_redis_connections <= 10_000, "APPEALS_API_REDIS_CONNECTIONS",
               "must be 1..10000")
        _check(api_tokens_problem(self.api_tokens) is None, "APPEALS_API_TOKENS",
               api_tokens_problem(self.api_tokens) or "")
        _check(_gc_threshold_ok(self.gc_threshold), "APPEALS_GC_THRESHOLD",
               "must be three non-negative integers, e.g. 50000,50,1000, or python")
        _check(1 <= self.webhook_attempts <= 20, "APPEALS_WEBHOOK_ATTEMPTS", "must be 1..20")
        _check(0 <= self.webhook_backoff <= 60, "APPEALS_WEBHOOK_BACKOFF", "must be 0..60 s")
        _check(0 < self.webhook_timeout <= 300, "APPEALS_WEBHOOK_TIMEOUT", "must be 0..300 s")
        _check(0 < self.alert_ttl <= 366 * 86400, "APPEALS_ALERT_TTL",
               "must be positive, at most a year")
        _check(0 < self.notify_inline_budget <= 60, "APPEALS_NOTIFY_INLINE_BUDGET",
               "must be 0..60 s")
        _check(0 < self.notify_retry_backoff <= 3600, "APPEALS_NOTIFY_RETRY_BACKOFF",
               "must be 0..3600 s")
        _check(self.notify_retry_backoff <= self.notify_retry_backoff_max <= 86400,
               "APPEALS_NOTIFY_RETRY_BACKOFF_MAX",
               "must be at least APPEALS_NOTIFY_RETRY_BACKOFF and at most a day")
        _check(0 < self.notify_retry_after_max <= 3600, "APPEALS_NOTIFY_RETRY_AFTER_MAX",
               "must be 0..3600 s")
        _check(self.notify_retry_max_age > 0, "APPEALS_NOTIFY_RETRY_MAX_AGE", "must be positive")
        for name in ("webhook_url", "alertmanager_url", "public_url"):
            value = getattr(self, name)
            # The check the routing rules' hooks get too (streams/urls.py): only the prefix was
            # checked, then the parts; a host IDNA cannot encode still passed and failed at the
            # first alert.
            problem = http_url_problem(value, base=name != "webhook_url")
            optional = name != "public_url"
            _check(not problem or (not value and optional), f"APPEALS_{name.upper()}",
                   f"must be an http(s) URL with a host{' or empty' if optional else ''}"
                   f" ({problem})")
        _check(
            self.log_level in ("debug", "info", "warning", "error", "critical"),
            "APPEALS_LOG_LEVEL",
            "must be debug, info, warning, error or critical",
        )
        _check(
            self.kafka.startswith(("kafka://", "aiokafka://")),
            "APPEALS_KAFKA",
            "must look like kafka://host:port",
        )
        # Only the prefix was checked: kafka:// (no host) waited 30 s for a broker, a port
        # that is no number ended in a kafka-python traceback not naming the variable.
        problem = _kafka_hosts_problem(self.kafka.split("://", 1)[1])
        _check(not problem, "APPEALS_KAFKA",
               f"must look like kafka://host:port[;host:port] ({problem})")
        _check(self.redis.startswith(("redis://", "rediss://", "unix://")), "APPEALS_REDIS",
               "must look like redis://host:port/db")
        problem = _redis_url_problem(self.redis)
        _check(not problem, "APPEALS_REDIS", f"must look like redis://host:port/db ({problem})")
        for name in ("email_regime", "web_regime"):
            _check(
                getattr(self, name) in ("fz59", "pos", "incident", "hotline"),
                f"APPEALS_{name.upper()}",
                "must be fz59, pos, incident or hotline",
            )
        _check(self.open311_regime in ("pos", "fz59"), "APPEALS_OPEN311_REGIME",
               f"must be pos (a civic app's report) or fz59 (only if the apps authenticate "
               f"their users through ESIA), not {self.open311_regime[:40]!r}")

    def _check_scaled_clock(self) -> None:
        """A sped-up SLA clock needs its epoch, and must read a year events may carry.

        The epoch defaulted to 0: the clock then scaled the time since 1970, so
        APPEALS_TIME_SCALE=60 alone read the year 5384 and 1000 a year ``datetime`` cannot
        hold, and every batch of the intake agent crashed (exit 70, in a loop).
        """
        from schemas.validation import MAX_YEAR, MIN_YEAR
        from streams.clock import SlaClock

        _check(self.clock_epoch != 0, "APPEALS_CLOCK_EPOCH",
               f"must be set when APPEALS_TIME_SCALE is not 1 (it is {self.time_scale:g}): "
               "the Unix time from which the sped-up SLA clock runs, e.g. `date +%s` at the "
               "deployment's start (with 0 it counts sped-up time from 1970)")
        now = SlaClock(self.time_scale, self.clock_epoch).now()
        start = datetime(MIN_YEAR, 1, 1, tzinfo=UTC).timestamp()
        end = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()
        year = 1970 + int(now // (365.2425 * 86400))  # approximate: for the message only
        _check(start <= now < end, "APPEALS_CLOCK_EPOCH",
               f"({self.clock_epoch:.0f}) with APPEALS_TIME_SCALE={self.time_scale:g} puts the SLA "
               f"clock in about the year {year}, outside the years {MIN_YEAR}..{MAX_YEAR} events "
               "may carry: set APPEALS_CLOCK_EPOCH to a recent Unix time (e.g. the "
               "deployment's start)")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def triage_short_wait(self) -> float:
        """The wait of an ``incident`` or ``hotline`` appeal in triage: the
        APPEALS_TRIAGE_INCIDENT_MAX_WAIT set, else an hour or APPEALS_TRIAGE_MAX_WAIT if
        shorter (a deployment that shortened the global wait below an hour keeps it)."""
        if self.triage_incident_max_wait is not None:
            return self.triage_incident_max_wait
        return min(TRIAGE_INCIDENT_WAIT, self.triage_max_wait)

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port,host:port`` for kafka-python and aiokafka clients."""
        return self.kafka.split("://", 1)[1].replace(";", ",")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, *,
             only: Collection[str] | None = None) -> Settings:
        """The settings from the environment and APPEALS_CONFIG, every one checked.

        ``only``: read and check just these fields, the others keep their defaults. Why: a
        command that needs one setting (``appeals classify eval`` its model) refused to run for
        a bad value of an unrelated one (APPEALS_KAFKA=bogus) it never uses. A key of the
        APPEALS_CONFIG file that is no setting at all is still refused, naming the one it
        resembles: a typo of the one setting read would otherwise leave its default in use.
        """
        env = os.environ if environ is None else environ
        if env is os.environ:  # the process's own settings: a typo there is worth a word
            warn_unknown_variables(env)
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        from_file: dict[str, str] = {}  # field -> "APPEALS_CONFIG=<path>: key" for messages
        every = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        fields = {name: f for name, f in every.items() if only is None or name in only}
        if only is not None and set(only) - fields.keys():
            raise ValueError(f"not settings: {sorted(set(only) - fields.keys())}")
        path = env.get("APPEALS_CONFIG")
        if path:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"APPEALS_CONFIG={path}: cannot read: {exc}") from exc
            for key, value in data.items():
                where = f"APPEALS_CONFIG={path}: {key}"
                f = fields.get(key)
                if f is None and key in every:
                    continue  # another command's concern (``only``)
                if f is not None:
                    values[key] = _coerce_file_value(where, value, f.default, str(f.type))
                    from_file[key] = where
                elif isinstance(value, dict):
                    extra[key] = value  # a sub-system's own section, e.g. [gateway]
                else:
                    # Against every setting, also with ``only``: a misspelt key there
                    # (clasifier_model) was skipped as another command's, and the command
                    # silently ran on the default.
                    close = difflib.get_close_matches(
                        key.lower().removeprefix("appeals_"), every, n=1)
                    hint = f" (did you mean {close[0]}?)" if close else ""
                    raise ConfigError(f"{where}: not a setting{hint}; keys are the lower-case "
                                      "names of `appeals config` without APPEALS_")
        for name, f in fields.items():
            raw = env.get(f"APPEALS_{name.upper()}")
            if raw is not None:
                values[name] = _coerce(name, raw, f.default, str(f.type))
                from_file.pop(name, None)
        try:
            return cls(**values, extra=extra)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc
        except ConfigError as exc:
            # A range check names the variable; say so when the value came from the file.
            var = str(exc).split(" ", 1)[0]
            name = var.removeprefix("APPEALS_").lower()
            if name in from_file:
                raise ConfigError(f"{exc} (set by {from_file[name]})") from None
            raise

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) rows for ``appeals config``.

        The meaning is the first paragraph of the field's docstring, joined into one line: only
        its first line was taken, and three descriptions ended mid-sentence, losing the limit
        they state (APPEALS_BATCH_LINGER, APPEALS_METRICS_HOST, APPEALS_SLA_PENDING_MAX_AGE).
        """
        import inspect

        doc_lines = inspect.getsource(cls).splitlines()
        docs: dict[str, str] = {}
        for i, line in enumerate(doc_lines):
            stripped = line.strip()
            if ":" in stripped and "=" in stripped and not stripped.startswith(("#", '"')):
                name = stripped.split(":", 1)[0]
                nxt = doc_lines[i + 1].strip() if i + 1 < len(doc_lines) else ""
                if nxt.startswith('"""'):
                    docs[name] = _first_paragraph(doc_lines[i + 1:]).split(": ", 1)[-1]
        rows = []
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            default = "unset" if f.default is None else repr(f.default)
            rows.append((f"APPEALS_{f.name.upper()}", default, docs.get(f.name, "")))
        return rows


#: One API token: visible ASCII without ``,`` (the separator), 16..256 characters, so a
#: short guessable value or a stray space from a shell quote is refused at start-up.
API_TOKEN = re.compile(r"[\x21-\x2b\x2d-\x7e]{16,256}")


def api_tokens_problem(value: str) -> str | None:
    """What is wrong with an ``APPEALS_API_TOKENS`` value, or None. A value that is set but
    names no token (``","``, a template whose variable was empty) is refused: read as no
    tokens it would open the API."""
    if not value.strip():
        return None
    for n, token in enumerate(value.split(","), 1):
        if not API_TOKEN.fullmatch(token.strip()):
            return (f"token {n} must be 16..256 visible ASCII characters without spaces or "
                    "commas (tokens are comma-separated)")
    return None


def api_token_list(value: str) -> tuple[str, ...]:
    """The tokens of a valid ``APPEALS_API_TOKENS`` value (none: the API is open)."""
    return tuple(t.strip() for t in value.split(",")) if value.strip() else ()


def _first_paragraph(lines: list[str]) -> str:
    """The first paragraph of the docstring that starts ``lines``, as one line."""
    words: list[str] = []
    for n, line in enumerate(lines):
        text = line.strip()
        if n == 0:
            text = text.removeprefix('"""')
        elif not text:
            break  # a blank line ends the paragraph
        ends = text.endswith('"""')
        words.append(text.removesuffix('"""').strip())
        if ends:
            break
    return " ".join(w for w in words if w)


#: Variables read straight from the environment by sub-systems, not through :class:`Settings`
#: (variable, default, meaning); ``appeals config`` prints them after the settings.
#: tests/cli/test_cli_operator_errors.py checks every APPEALS_* name in workers/ and streams/ is
#: either a setting or listed here.
OTHER_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("APPEALS_CONFIG", "unset",
     "TOML file of settings (lower-case names without APPEALS_); the environment wins"),
    ("APPEALS_POLICY_FILE", "packaged",
     "SLA policy file (default: workers/deadlines/policies.toml)"),
    ("APPEALS_CALENDAR_FILE", "unset",
     "production-calendar overrides (a decree newer than the holidays package)"),
    ("APPEALS_GATEWAY_HOST", "'127.0.0.1'", "intake gateway listen address ([gateway] host)"),
    ("APPEALS_GATEWAY_PORT", "8081", "intake gateway listen port (the API's is 8080)"),
    ("APPEALS_GATEWAY_TOKENS", "empty",
     "intake clients, client1:token1,client2:token2 (none: every POST is refused, 401 "
     "without a token, 403 with one)"),
    ("APPEALS_GATEWAY_TOKENS_FILE", "unset",
     "TOML with [clients.<id>] tables: token, rate, burst, channels, region"),
    ("APPEALS_GATEWAY_RATE", "50.0", "gateway requests per second per client"),
    ("APPEALS_GATEWAY_BURST", "100", "gateway token-bucket burst per client"),
    ("APPEALS_GATEWAY_MAX_BODY_BYTES", "2097152", "largest gateway request body, bytes"),
    ("APPEALS_GATEWAY_MAX_BATCH", "500", "most appeals in one gateway batch request"),
    ("APPEALS_GATEWAY_SEND_TIMEOUT", "30.0", "seconds the gateway waits for Kafka acks"),
    ("APPEALS_GATEWAY_CREATE_TOPICS", "True", "gateway creates missing topics at start-up"),
    ("APPEALS_GATEWAY_OPEN311_RETRY_WINDOW", "86400",
     "seconds an exact repeat of a keyless Open311 request counts as its retry"),
    ("APPEALS_OPEN311_TTL_DAYS", "90",
     "days the gateway keeps an Open311 request's code/time/place in Redis for GET "
     "([gateway] open311_ttl_days)"),
    ("APPEALS_NEAR_DUP_SALT", "dev salt",
     "secret of the near-duplicate bucket HMAC and of intake's exact-dedupe keys: set it "
     "in production; a new one starts both windows afresh"),
    ("APPEALS_NEAR_DUP_THRESHOLD", "0.8",
     "estimated Jaccard similarity from which texts are near-duplicates"),
    ("APPEALS_NEAR_DUP_WINDOW_S", "86400", "seconds a near-duplicate is looked for"),
    ("APPEALS_NEAR_DUP_SKETCH", "128",
     "hashes kept per appeal (bottom-k sketch) for near-duplicates"),
    ("APPEALS_NEAR_DUP_BUCKET_MAX", "32",
     "latest appeals of one author at one address compared for near-duplicates"),
    ("APPEALS_MAX_ATTACHMENTS", "10", "most attachments per appeal"),
    ("APPEALS_MAX_ATTACHMENT_BYTES", "20971520", "largest declared attachment size, bytes"),
    ("APPEALS_PHONE_REGION", "'RU'", "region assumed for phone numbers without a country code"),
)


#: APPEALS_* variables read only by the project's tests and scripts, never by ``appeals``
#: itself: set in a CI job's environment, they are not typos of a setting.
TOOLING_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("APPEALS_TEST_LOG_DIR", "var/test-logs", "tests: where the test suite writes its logs"),
    ("APPEALS_SKIP_SYSTEM_TOOLS", "unset",
     "tests: 1 skips the tests whose system tools (tests/system-deps.sh) are missing"),
    ("APPEALS_RDKAFKA_DIR", "unset",
     "tests/intake/nonpython/produce.sh: a directory holding librdkafka"),
)


def known_variables() -> frozenset[str]:
    """Every APPEALS_* name the project reads: the settings, :data:`OTHER_VARIABLES` and
    :data:`TOOLING_VARIABLES`."""
    names = {f"APPEALS_{f.name.upper()}" for f in dataclasses.fields(Settings)
             if f.name != "extra"}
    names.update(var for var, _, _ in OTHER_VARIABLES + TOOLING_VARIABLES)
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``(name, the known name it is most like or None)`` for each APPEALS_* variable of
    ``environ`` that nothing reads, sorted by name."""
    known = known_variables()
    bare = {var.removeprefix("APPEALS_"): var for var in known}
    found = []
    for name in sorted(environ):
        if not name.startswith("APPEALS_") or name in known:
            continue
        close = difflib.get_close_matches(name.removeprefix("APPEALS_").upper(), bare, n=1)
        found.append((name, bare[close[0]] if close else None))
    return found


#: Unknown variables already warned about in this process.
_warned: set[str] = set()


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """A WARNING per APPEALS_* variable nothing reads, once per process, with the setting it
    most resembles.

    Why a warning and not an error, as the same typo in the APPEALS_CONFIG file is: other tools
    (a CI job, a wrapper script, a newer release's manifest) may set APPEALS_ variables of their
    own, and refusing to start for them would be worse than the typo. Silently ignored, though,
    a misspelt APPEALS_KAFKA left a worker on the default broker with nothing said. The value is
    never shown: it may be a password."""
    for name, close in unknown_variables(environ):
        if name in _warned:
            continue
        _warned.add(name)
        hint = f" (did you mean {close}?)" if close else ""
        log.warning("%s is set, but appeals reads no such variable%s: it is ignored "
                    "(`appeals config` lists the variables read)", name, hint)


def gc_thresholds(value: str) -> tuple[int, int, int] | None:
    """``"gen0,gen1,gen2"`` as the three ints of :func:`gc.set_threshold`; ``"python"``: None
    (CPython's own settings, no freeze: the baseline the tuning is measured against)."""
    if value.strip().lower() == "python":
        return None
    a, b, c = (int(x) for x in value.split(","))
    return a, b, c


def _gc_threshold_ok(value: str) -> bool:
    try:
        thresholds = gc_thresholds(value)
    except ValueError:
        return False
    return thresholds is None or min(thresholds) >= 0


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name} {message}")


def _coerce_file_value(where: str, value: Any, default: Any, annotation: str) -> Any:
    """A TOML value for a field: native TOML types of the field's type pass, strings are read
    like environment values, anything else is an error naming ``where`` (file and key)."""
    optional_float = default is None and annotation.startswith("float")
    kind: type = float if optional_float else type(default)
    if isinstance(value, str) and kind is not str:
        try:
            return _coerce("", value, default, annotation)
        except ConfigError:
            raise ConfigError(f"{where} = {value!r} is not a valid {kind.__name__}") from None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = {str: "a string (quote it)", int: "a whole number", float: "a number",
                    bool: "true or false"}.get(kind, kind.__name__)
        raise ConfigError(f"{where} = {value!r}: expected {expected}")
    return value


def _coerce(name: str, raw: str, default: Any, annotation: str = "") -> Any:
    """``raw`` as the type of ``default``; an empty (or blank) value means the default.

    Why empty is the default for every type but strings: manifests template variables as
    ``${X:-}``, and an empty boolean meant false, so it silently turned off the data-loss guards
    (APPEALS_SEEK_BEFORE_RESUME, APPEALS_VERIFY_END_OFFSETS ...), while an empty optional
    number already meant unset. An empty string setting stays empty ("" is a value: no
    webhook, no topic prefix). ``streams.processes.worker_env`` writes "" for an unset
    optional number only, so its round trip is unchanged.
    """
    var = f"APPEALS_{name.upper()}"
    if not raw.strip() and not isinstance(default, str):
        return default  # for an optional number None: "not set" (use the policy's own)
    if default is None and annotation.startswith("float"):
        default = 0.0
    try:
        if isinstance(default, bool):
            value = raw.strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a valid {type(default).__name__}") from None
    return raw


def _host_port_problem(entry: str) -> str:
    """What is wrong with ``host[:port]`` (IPv6 in brackets) of a broker or Redis URL.

    A missing port is fine (the clients use the service's default); a port must be 1..65535.
    """
    from urllib.parse import urlsplit

    if not entry:
        return "no host"
    if any(c.isspace() for c in entry):
        return f"{entry!r} contains whitespace"
    try:
        parts = urlsplit(f"//{entry}")
    except ValueError:  # an unclosed IPv6 bracket ([::1:9092): no host to read
        return f"{entry!r}: an IPv6 address goes in brackets, [::1]:9092"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname:
        return f"{entry!r} has no host"
    if port == -1 or port == 0 or parts.netloc.endswith(":"):
        return f"{entry!r}: the port must be a number 1..65535"
    return ""


def _kafka_hosts_problem(hosts: str) -> str:
    """What is wrong with the ``host:port[;host:port]`` part of APPEALS_KAFKA ("" for nothing).

    Separators are ``;`` (the documented one) and ``,`` (what the clients get); each entry is
    checked, as the clients would otherwise fail late (kafka:// waited 30 s for a broker)."""
    if not hosts:
        return "no host"
    for entry in hosts.replace(",", ";").split(";"):
        if "://" in entry:
            return f"{entry!r}: one kafka:// before the whole list, not one per broker"
        if "/" in entry or "@" in entry:
            return f"{entry!r} is not host:port"
        problem = _host_port_problem(entry)
        if problem:
            return problem
    return ""


def _redis_url_problem(url: str) -> str:
    """What is wrong with APPEALS_REDIS past its scheme ("" for nothing); never shows a password.

    ``redis://h:x/0`` passed the prefix check and failed at the first Redis call."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in url):
        return "contains whitespace"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket; the netloc may hold a password: not shown
        return "an IPv6 address goes in brackets, redis://[::1]:6379/0"
    if parts.scheme == "unix":
        return "" if parts.path else "no socket path"
    hostport = parts.netloc.rpartition("@")[2]  # without user:password
    problem = _host_port_problem(hostport)
    if problem:
        return problem
    if parts.path not in ("", "/") and not re.fullmatch(r"/\d+", parts.path):
        return f"the database {parts.path[1:]!r} must be a number"
    return ""
