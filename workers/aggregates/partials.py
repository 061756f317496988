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
    #: Each sketch's JSON as last published, with the sketch's count then: most sketches do
    #: not change between two publishes 2 s apart, and serialising every one of them again
    #: was half of a publish's CPU (issue 7, session 11). Dropped when the sketch changes
    #: (:meth:`add_response`) or expires; the count is checked as well.
    _sketch_json: dict[tuple[str, str], tuple[int, bytes]] = field(
        default_factory=dict, repr=False, compare=False)

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
        self._sketch_json.pop((authority, day), None)
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
            self._sketch_json.pop(skey, None)
        dropped = len(old_counters) + len(old_sketches)
        if dropped:
            self.dirty = True
        return dropped

    def to_redis(self) -> tuple[dict[str, int], dict[str, bytes]]:
        counters = {f"{a}|{d}|{c}": n for (a, d, c), n in self.counters.items() if n}
        cache = self._sketch_json
        sketches: dict[str, bytes] = {}
        for key, sketch in self.sketches.items():
            known = cache.get(key)
            if known is None or known[0] != sketch.count:
                known = cache[key] = (sketch.count, orjson.dumps(sketch.to_json_map()))
            sketches[f"{key[0]}|{key[1]}"] = known[1]
        return counters, sketches


def counters_key(prefix: str, partition: int) -> str:
    return f"{prefix}agg:{partition}"


def sketches_key(prefix: str, partition: int) -> str:
    return f"{prefix}aggsk:{partition}"


#: Replaces a partition's figures in one atomic step: what ``DEL``, ``HSET`` of every counter,
#: ``HSET`` of every sketch and ``SADD`` of the partition did in a MULTI, with the field/value
#: pairs passed as two JSON arrays. Why: redis-py packs every argument of a command in Python
#: (~1.5 µs each), and a partition's snapshot is thousands of fields written every 2 s (a
#: 50,000-appeal bench: ~2,100 counters and ~1,000 sketches per partition, ~4 % of the loaded
#: worker's CPU samples; issue 7, session 11); ``orjson`` encodes the same pairs in C. The
#: pairs are written in the order given, in slices that stay under Lua's stack limit for
#: ``unpack``. A script runs atomically, as the MULTI did.
REPLACE_FIGURES = """
local function put(key, blob)
  local flat = cjson.decode(blob)
  local n = #flat
  local step = 2000
  for i = 1, n, step do
    redis.call('HSET', key, unpack(flat, i, math.min(i + step - 1, n)))
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
if ARGV[2] ~= '[]' then put(KEYS[1], ARGV[2]) end
if ARGV[3] ~= '[]' then put(KEYS[2], ARGV[3]) end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


def snapshot_args(agg: PartitionAggregates) -> tuple[bytes, bytes]:
    """The snapshot of :meth:`PartitionAggregates.to_redis` as the script's two arguments:
    flat JSON arrays ``[field, value, ...]`` of strings, the values encoded as redis-py
    encodes them (a number as its ``repr``, bytes as they are)."""
    counters, sketches = agg.to_redis()
    flat_counters: list[str] = []
    for name, n in counters.items():
        flat_counters.append(name)
        flat_counters.append(repr(n))  # redis-py's encoding of an int (or a float)
    flat_sketches: list[str] = []
    for name, blob in sketches.items():
        flat_sketches.append(name)
        flat_sketches.append(blob.decode())  # orjson output: always UTF-8
    return orjson.dumps(flat_counters), orjson.dumps(flat_sketches)


async def publish(redis: Any, prefix: str, partition: int, agg: PartitionAggregates) -> None:
    """Replace the partition's figures in Redis atomically, so readers never see half
    (one script: :data:`REPLACE_FIGURES`).

    The dirty flag is cleared together with taking the snapshot, before the await: the SLA
    agent keeps applying deltas while the write is in flight, and clearing the flag after it
    lost those (the figures stayed short until the partition's next change, i.e. for good at
    the end of a stream; seen as 199,992 of 200,000 appeals in a bench run). A failed write
    marks it dirty again.
    """
    counters, sketches = snapshot_args(agg)
    agg.dirty = False
    ck, sk = counters_key(prefix, partition), sketches_key(prefix, partition)
    try:
        # EVAL in a pipeline of one: Redis keeps the compiled script by its SHA, and a Redis
        # that restarted empty needs no reload step.
        async with redis.pipeline(transaction=False) as pipe:
            pipe.eval(REPLACE_FIGURES, 3, ck, sk, f"{prefix}agg:partitions", partition,
                      counters, sketches)
            await pipe.execute()
    except BaseException:
        agg.dirty = True
        raise
