"""Durable table state (``APPEALS_STORE=rocksdb://``) for tables written from batches.

Why: Faust's RocksDB store keeps one database per partition and picks it, on every write, from
the partition of the event being processed (``current_event()``). Our agents handle events in
batches (``take_events``) and write their tables after the batch, where there is no current
event, and a batch mixes partitions anyway; so the tables use ``use_partitioner=True`` (the
changelog partition comes from the key, as the producers' partitioner computes it). Faust's
store then failed the first write of the SLA agent (``assert event is not None``) and the
worker exited: the README's "durable worker state" did not work.

:class:`Store` is Faust's RocksDB store with one change: for a table that uses the partitioner,
a write goes to the database of the key's partition, computed with the murmur2 hash the
changelog records' partitioner uses (:func:`streams.partitioner.key_hash`). That is the partition
whose changelog the store recovers from and whose offset it persists, so local state, changelog
and recovery agree. Reads already search the open databases by key (Faust's own code path for
such tables). Other tables are written as Faust writes them.

:func:`install` makes ``rocksdb://`` mean this store; the RocksDB binding is ``rocksdict``.

**Local state is trusted only after a clean stop.** A table write lands in RocksDB at once, its
changelog record only when the broker acknowledges it. A worker killed in between left its
RocksDB ahead of the changelog; restarted on the same directory it recovered only the changelog
written after its persisted offsets, found the state already there, took the replayed event for
a duplicate and wrote nothing, and committed the input offset: the changelog never got the
state, and the appeal dropped out of SLA tracking as soon as its partition moved to another
worker or volume. As Kafka Streams does under exactly-once: :func:`mark_clean_stop` writes a
marker after a stop in which every changelog record was delivered, :func:`open_local_state`
removes it at start, and a start without it discards every table's RocksDB data, so the tables
recover fully from their changelogs. A lock on the data directory keeps a second worker from
discarding the state of one that runs on it (each worker needs its own ``APPEALS_DATA_DIR``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from faust.stores import rocksdb as faust_rocksdb
from faust.streams import current_event

from monitoring import metrics
from streams.partitioner import key_hash

log = logging.getLogger(__name__)

SCHEME = "rocksdb"
#: DESIGN.md's name for the same store: both schemes build :class:`Store`.
SCHEMES = (SCHEME, "rocksdict")
_installed = False
#: In the table directory: written by :func:`mark_clean_stop`, removed by
#: :func:`open_local_state`.
CLEAN_STOP_MARKER = "appeals-clean-stop"
#: In the data directory: held (``flock``) by the worker that uses it, for its whole life.
LOCK_FILE = "appeals-worker.lock"
#: The lock's file descriptor per data directory, kept open while the process runs.
_locks: dict[Path, int] = {}


class DataDirInUse(RuntimeError):
    """Another process holds this ``APPEALS_DATA_DIR``."""


def uses_rocksdb(store_url: str) -> bool:
    return str(store_url).split("://", 1)[0].lower() in SCHEMES


class Store(faust_rocksdb.Store):
    """Faust's RocksDB store; writes of partitioner-keyed tables go to the key's partition."""

    def partition_of(self, key: bytes) -> int:
        table: Any = self.table
        if table.use_partitioner:
            # What streams.partitioner.partition_for picks for the changelog record of this key
            # (partitions 0..n-1), without building the partition list on every write.
            return key_hash(key) % (table.partitions or self.app.conf.topic_partitions)
        event = current_event()
        if event is None:
            raise RuntimeError(f"table {table.name}: written outside a stream, and its "
                               "partition cannot be told from the key (use_partitioner=False)")
        return int(event.message.partition)

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self.partition_of(key)
        db = self._db_for_partition(partition)
        self._key_index[key] = partition
        db.put(key, value)


def install() -> None:
    """Make ``rocksdb://`` (and ``rocksdict://``) store URLs build :class:`Store`
    (idempotent)."""
    global _installed
    if _installed:
        return
    from faust.stores import STORES

    for scheme in SCHEMES:
        STORES.aliases[scheme] = f"{__name__}:Store"
    _installed = True


def _lock(datadir: Path) -> None:
    """Hold ``datadir``'s lock until the process ends; :class:`DataDirInUse` if another has it.

    Without it a second worker started on the same directory would discard the live RocksDB
    data of the first (its start finds no clean-stop marker: the running one removed it)."""
    if datadir in _locks:
        return
    datadir.mkdir(parents=True, exist_ok=True)
    fd = os.open(datadir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUse(
            f"APPEALS_DATA_DIR {datadir} is in use by another process: every worker needs a "
            "data directory of its own") from None
    _locks[datadir] = fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_local_state(datadir: Path, tabledir: Path) -> bool:
    """Before any table is opened: keep the local state if the last stop was clean, else
    discard it (the tables then recover fully from their changelogs). Returns whether it was
    kept (True also when there was none)."""
    _lock(datadir)
    tabledir.mkdir(parents=True, exist_ok=True)
    marker = tabledir / CLEAN_STOP_MARKER
    if marker.exists():
        # From here on a kill leaves no marker: the next start must not trust what this
        # process writes before it stops cleanly.
        marker.unlink()
        _fsync_dir(tabledir)
        return True
    databases = sorted(tabledir.glob("*.db"))
    if not databases:
        return True
    log.warning("local table state in %s discarded, tables recover fully from their "
                "changelogs: the last stop of the worker on this data directory was not clean "
                "(killed or crashed; %d partition databases), so the state may hold writes the "
                "changelog never got", tabledir, len(databases))
    metrics.TABLE_STATE_DISCARDED.inc()
    for entry in tabledir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    _fsync_dir(tabledir)
    return False


def mark_clean_stop(tabledir: Path) -> None:
    """After a stop that delivered every changelog record: the next start may trust the local
    state. Written to a temporary name and renamed, so a kill meanwhile leaves no marker."""
    tabledir.mkdir(parents=True, exist_ok=True)
    marker = tabledir / CLEAN_STOP_MARKER
    partial = marker.with_name(marker.name + ".tmp")
    with open(partial, "w", encoding="ascii") as out:
        out.write(f"{time.time():.3f}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, marker)
    _fsync_dir(tabledir)
