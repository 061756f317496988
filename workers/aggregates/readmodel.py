"""Reading authorities' figures back from Redis: the partitions summed, windows applied.

On-time share follows DESIGN.md §4: answered on time / (answered + open overdue), so leaving an
appeal unanswered past its deadline can only lower an authority's figure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.aggregates.partials import counters_key, sketches_key
from workers.aggregates.sketch import Sketch

WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "all": 100_000}
COUNTERS = ("received", "answered", "answered_on_time", "breaches", "escalations")


@dataclass
class AuthorityFigures:
    authority_id: str
    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    breaches: int = 0
    escalations: int = 0
    open: int = 0
    open_overdue: int = 0
    sketch: Sketch = field(default_factory=Sketch)

    @property
    def on_time_share(self) -> float | None:
        denominator = self.answered + self.open_overdue
        return self.answered_on_time / denominator if denominator else None

    @property
    def median_response_s(self) -> float | None:
        return self.sketch.quantile(0.5)

    @property
    def p90_response_s(self) -> float | None:
        return self.sketch.quantile(0.9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "authority_id": self.authority_id,
            "received": self.received,
            "answered": self.answered,
            "answered_on_time": self.answered_on_time,
            "breaches": self.breaches,
            "escalations": self.escalations,
            "open": self.open,
            "open_overdue": self.open_overdue,
            "on_time_share": self.on_time_share,
            "median_response_s": self.median_response_s,
            "p90_response_s": self.p90_response_s,
        }


def _in_window(day: str, today: dt.date | None, days: int) -> bool:
    if today is None or days >= WINDOWS["all"]:
        return True
    d = dt.date.fromisoformat(day)
    return today - dt.timedelta(days=days - 1) <= d <= today


def figures_from_maps(
    counter_maps: list[dict[bytes, bytes]],
    sketch_maps: list[dict[bytes, bytes]],
    today: dt.date | None = None,
    window: str = "all",
) -> dict[str, AuthorityFigures]:
    days = WINDOWS[window]
    out: dict[str, AuthorityFigures] = defaultdict(lambda: AuthorityFigures(""))
    for mapping in counter_maps:
        for raw_key, raw_val in mapping.items():
            auth, day, counter = raw_key.decode().split("|")
            fig = out[auth]
            fig.authority_id = auth
            n = int(raw_val)
            current = counter in ("open", "open_overdue")
            if current or (counter in COUNTERS and _in_window(day, today, days)):
                setattr(fig, counter, getattr(fig, counter) + n)
    for mapping in sketch_maps:
        for raw_key, raw_val in mapping.items():
            auth, day = raw_key.decode().split("|")
            if _in_window(day, today, days):
                fig = out[auth]
                fig.authority_id = auth
                fig.sketch.merge(Sketch.from_json_map(orjson.loads(raw_val)))
    return dict(out)


def read_figures(
    redis: Any, prefix: str, partitions: int, today: dt.date | None = None, window: str = "all"
) -> dict[str, AuthorityFigures]:
    """Synchronous read (redis.Redis) for the CLI, the demo summary and tests."""
    pipe = redis.pipeline(transaction=False)
    for p in range(partitions):
        pipe.hgetall(counters_key(prefix, p))
    for p in range(partitions):
        pipe.hgetall(sketches_key(prefix, p))
    replies = pipe.execute()
    return figures_from_maps(replies[:partitions], replies[partitions:], today, window)
