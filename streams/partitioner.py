"""The producers' key partitioner: murmur2 as the Java client's, with the hash of a key cached.

Why: aiokafka's default partitioner hashes in pure Python on every send (~3% of a worker's CPU
in the issue #7 profile), and one appeal's key is hashed again and again: its registration, its
routing, its alerts, and the SLA agent's check of where each authority event sits. Same results
as ``aiokafka.partitioner.DefaultPartitioner`` (tested against it and kafka-python), so topics
written before and after stay co-partitioned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

CACHE_SIZE = 1 << 17


@lru_cache(maxsize=CACHE_SIZE)
def _cached_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def key_hash(key: bytes | bytearray) -> int:
    """Non-negative murmur2 of ``key``, as Kafka's default partitioners compute it."""
    if isinstance(key, bytes):
        return _cached_hash(key)
    return int(murmur2(bytes(key))) & 0x7FFFFFFF


def partition_for(key: bytes | bytearray | None, all_partitions: Sequence[int],
                  available: Sequence[int]) -> int:
    """aiokafka ``partitioner`` protocol: keyed → murmur2; no key → a random live partition."""
    if key is None:
        return random.choice(list(available) or list(all_partitions))
    return all_partitions[key_hash(key) % len(all_partitions)]
