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
"""

from __future__ import annotations

from typing import Any

from faust.stores import rocksdb as faust_rocksdb
from faust.streams import current_event

from streams.partitioner import key_hash

SCHEME = "rocksdb"
#: DESIGN.md's name for the same store: both schemes build :class:`Store`.
SCHEMES = (SCHEME, "rocksdict")
_installed = False


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
