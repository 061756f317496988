"""``APPEALS_STORE=rocksdb://``: durable state for tables our agents write after a batch.

Faust's RocksDB store picks a partition's database from the event being processed; our tables
are written after ``take_events`` batches with no current event, so the worker crashed on its
first SLA batch. These tests write through a real RocksDB (rocksdict) outside any event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest

from streams import rocksdb_store
from streams.partitioner import key_hash
from streams.rocksdb_store import Store


def _table(data_dir: Path, name: str = "state", **kwargs: Any) -> Any:
    # A bare app with what ``streams.app.create_app`` does for stores (not the whole factory:
    # it would install the Faust patches into this process, which their own tests must not see).
    rocksdb_store.install()
    app = faust.App("rocksdb-store-test", store="rocksdb://", datadir=str(data_dir),
                    autodiscover=False)
    return app.Table(name, partitions=4, key_type=bytes, **kwargs)


def test_a_write_outside_a_stream_lands_in_the_keys_partition(tmp_path: Path) -> None:
    table = _table(tmp_path, use_partitioner=True)
    store = table.data
    assert isinstance(store, Store)
    keys = [f"appeal-{i}".encode() for i in range(40)]
    for key in keys:
        store._set(key, b"v:" + key)
    for key in keys:
        partition = key_hash(key) % 4  # the changelog record's partition (murmur2, as Java)
        assert store._db_for_partition(partition).get(key) == b"v:" + key
        assert store._get(key) == b"v:" + key
    assert {key_hash(k) % 4 for k in keys} == set(store._dbs)  # nothing in another partition


def test_state_is_there_after_a_restart(tmp_path: Path) -> None:
    first = _table(tmp_path, use_partitioner=True).data
    first._set(b"appeal-1", b"answered")
    partition = key_hash(b"appeal-1") % 4
    path = first.partition_path(partition)
    first._dbs[partition].close()

    again = _table(tmp_path, use_partitioner=True).data
    assert again.partition_path(partition) == path
    assert again._db_for_partition(partition).get(b"appeal-1") == b"answered"


def test_a_table_without_the_partitioner_still_needs_its_event(tmp_path: Path) -> None:
    store = _table(tmp_path, name="plain").data
    with pytest.raises(RuntimeError, match="use_partitioner=False"):
        store._set(b"k", b"v")
