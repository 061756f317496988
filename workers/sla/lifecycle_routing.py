"""Which authorities' lifecycle events the SLA agent may apply where they were read.

An event can be applied on the spot only if it sits on the partition that owns its appeal's
SLA state: keyed by its ``appeal_id`` and placed by the same partitioner the pipeline uses for
its own topics (murmur2, as the Java client and aiokafka do). Producers written against our SDK
do that; librdkafka-based ones (kcat, confluent-kafka) default to a different hash. Everything
else is re-published once, keyed by ``appeal_id`` with our partitioner, to the internal topic
the same agent also reads; triage decisions go to the triage agent. Checking every event costs a
hash; re-keying every event (as the pipeline once did) cost a produce and a second consumption.
"""

from __future__ import annotations

from typing import Any

from monitoring import metrics
from streams import topics as t
from streams.partitioner import key_hash


class PartitionCheck:
    """``owns(key, partition)``: is ``partition`` where our partitioner puts ``key``?"""

    __slots__ = ("partitions",)

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = partitions

    def partition_of(self, key: bytes) -> int:
        return key_hash(key) % self.partitions

    def __call__(self, key: bytes, partition: int) -> bool:
        return self.partition_of(key) == partition


def forward_to(data: dict[str, Any], key: bytes | None, partition: int,
               owns: PartitionCheck) -> str | None:
    """The internal topic a validated lifecycle event must go to first, or None to apply it.

    ``data`` as the agent read it: its ``appeal_id`` already canonical (``agent._read``), so a
    key spelt otherwise (an upper-case hex id) is re-keyed to the partition of the appeal."""
    if data.get("event") == "triaged":
        metrics.LIFECYCLE_REKEYED.labels("triage_decision").inc()
        return t.TRIAGE_DECISIONS
    wanted = data["appeal_id"].encode()
    if key is None or key != wanted:
        metrics.LIFECYCLE_REKEYED.labels("key_not_appeal_id").inc()
        return t.SLA_LIFECYCLE
    if not owns(key, partition):
        metrics.LIFECYCLE_REKEYED.labels("foreign_partitioner").inc()
        return t.SLA_LIFECYCLE
    return None
