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

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.aggregates.sketch import Sketch

Key = tuple[str, str, str]  # (subject, local day or "", counter); subject: authority id,
# ``muni:<municipality>`` or ``cat:<category>`` (see workers.sla.engine.subjects)

# Day buckets kept in the partials: the longest window (30 days) plus the 7 days that the
# rating's "change since last week" looks back, plus one day of slack because buckets are
# local days of regions up to UTC+12 while the cut-off is computed on the UTC date.
RETENTION_DAYS = 30 + 7 + 1


def oldest_kept_day(now_ts: float, retention_days: int = RETENTION_DAYS) -> str:
    """ISO date of the oldest day bucket kept at SLA-clock time ``now_ts``."""
    today = dt.datetime.fromtimestamp(now_ts, dt.UTC).date()
    return (today - dt.timedelta(days=retention_days)).isoformat()


@dataclass
class PartitionAggregates:
    counters: Counter[Key] = field(default_factory=Counter)
    sketches: dict[tuple[str, str], Sketch] = field(default_factory=dict)
    dirty: bool = True
    oldest_day: str = ""  # day buckets before this are expired ("" = none yet)

    def _expired(self, day: str) -> bool:
        return bool(day) and day < self.oldest_day

    def apply_delta(self, old: Iterable[Key], new: Iterable[Key]) -> None:
        old_l, new_l = list(old), list(new)
        if old_l == new_l:  # the common case (same order): one C-level comparison
            return
        old_c, new_c = Counter(old_l), Counter(new_l)
        if dict.__eq__(old_c, new_c):  # Counter.__eq__ is a Python loop; no zero counts here
            return
        if self.oldest_day:
            # An expired bucket was dropped; a late change to it (a reopened answer of two
            # months ago) must not resurrect it as a negative count.
            old_c = Counter({k: n for k, n in old_c.items() if not self._expired(k[1])})
            new_c = Counter({k: n for k, n in new_c.items() if not self._expired(k[1])})
        self.counters.update(new_c)
        self.counters.subtract(old_c)
        # Only the keys just touched can have reached zero: scanning every counter here made
        # each SLA event cost O(authorities x days x counters) (bench profile, NOTES.md).
        counters = self.counters
        for key in old_c.keys() | new_c.keys():
            if counters.get(key) == 0:
                del counters[key]
        self.dirty = True

    def add_response(self, authority: str, day: str, seconds: float) -> None:
        if self._expired(day):
            return
        sketch = self.sketches.get((authority, day))
        if sketch is None:
            sketch = self.sketches[(authority, day)] = Sketch()
        sketch.add(seconds)
        self.dirty = True

    def expire(self, oldest_day: str) -> int:
        """Drop day buckets older than ``oldest_day``; returns how many keys went.

        Only the published partials forget old days: the SLA table keeps every state, so the
        figures stay ``sum(contributions)`` restricted to the kept days, and a rebuild gives
        the same result after its first expiry. Cheap when the cut-off has not moved.
        """
        if oldest_day <= self.oldest_day:
            return 0
        self.oldest_day = oldest_day
        old_counters = [k for k in self.counters if self._expired(k[1])]
        for key in old_counters:
            del self.counters[key]
        old_sketches = [k for k in self.sketches if self._expired(k[1])]
        for skey in old_sketches:
            del self.sketches[skey]
        dropped = len(old_counters) + len(old_sketches)
        if dropped:
            self.dirty = True
        return dropped

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
    """Replace the partition's figures in Redis atomically (MULTI), so readers never see half.

    The dirty flag is cleared together with taking the snapshot, before the await: the SLA
    agent keeps applying deltas while the MULTI is in flight, and clearing the flag after it
    lost those (the figures stayed short until the partition's next change, i.e. for good at
    the end of a stream; seen as 199,992 of 200,000 appeals in a bench run). A failed write
    marks it dirty again.
    """
    counters, sketches = agg.to_redis()
    agg.dirty = False
    ck, sk = counters_key(prefix, partition), sketches_key(prefix, partition)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(ck, sk)
            if counters:
                pipe.hset(ck, mapping=counters)
            if sketches:
                pipe.hset(sk, mapping=sketches)
            pipe.sadd(f"{prefix}agg:partitions", partition)
            await pipe.execute()
    except BaseException:
        agg.dirty = True
        raise
