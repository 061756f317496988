"""Producer SDK for intake systems that speak Kafka from Python (kafka-python).

Why an SDK rather than "just produce JSON": an intake system should learn that an appeal is
broken *before* it leaves, with the same reason code intake would give it, and it should not
have to know topic names, keys or the delivery settings that keep appeals from being lost::

    from workers.intake.producer import IntakeProducer

    with IntakeProducer("broker:9092") as producer:
        appeal_id = producer.send({"channel": "hotline", "call_id": "...", ...})
    # leaving the block flushes: every appeal is acknowledged by the broker, or an error raised

What ``send`` does: the payload (canonical, or the channel's native shape, see
``workers.intake.adapters``) is validated and normalised locally with the intake rules
(:func:`workers.intake.core.intake_from_dict`); an invalid payload raises
:class:`~schemas.validation.InvalidEvent` and nothing is sent. The canonical, normalised event
is produced to ``{topic_prefix}appeals.intake.<channel>`` keyed by its ``appeal_id`` (so all
events of one appeal share a partition), and the deterministic ``appeal_id`` is returned at once.
An appeal whose ``submitted_at`` lies more than ``max_age`` seconds (the deployment's
``APPEALS_INTAKE_MAX_AGE``, a year by default) before ``now`` (the wall clock, or the
deployment's SLA clock) is refused as the intake agent would refuse it
(:func:`workers.intake.core.check_age`).

Delivery guarantees:

* ``acks="all"``: the broker acknowledges only when every in-sync replica has the event;
* ``retries`` (default 10) with ``max_in_flight_requests_per_connection=1``: a retried batch
  cannot overtake a later one, so per-partition order is kept;
* at-least-once: a retry after a lost acknowledgement can write an event twice. That is safe
  by design: the ``appeal_id`` is derived from (channel, external id), and intake drops the
  repeat by exact dedupe, so it is registered once;
* ``enable_idempotence`` (default ``False``) removes even those broker-side duplicates where the
  broker supports idempotent producers, as Apache Kafka and the embedded dev broker (Tansu)
  both do for kafka-python's (it is aiokafka's that Tansu refuses); off by default because
  intake's exact dedupe already makes a repeat harmless;
* topics are never auto-created: a send to a topic the broker does not have raises
  :class:`~streams.topics.TopicMissing` at once (the topics are asked for once per topic),
  rather than creating a stray topic with the broker's default partition count (a wrong
  ``topic_prefix`` "succeeded" that way);
* delivery is confirmed by :meth:`flush` (or ``send(..., wait=True)``); failures are collected
  and raised there as :class:`DeliveryError` listing the appeal ids that were not delivered.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from kafka import KafkaProducer

import workers.intake.adapters  # registers the channel adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.records import CHANNELS, IntakeAppeal
from schemas.validation import InvalidEvent, parse_datetime
from streams.clock import SlaClock
from streams.topics import TopicMissing, existing_topics
from workers.intake.core import DEFAULT_MAX_AGE, appeal_id_for, check_age, intake_from_dict

__all__ = ["DeliveryError", "IntakeProducer", "bootstrap_from_url"]

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """Some appeals were not acknowledged by the broker; ``failed`` maps appeal_id -> error."""

    def __init__(self, failed: Mapping[str, BaseException]) -> None:
        self.failed = dict(failed)
        super().__init__(f"{len(self.failed)} appeal(s) not delivered")


def bootstrap_from_url(url: str) -> str:
    """``kafka://h:p;h2:p2`` (our Settings style) or ``h:p,h2:p2`` -> ``h:p,h2:p2``."""
    if "://" in url:
        url = url.split("://", 1)[1]
    return url.replace(";", ",").rstrip("/")


class IntakeProducer:
    """Validate, normalise and publish intake appeals with acks=all (see module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "",
        *,
        enable_idempotence: bool = False,
        retries: int = 10,
        linger_ms: int = 5,
        request_timeout_ms: int = 30_000,
        max_text_length: int = 20_000,
        max_message_bytes: int = 1_000_000,
        max_age: float = DEFAULT_MAX_AGE,
        now: Callable[[], datetime] | None = None,
        client_id: str = "appeals-intake-sdk",
        **kafka_config: Any,
    ) -> None:
        self.topic_prefix = topic_prefix
        self.max_text_length = max_text_length
        self.max_message_bytes = max_message_bytes
        self.max_age = max_age
        self.now = now or SlaClock().now_dt
        self._lock = threading.Lock()
        self._failed: dict[str, BaseException] = {}
        from streams.payload_logging import quiet_payload_loggers

        quiet_payload_loggers()  # kafka-python logs message bodies at DEBUG
        # Room for every record _encoded lets through, as the gateway's producer has: with
        # kafka-python's default (1 MiB) and max_message_bytes raised above it, a valid record
        # over 1 MiB made send() raise MessageSizeTooLargeError. The key and the batch's
        # framing take the 4 KiB on top.
        kafka_config.setdefault("max_request_size", max(1_048_576, max_message_bytes + 4096))
        kafka_config.setdefault("allow_auto_create_topics", False)
        self._check_topics = not kafka_config["allow_auto_create_topics"]
        self._bootstrap = bootstrap_from_url(bootstrap)
        self._client_id = client_id
        #: Topics the broker was found to have; the ones sent to, with how many records.
        self._known_topics: set[str] = set()
        self.topics_sent: Counter[str] = Counter()
        #: Appeals the broker has acknowledged so far (all in-sync replicas have them): what an
        #: interrupted ``appeals produce`` can say was delivered.
        self.acknowledged = 0
        self._producer = KafkaProducer(
            bootstrap_servers=self._bootstrap.split(","),
            client_id=client_id,
            acks="all",
            retries=retries,
            max_in_flight_requests_per_connection=1,
            enable_idempotence=enable_idempotence,
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            **kafka_config,
        )

    def topic_for(self, channel: str) -> str:
        return f"{self.topic_prefix}appeals.intake.{channel}"

    def prepare(
        self, appeal: Mapping[str, Any] | IntakeAppeal, channel: str | None = None
    ) -> IntakeAppeal:
        """The validated, normalised record for a payload; raises :class:`InvalidEvent`."""
        return self._encoded(appeal, channel)[0]

    def _encoded(
        self, appeal: Mapping[str, Any] | IntakeAppeal, channel: str | None
    ) -> tuple[IntakeAppeal, bytes]:
        """The record and the bytes to send. The size and the age are intake's checks too: a
        record over ``max_message_bytes`` passed here and was dead-lettered by the intake agent
        as ``oversize_message`` after it had been sent (review of session 15), one older than
        ``max_age`` as ``invalid_value``."""
        if channel is not None and channel not in CHANNELS:
            raise InvalidEvent("unknown_channel", f"channel {channel!r} is not known")
        if isinstance(appeal, IntakeAppeal):
            data = appeal.to_dict()
        elif isinstance(appeal, Mapping):
            data = dict(appeal)
        else:
            raise InvalidEvent("not_object", f"{type(appeal).__name__}, expected an object")
        if channel is not None and "channel" not in data:
            data["channel"] = channel
        record = intake_from_dict(
            data, channel_hint=channel, max_text_length=self.max_text_length
        )
        check_age(parse_datetime(record.submitted_at), self.now(), self.max_age)
        value = record.to_json()
        if len(value) > self.max_message_bytes:
            raise InvalidEvent("oversize_message",
                               f"{len(value)} bytes > {self.max_message_bytes}")
        return record, value

    def send(
        self,
        appeal: Mapping[str, Any] | IntakeAppeal,
        channel: str | None = None,
        *,
        wait: bool = False,
        timeout: float = 30.0,
    ) -> str:
        """Publish one appeal; returns its ``appeal_id``. Raises :class:`InvalidEvent` if invalid.

        Without ``wait`` the event is queued and confirmed by :meth:`flush`; with ``wait`` this
        call returns only after the broker acknowledged it (and raises if it did not).
        """
        record, value = self._encoded(appeal, channel)
        appeal_id = appeal_id_for(record.channel, record.external_id)
        topic = self.topic_for(record.channel)
        self._check_topic(topic)
        future = self._producer.send(topic, value=value, key=appeal_id.encode())
        self.topics_sent[topic] += 1
        future.add_callback(self._on_ack)
        if wait:
            future.get(timeout=timeout)
        else:
            future.add_errback(self._on_error, appeal_id)
        return appeal_id

    def _on_ack(self, _metadata: Any) -> None:
        with self._lock:
            self.acknowledged += 1

    def _check_topic(self, topic: str) -> None:
        """Raise :class:`TopicMissing` unless the broker has ``topic`` (asked once per topic
        found: without auto-creation kafka-python waits ``max_block_ms`` for its metadata and
        then times out without naming it)."""
        if not self._check_topics or topic in self._known_topics:
            return
        self._known_topics = existing_topics(self._bootstrap, client_id=self._client_id)
        if topic not in self._known_topics:
            raise TopicMissing(topic)

    def _on_error(self, appeal_id: str, exc: BaseException) -> None:
        log.warning("intake delivery failed appeal_id=%s error=%s", appeal_id,
                    type(exc).__name__)
        with self._lock:
            self._failed[appeal_id] = exc

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued appeal; raise :class:`DeliveryError` if any was not delivered."""
        self._producer.flush(timeout=timeout)
        with self._lock:
            failed, self._failed = self._failed, {}
        if failed:
            raise DeliveryError(failed)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush what is queued and close; raises :class:`DeliveryError` after closing."""
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> IntakeProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # don't mask the original error with a delivery error
            try:
                self.close()
            except DeliveryError:
                log.warning("undelivered appeals while handling another error")
