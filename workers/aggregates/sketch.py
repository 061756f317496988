"""A mergeable response-time quantile sketch (DDSketch) that serialises to a small JSON map.

Why not keep ``ddsketch.DDSketch`` objects: the per-partition sketches travel through Redis and
are merged by readers in other processes. The bins of a DDSketch are just ``key -> count`` under
its logarithmic mapping, so we keep exactly that map and use the library's mapping for the
keys; merging is adding counts. Relative accuracy 1%: any reported quantile is within 1% of the
true value at that rank (Masson et al., VLDB 2019).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_MIN_VALUE = 1e-3  # response times under a millisecond count in the lowest bin


def bin_value(key: int) -> float:
    """The response time bin ``key`` stands for; ValueError for a key the mapping cannot turn
    back into a finite time. The writer never makes one, but a bin read back from Redis is
    whatever the hash holds, and ``_MAPPING.value`` raised OverflowError for it in the middle
    of a quantile: the whole region's rating failed with it."""
    try:
        value = float(_MAPPING.value(key))
    except OverflowError:
        raise ValueError(f"sketch bin {key} out of range") from None
    if not math.isfinite(value):
        raise ValueError(f"sketch bin {key} out of range")
    return value


class Sketch:
    __slots__ = ("bins", "count")

    def __init__(self, bins: Mapping[int, int] | None = None) -> None:
        self.bins: dict[int, int] = dict(bins or {})
        self.count = sum(self.bins.values())

    def add(self, value: float, weight: int = 1) -> None:
        key = int(_MAPPING.key(max(value, _MIN_VALUE)))
        self.bins[key] = self.bins.get(key, 0) + weight
        self.count += weight

    def merge(self, other: Sketch) -> None:
        for key, n in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + n
        self.count += other.count

    def quantile(self, q: float) -> float | None:
        """Value at rank ``q`` (0..1), within the relative accuracy; None when empty."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen > rank:
                return float(_MAPPING.value(key))
        return float(_MAPPING.value(max(self.bins)))

    def to_json_map(self) -> dict[str, int]:
        return {str(k): v for k, v in self.bins.items()}

    @classmethod
    def from_json_map(cls, data: Mapping[str, int]) -> Sketch:
        return cls({int(k): int(v) for k, v in data.items()})

    @classmethod
    def merged(cls, sketches: Iterable[Sketch]) -> Sketch:
        out = cls()
        for s in sketches:
            out.merge(s)
        return out
