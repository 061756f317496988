"""``APPEALS_STORE=rocksdb://``: durable state for tables our agents write after a batch.

Faust's RocksDB store picks a partition's database from the event being processed; our tables
are written after ``take_events`` batches with no current event, so the worker crashed on its
first SLA batch. These tests write through a real RocksDB (rocksdict) outside any event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.app import create_app
from streams.partitioner import key_hash
from streams.rocksdb_store import Store
from streams.settings import Settings


def _table(data_dir: Path, name: str = "state", **kwargs: Any) -> Any:
    app = create_app(Settings(app_id="rocksdb-store-test", store="rocksdb://",
                              data_dir=str(data_dir)))
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
