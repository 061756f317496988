"""Every Kafka topic of the system, declared in one place with its partitioning and configs.

Keys: ``appeal_id`` on every per-appeal topic, so one appeal's events stay ordered on one
partition and the SLA table's changelog partition equals the source partition. All per-appeal
topics share one partition count: the SLA agent reads several of them as one co-partitioned
stream, and its state for an appeal must live with the partition that carries that appeal.

Topics are created explicitly at start-up (idempotently) rather than left to broker
auto-creation, so partition counts and retention are what we chose, not the broker's defaults.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from schemas.records import CHANNELS
from streams.settings import ConfigError, Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    description: str
    config: dict[str, str] = field(default_factory=dict)
    external: bool = False
    """Written by systems outside the pipeline (intake systems, authorities)."""
    per_appeal: bool = True
    """Keyed by ``appeal_id`` and read co-partitioned: its partition count must be
    ``APPEALS_PARTITIONS`` (intake and dead-letter topics carry other keys)."""


def intake_topic(channel: str) -> str:
    return f"appeals.intake.{channel}"


REGISTERED = "appeals.registered"
ROUTED = "appeals.routed"
TRIAGE = "appeals.triage"
TRIAGE_DECISIONS = "appeals.triage.decisions"
TRIAGE_PENDING = "appeals.triage.pending"
TRIAGE_FEEDBACK = "appeals.triage.feedback"
LIFECYCLE = "appeals.lifecycle"
SLA_LIFECYCLE = "appeals.sla.lifecycle"
SLA_TICKS = "appeals.sla.ticks"
SLA_ALERTS = "appeals.sla.alerts"
DEADLETTER = "appeals.deadletter"
NOTIFY_RETRY = "appeals.notify.retry"

_RETAIN_90D = {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "delete"}
_RETAIN_30D = {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"}
#: Training data: a year of human decisions, read whole by ``appeals classify export-feedback``.
_RETAIN_365D = {"retention.ms": str(365 * DAY_MS), "cleanup.policy": "delete"}

SPECS: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(intake_topic(c), f"Intake events of the {c} channel (IntakeAppeal v1).",
                  _RETAIN_30D, external=True, per_appeal=False)
        for c in CHANNELS
    ),
    TopicSpec(REGISTERED, "Accepted, normalised appeals (RegisteredAppeal v1).", _RETAIN_90D),
    TopicSpec(ROUTED, "Classified appeals with their authority (RoutedAppeal v1).", _RETAIN_90D),
    TopicSpec(TRIAGE, "Low-confidence appeals for human triage (TriageItem v1).", _RETAIN_90D),
    TopicSpec(TRIAGE_DECISIONS, "Internal: triage decisions, keyed by appeal_id.", _RETAIN_90D),
    TopicSpec(TRIAGE_PENDING, "Internal: appeals waiting for a triage decision, keyed by "
              "appeal_id.", _RETAIN_90D),
    TopicSpec(TRIAGE_FEEDBACK, "Human triage decisions with the appeal text, as training data "
              "(TriageFeedback v1), keyed by appeal_id; read by `appeals classify "
              "export-feedback`.", _RETAIN_365D),
    TopicSpec(LIFECYCLE, "Authorities' lifecycle events (LifecycleEvent v1).", _RETAIN_90D,
              external=True),
    TopicSpec(SLA_LIFECYCLE, "Internal: validated lifecycle events re-keyed for the SLA agent.",
              _RETAIN_90D),
    TopicSpec(SLA_TICKS, "Internal: timer firings for the SLA agent (SlaTick v1).", _RETAIN_30D),
    TopicSpec(SLA_ALERTS, "SLA warnings, breaches, escalations (SlaAlert v1).", _RETAIN_90D),
    TopicSpec(DEADLETTER, "Inputs that failed, with reason and original bytes (DeadLetter v1).",
              _RETAIN_90D, per_appeal=False),
    TopicSpec(NOTIFY_RETRY, "Internal: SLA alerts parked for a later delivery attempt, keyed by "
              "appeal_id (workers/notify/retry.py).", _RETAIN_30D),
)


def topic_name(settings: Settings, base: str) -> str:
    return f"{settings.topic_prefix}{base}"


def durability_config(replication: int) -> dict[str, str]:
    """Per-topic settings that make ``acks=all`` mean what the runbook says.

    ``min.insync.replicas`` is 2 from replication factor 3 on (a write needs two copies; one
    broker may be down), 1 below it (with 1 or 2 copies a stricter value would stop writes when
    one broker is away); unclean leader election stays off, so an out-of-date replica never
    becomes leader and drops acknowledged records. Faust's own changelog topics take the
    broker's defaults, which the README's production table sets the same way.
    """
    return {"min.insync.replicas": "2" if replication >= 3 else "1",
            "unclean.leader.election.enable": "false"}


class TopicMissing(RuntimeError):
    """A topic a command writes to does not exist.

    Why an error of its own: the producers no longer let the broker auto-create topics (a
    fresh broker got ``appeals.sla.lifecycle`` with its default partition count, which
    `topics create` and the workers then refused; a mistyped prefix "succeeded" into stray
    topics), and kafka-python only says so after ``max_block_ms`` as a metadata timeout."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        super().__init__(f"topic {topic} does not exist (check APPEALS_TOPIC_PREFIX, or run "
                         "`appeals topics create`)")


def existing_topics(bootstrap: str, client_id: str = "appeals-cli",
                    timeout: float = 10.0) -> set[str]:
    """The names of the topics the broker at ``bootstrap`` (``host:port,...``) has."""
    from kafka.admin import KafkaAdminClient

    # bootstrap_timeout_ms too: against a port that accepts TCP but never answers (not a
    # broker, or a hung one), kafka-python's own 30 s bootstrap wait ignored ``timeout``.
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id,
                             request_timeout_ms=int(timeout * 1000),
                             bootstrap_timeout_ms=int(timeout * 1000))
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics with our partition count and configs; returns those created.

    Safe to call from every worker at every start: existing topics are left alone, but their
    partition counts are checked (changing a count would move keys, so nothing is changed).
    A per-appeal topic whose count is not ``APPEALS_PARTITIONS`` raises :class:`ConfigError`
    naming the topic and both counts: the SLA agent reads those topics co-partitioned, and
    an appeal's events on partitions that do not line up reach a state that is not its own
    (an older deployment's 4-partition ``appeals.routed`` next to new 8-partition topics went
    unnoticed). Intake and dead-letter topics carry other keys: a different count is logged.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            # The bootstrap wait bounded by what is left of ``timeout`` (kafka-python's own is
            # 30 s per attempt, against a port that accepts TCP but never answers).
            left_ms = int(max(1.0, deadline - time.monotonic()) * 1000)
            admin = KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{settings.app_id}-admin",
                request_timeout_ms=min(10_000, left_ms),
                bootstrap_timeout_ms=left_ms,
            )
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
                ) from exc
            time.sleep(0.5)
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        _check_partition_counts(settings, admin, existing)
        wanted = [
            NewTopic(
                name=topic_name(settings, spec.name),
                num_partitions=settings.partitions,
                replication_factor=settings.replication,
                topic_configs={**spec.config, **durability_config(settings.replication)},
            )
            for spec in SPECS
            if topic_name(settings, spec.name) not in existing
        ]
        for new in wanted:
            try:
                admin.create_topics([new], timeout_ms=10_000)
                created.append(new.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created %d topics: %s", len(created), ", ".join(created))
    finally:
        admin.close()
    return created


def _check_partition_counts(settings: Settings, admin: Any, existing: set[str]) -> None:
    """Raise :class:`ConfigError` when an existing per-appeal topic has another partition
    count than ``settings.partitions``; log a warning for the other topics."""
    specs = {topic_name(settings, spec.name): spec for spec in SPECS}
    names = sorted(name for name in specs if name in existing)
    if not names:
        return
    counts: dict[str, int] = {}
    for meta in admin.describe_topics(names):
        name = meta.get("name") or meta.get("topic")  # kafka-python 3 says "name"
        if name in specs and not meta.get("error_code") and meta.get("partitions"):
            counts[name] = len(meta["partitions"])
    wrong = {name: n for name, n in counts.items() if n != settings.partitions}
    for name, n in wrong.items():
        if not specs[name].per_appeal:
            log.warning("topic %s has %d partitions, APPEALS_PARTITIONS is %d (not a "
                        "per-appeal topic: left as it is)", name, n, settings.partitions)
    bad = sorted(name for name in wrong if specs[name].per_appeal)
    if bad:
        listed = ", ".join(f"{name} has {wrong[name]}" for name in bad)
        raise ConfigError(
            f"APPEALS_PARTITIONS is {settings.partitions}, but existing topic {listed} "
            "partitions; per-appeal topics are read co-partitioned and must all have the same "
            "count: set APPEALS_PARTITIONS to the existing count, or add partitions to the "
            "topic (kafka-topics --alter; this moves keys, so drain the topic first)")
