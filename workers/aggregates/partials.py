"""Per-partition aggregates of authorities, derived from the SLA table, and their Redis form.

Why per partition: every SLA-table partition is owned by exactly one worker at a time, so each
worker keeps the sums of its own partitions and writes them to Redis under the partition's
number. Readers add the partitions up. A partition that moves to another worker is rewritten by
its new owner under the same key: nothing is counted twice, and nothing needs a second
repartition through Kafka. The sums are always ``sum(contributions(state))`` over the
partition's appeals (see :func:`workers.sla.engine.contributions`), so a rebuild after recovery
is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.aggregates.sketch import Sketch

Key = tuple[str, str, str]  # (authority, local day or "", counter)


@dataclass
class PartitionAggregates:
    counters: Counter[Key] = field(default_factory=Counter)
    sketches: dict[tuple[str, str], Sketch] = field(default_factory=dict)
    dirty: bool = True

    def apply_delta(self, old: Iterable[Key], new: Iterable[Key]) -> None:
        old_c, new_c = Counter(old), Counter(new)
        if old_c == new_c:
            return
        self.counters.update(new_c)
        self.counters.subtract(old_c)
        for key in [k for k, v in self.counters.items() if v == 0]:
            del self.counters[key]
        self.dirty = True

    def add_response(self, authority: str, day: str, seconds: float) -> None:
        sketch = self.sketches.get((authority, day))
        if sketch is None:
            sketch = self.sketches[(authority, day)] = Sketch()
        sketch.add(seconds)
        self.dirty = True

    def to_redis(self) -> tuple[dict[str, int], dict[str, bytes]]:
        counters = {f"{a}|{d}|{c}": n for (a, d, c), n in self.counters.items() if n}
        sketches = {f"{a}|{d}": orjson.dumps(s.to_json_map()) for (a, d), s in
                    self.sketches.items()}
        return counters, sketches


def counters_key(prefix: str, partition: int) -> str:
    return f"{prefix}agg:{partition}"


def sketches_key(prefix: str, partition: int) -> str:
    return f"{prefix}aggsk:{partition}"


async def publish(redis: Any, prefix: str, partition: int, agg: PartitionAggregates) -> None:
    """Replace the partition's figures in Redis atomically (MULTI), so readers never see half."""
    counters, sketches = agg.to_redis()
    ck, sk = counters_key(prefix, partition), sketches_key(prefix, partition)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(ck, sk)
        if counters:
            pipe.hset(ck, mapping=counters)
        if sketches:
            pipe.hset(sk, mapping=sketches)
        pipe.sadd(f"{prefix}agg:partitions", partition)
        await pipe.execute()
    agg.dirty = False
