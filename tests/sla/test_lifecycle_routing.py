"""Which lifecycle events the SLA agent applies where it reads them (lifecycle_routing)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from kafka.partitioner import murmur2 as kafka_python_murmur2

from streams import topics as t
from workers.sla.lifecycle_routing import PartitionCheck, forward_to


def test_partition_check_agrees_with_the_clients_partitioners() -> None:
    rng = random.Random(7)
    check = PartitionCheck(12)
    parts = list(range(12))
    for _ in range(2000):
        key = rng.randbytes(rng.randint(1, 40))
        ours = check.partition_of(key)
        assert ours == DefaultPartitioner()(key, parts, parts)
        assert ours == (kafka_python_murmur2(key) & 0x7FFFFFFF) % 12  # its default partitioner
        assert check(key, ours) and not check(key, (ours + 1) % 12)


def test_partition_check_refuses_no_partitions() -> None:
    with pytest.raises(ValueError):
        PartitionCheck(0)


@pytest.mark.parametrize(("event", "key", "moved", "want"), [
    ("answered", b"A-1", False, None),  # our partitioner, our key: applied on the spot
    ("answered", b"A-1", True, t.SLA_LIFECYCLE),  # a foreign partitioner's placement
    ("answered", None, False, t.SLA_LIFECYCLE),  # no key
    ("answered", b"other", False, t.SLA_LIFECYCLE),  # keyed by something else
    ("triaged", b"A-1", False, t.TRIAGE_DECISIONS),  # decisions belong to the triage agent
])
def test_forward_to(event: str, key: bytes | None, moved: bool, want: str | None) -> None:
    check = PartitionCheck(4)
    partition = check.partition_of(b"A-1")
    if moved:
        partition = (partition + 1) % 4
    data = {"appeal_id": "A-1", "event": event}
    assert forward_to(data, key, partition, check) == want


def test_the_producers_partitioner_is_murmur2() -> None:
    """The partitioner the app gives its producer places keys as aiokafka's default does."""
    from streams.partitioner import partition_for

    rng = random.Random(11)
    parts = list(range(7))
    for _ in range(2000):
        key = rng.randbytes(rng.randint(0, 30))
        assert partition_for(key, parts, parts) == DefaultPartitioner()(key, parts, parts)
        assert partition_for(bytearray(key), parts, parts) == partition_for(key, parts, parts)
    assert partition_for(None, parts, [3]) == 3
