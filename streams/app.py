"""The Faust application factory.

One function builds the app from :class:`Settings`, so a worker process, a test and the benchmark
all get the same broker, store and consumer tuning. Values are raw bytes on every topic: agents
decode with orjson themselves, which is several times cheaper than Faust's Record codecs and lets
a malformed message go to the dead-letter topic instead of crashing the stream in the decoder.
Table values use Faust's ``json`` codec, which is orjson underneath when orjson is installed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

import faust
from mode import ServiceT

from streams import (
    ack_safety,
    changelog_flush,
    consumer_tuning,
    end_offsets,
    fastpath,
    faust_patches,
    fetch_snapshot,
    resume_order,
    rocksdb_store,
)
from streams.partitioner import partition_for
from streams.settings import Settings

log = logging.getLogger(__name__)


class _App(faust.App):
    """Faust's app without its built-in ``Monitor`` sensor.

    Faust calls every sensor for every consumed record (``on_message_in``,
    ``on_stream_event_in``/``out``, ``on_message_out``) and every send and table access. Its
    only sensor here is the ``Monitor``, whose counters feed Faust's web views (``/stats``,
    off here: ``web_enabled``); the pipeline's figures are Prometheus metrics of its own. The
    hooks cost ~1.3 % of a loaded worker's CPU samples (issue 7, session 11), so the monitor is
    taken out of the sensor set Faust adds it to. Sensors added by other code stay.
    """

    #: The RocksDB table directory (``APPEALS_STORE=rocksdb://``), None with the memory store.
    clean_stop_dir: Path | None = None

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        deps = super().on_init_dependencies()
        with contextlib.suppress(KeyError):
            self.sensors.remove(self.monitor)
        return deps

    async def on_shutdown(self) -> None:
        """Every service stopped, the producer last: if every changelog record reached the
        broker, the local table state matches the changelogs and the next start may keep it
        (streams.rocksdb_store)."""
        await super().on_shutdown()
        if self.clean_stop_dir is None:
            return
        producer = self._producer  # None: never started, nothing was written
        if producer is None or changelog_flush.all_delivered(producer.buffer):
            rocksdb_store.mark_clean_stop(self.clean_stop_dir)
        else:
            log.warning("%s", unclean_stop_message())


def unclean_stop_message() -> str:
    """Why a stop left no clean-stop marker. Without the changelog delivery patch
    (``APPEALS_REQUIRE_FAUST_PATCHES=false`` on a Faust it does not fit) no stop can be told
    clean: nothing was lost, and saying records were not delivered sent operators looking
    for a broker fault at every stop."""
    if not changelog_flush.installed():
        return ("stopped without the changelog delivery check (its Faust patch is not "
                "installed): the next start discards the local table state and recovers it "
                "from the changelogs")
    return ("stopped with table changelog records not delivered: the next start discards the "
            "local table state and recovers it from the changelogs")


def heartbeat_interval(session_timeout: float) -> float:
    """Seconds between consumer heartbeats: a fifth of the session, never less than 1 s, and
    always below a third of it (Kafka's rule, so two heartbeats may be lost before the session
    expires). The 1 s floor once made it equal a 1 s session; sessions are now at least 6 s
    (streams.settings), where a fifth is the value."""
    return min(max(1.0, session_timeout / 5), session_timeout / 4)


#: Bytes a registered appeal may carry beyond the intake record it was registered from, as
#: intake measured that record (``core.decode_intake``, against ``APPEALS_MAX_MESSAGE_BYTES``):
#: the appeal id, regime, registration time, ``duplicate_of`` and the source position (a topic
#: name of at most 249 characters) come to well under 1 KB.
REGISTERED_ENVELOPE_BYTES = 4096
#: The producer's request size limit below which it is never set (the value it had alone):
#: other records than registered appeals (table changelogs) are sized by it.
MIN_PRODUCER_REQUEST_BYTES = 4 * 1024 * 1024
#: Room above the largest record for the record batch and request headers around it.
PRODUCER_REQUEST_HEADROOM = 64 * 1024


def max_registered_bytes(settings: Settings) -> int:
    """The largest registered appeal intake sends (larger ones are dead-lettered).

    Why: a registered appeal over the producer's ``max_request_size`` made the send raise, the
    worker exit with status 70 and replay the same record on every restart. Intake refuses an
    intake record over ``APPEALS_MAX_MESSAGE_BYTES`` as it would write it, so this bound is
    that plus :data:`REGISTERED_ENVELOPE_BYTES`; the producer's limit is above it
    (:func:`producer_max_request_size`)."""
    return settings.max_message_bytes + REGISTERED_ENVELOPE_BYTES


def producer_max_request_size(settings: Settings) -> int:
    """The worker producer's ``max_request_size``: 4 MiB, or more when
    ``APPEALS_MAX_MESSAGE_BYTES`` is raised so far that a registered appeal would not fit.
    It was 4 MiB whatever the setting, and a setting above it accepted appeals the worker
    could not send. The broker's own limit (Apache Kafka's ``message.max.bytes``, 1,048,588
    bytes by default) must be raised with the setting too."""
    return max(MIN_PRODUCER_REQUEST_BYTES,
               max_registered_bytes(settings) + PRODUCER_REQUEST_HEADROOM)


def create_app(settings: Settings) -> faust.App:
    # Before anything is patched: a patch that does not match the installed Faust stops the
    # worker here (FaustPatchError) unless APPEALS_REQUIRE_FAUST_PATCHES is false.
    faust_patches.check(settings)
    ack_safety.install()
    changelog_flush.install()
    fastpath.install(settings.faust_fastpath)
    resume_order.install(settings.seek_before_resume)
    fetch_snapshot.install()
    rocksdb_store.install()
    # Faust creates only the last level of its data dir: make the whole path, so the relative
    # default (var/worker) works from any working directory.
    datadir = Path(settings.data_dir).expanduser().absolute()
    datadir.mkdir(parents=True, exist_ok=True)
    app = _App(
        settings.app_id,
        broker=settings.kafka,
        store=settings.store,
        datadir=str(datadir),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        # Short sessions: a crashed worker's partitions move within seconds, and (with
        # kafka-python's group join waiting half the session timeout) start-up stays quick.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=heartbeat_interval(settings.session_timeout),
        broker_rebalance_timeout=max(30.0, settings.session_timeout * 3),
        broker_request_timeout=max(40.0, settings.session_timeout * 4),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        # acks=all: an output counts as written only when the broker has it; offsets are
        # committed after a batch's outputs are acknowledged (see workers.outbox).
        producer_acks=-1,
        producer_linger_ms=2,
        producer_partitioner=partition_for,  # murmur2 with the key's hash cached
        producer_max_batch_size=256 * 1024,
        producer_max_request_size=producer_max_request_size(settings),
        stream_buffer_maxsize=settings.stream_buffer,
        stream_wait_empty=False,
        table_standby_replicas=0,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind="127.0.0.1",
    )
    if rocksdb_store.uses_rocksdb(settings.store):
        # Before any table opens its databases: state a kill may have left ahead of its
        # changelog is discarded here, and a second process on this directory refused.
        app.clean_stop_dir = Path(app.conf.tabledir)
        rocksdb_store.open_local_state(datadir, app.clean_stop_dir)
    # A table write cannot await, so Faust queues its changelog record and pauses every stream
    # while more than ``max_messages`` wait for the producer, logging a warning each time. Its
    # fixed 100 is less than one SLA batch writes: under load the warning came ~15 times a
    # second (issue 7), meaning nothing, and each pause drained the queue one record per
    # ``wait_for``. Commits still wait for the whole queue (streams.changelog_flush).
    app.producer.buffer.max_messages = settings.changelog_buffer
    consumer_tuning.configure(app, settings.fetch_max_wait)
    end_offsets.configure(app, settings.verify_end_offsets)
    return app
