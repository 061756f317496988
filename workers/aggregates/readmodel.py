"""Reading authorities' figures back from Redis: the partitions summed, windows applied.

On-time share follows DESIGN.md §4, answered on time / (answered + open overdue), with two
additions: appeals *closed* unanswered past their deadline (``closed_overdue``, on the day they
closed) and appeals *redirected* onwards past the deadline (``redirected_overdue``, charged to
the body that handed them on, on the day of the redirect) count like open overdue ones.
Without them, closing or passing on overdue appeals without an answer took them out of the
denominator and raised the share: not answering paid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.aggregates.partials import counters_key, sketches_key
from workers.aggregates.sketch import Sketch, bin_value

log = logging.getLogger(__name__)

WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "all": 100_000}
COUNTERS = ("received", "answered", "answered_on_time", "breaches", "escalations",
            "closed_overdue", "redirected_overdue")
#: Counters of the current state: they carry no day (``subject||open``).
CURRENT = ("open", "open_overdue")


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
    closed_overdue: int = 0
    redirected_overdue: int = 0
    sketch: Sketch = field(default_factory=Sketch)

    @property
    def unanswered_overdue(self) -> int:
        """Past the deadline and never answered by this body: still open, closed without an
        answer, or redirected onwards."""
        return self.open_overdue + self.closed_overdue + self.redirected_overdue

    @property
    def on_time_share(self) -> float | None:
        denominator = self.answered + self.unanswered_overdue
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
            "closed_overdue": self.closed_overdue,
            "redirected_overdue": self.redirected_overdue,
            "on_time_share": self.on_time_share,
            "median_response_s": self.median_response_s,
            "p90_response_s": self.p90_response_s,
        }


def _in_window(day: str, today: dt.date | None, days: int) -> bool:
    if today is None or days >= WINDOWS["all"]:
        return True
    d = dt.date.fromisoformat(day)
    return today - dt.timedelta(days=days - 1) <= d <= today


def subject_kind(subject: str) -> str:
    """``authority``, ``muni`` or ``cat``: second keys carry a ``kind:`` prefix."""
    return subject.split(":", 1)[0] if ":" in subject else "authority"


@dataclass
class ParsedMaps:
    """The partitions' hashes decoded once, so several windows can be cut from one read."""

    counters: list[tuple[str, str, str, int]] = field(default_factory=list)
    sketches: list[tuple[str, str, Sketch]] = field(default_factory=list)


def parse_maps(counter_maps: list[dict[bytes, bytes]],
               sketch_maps: list[dict[bytes, bytes]]) -> ParsedMaps:
    """Decode the partitions' hashes; a field that does not parse is left out with a warning.

    Keys are ``subject|day|counter`` and ``subject|day``, split from the right: the day and
    the counter never hold a ``|``, a subject from a hand-written routed record may. Split
    from the left, one such subject made every read of the figures raise, so every figures
    endpoint, the ratings and ``/metrics`` answered 500 and the API's rating refresher
    ended for good (review of session 16).

    Only the current counters (:data:`CURRENT`) go without a day. A windowed counter or a
    sketch without one (``22-minzdrav||answered``, by hand or by an older writer) passed
    here and then raised in the window cut (``fromisoformat("")``): every figures endpoint
    and ``/metrics`` answered 500 again.

    A sketch is read only when every bin stands for a finite time and every count is a
    positive integer (:func:`_sketch`): one bin ``100000`` raised OverflowError in the
    quantile, and the region's rating, its pages and the rating refresher failed with it.
    """
    parsed = ParsedMaps()
    skipped = 0
    example = ""
    days: dict[str, bool] = {}

    def a_day(day: str) -> str:
        ok = days.get(day)
        if ok is None:
            try:
                dt.date.fromisoformat(day)
                ok = days[day] = True
            except ValueError:
                ok = days[day] = False
        if not ok:
            raise ValueError(day)
        return day

    for mapping in counter_maps:
        for raw_key, raw_val in mapping.items():
            parts = raw_key.decode(errors="replace").rsplit("|", 2)
            try:
                subject, day, counter = parts
                if day or counter not in CURRENT:
                    a_day(day)
                parsed.counters.append((subject, day, counter, int(raw_val)))
            except ValueError:
                skipped += 1
                example = example or raw_key.decode(errors="replace")
    for mapping in sketch_maps:
        for raw_key, raw_val in mapping.items():
            parts = raw_key.decode(errors="replace").rsplit("|", 1)
            try:
                subject, day = parts
                a_day(day)
                sketch = _sketch(raw_val)
            except (ValueError, TypeError, KeyError, AttributeError):
                skipped += 1
                example = example or raw_key.decode(errors="replace")
                continue
            parsed.sketches.append((subject, day, sketch))
    if skipped:
        log.warning("read model: %d fields of the agg:/aggsk: hashes do not parse (e.g. %r: "
                    "expected subject|YYYY-MM-DD|counter, subject||open, or subject|YYYY-MM-DD "
                    "with positive counts in bins of the sketch's range); left out of the "
                    "figures, remove them with HDEL", skipped, example[:100])
    return parsed


def _sketch(raw: bytes) -> Sketch:
    """A sketch field's value as the writer makes it (``{"<bin>": <count>, ...}``), else
    ValueError: a count that is no positive integer (``1.5``, ``true``, ``-3``) would skew or
    break the quantiles as surely as a bin out of the mapping's range."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("sketch is no JSON object")
    bins: dict[int, int] = {}
    for raw_key, count in data.items():
        if type(count) is not int or count <= 0:
            raise ValueError(f"sketch bin {raw_key[:20]!r}: count is no positive integer")
        key = int(raw_key)
        bin_value(key)
        bins[key] = bins.get(key, 0) + count
    return Sketch(bins)


def figures_from_parsed(
    parsed: ParsedMaps,
    today: dt.date | None = None,
    window: str = "all",
    kind: str = "authority",
) -> dict[str, AuthorityFigures]:
    """Figures per subject of ``kind`` (``authority``, ``muni``, ``cat`` or ``any``).

    Day counters are summed over the window's days ending ``today``; ``open`` and
    ``open_overdue`` are current values (they have no day), so they are the same in every
    window. A window ending in the past (the rating's "last week") therefore still sees
    today's backlog: callers that compare periods must account for it.
    """
    days = WINDOWS[window]
    out: dict[str, AuthorityFigures] = {}

    def fig_of(subject: str) -> AuthorityFigures | None:
        if kind != "any" and subject_kind(subject) != kind:
            return None
        fig = out.get(subject)
        if fig is None:
            fig = out[subject] = AuthorityFigures(subject)
        return fig

    for subject, day, counter, n in parsed.counters:
        current = counter in ("open", "open_overdue")
        if current or (counter in COUNTERS and _in_window(day, today, days)):
            fig = fig_of(subject)
            if fig is not None:
                setattr(fig, counter, getattr(fig, counter) + n)
    for subject, day, sketch in parsed.sketches:
        if _in_window(day, today, days):
            fig = fig_of(subject)
            if fig is not None:
                fig.sketch.merge(sketch)
    return out


def figures_from_maps(
    counter_maps: list[dict[bytes, bytes]],
    sketch_maps: list[dict[bytes, bytes]],
    today: dt.date | None = None,
    window: str = "all",
    kind: str = "authority",
) -> dict[str, AuthorityFigures]:
    return figures_from_parsed(parse_maps(counter_maps, sketch_maps), today, window, kind)


def read_figures(
    redis: Any, prefix: str, partitions: int, today: dt.date | None = None, window: str = "all",
    kind: str = "authority",
) -> dict[str, AuthorityFigures]:
    """Synchronous read (redis.Redis) for the CLI, the demo summary and tests."""
    pipe = redis.pipeline(transaction=False)
    for p in range(partitions):
        pipe.hgetall(counters_key(prefix, p))
    for p in range(partitions):
        pipe.hgetall(sketches_key(prefix, p))
    replies = pipe.execute()
    return figures_from_maps(replies[:partitions], replies[partitions:], today, window, kind)


def partitions_key(prefix: str) -> str:
    """The set of partitions whose figures a worker has published (``partials.publish``)."""
    return f"{prefix}agg:partitions"


async def published_partitions(redis: Any, prefix: str) -> set[int]:
    """The partition numbers in :func:`partitions_key`; a member that is not one is left
    out with a warning (``int()`` of it made every figures endpoint answer 500)."""
    out: set[int] = set()
    for member in await redis.smembers(partitions_key(prefix)):
        text = member.decode(errors="replace") if isinstance(member, bytes) else str(member)
        if text.isascii() and text.isdigit():
            out.add(int(text))
        else:
            log.warning("read model: %s holds %r, not a partition number; left out (remove "
                        "it with SREM)", partitions_key(prefix), text[:64])
    return out


async def fetch_maps(redis: Any, prefix: str, partitions: int,
                     published: set[int] | None = None) -> ParsedMaps:
    """Asynchronous read (redis.asyncio) of every partition's hashes, for the API.

    Partitions listed in ``{prefix}agg:partitions`` are read too, so an API configured with
    fewer partitions than the workers still sees every published partition (``published``:
    that set as the caller read it with :func:`published_partitions`; None: read here).

    A plain pipeline, not MULTI: each hash is replaced whole by its writer's MULTI, so every
    reply is one whole hash, and the partitions' figures are independent sums (a refresh
    reading one partition's counters just before its sketches change is as good as reading it
    a moment earlier). MULTI bought nothing and cost every read once Redis is over maxmemory:
    ``noeviction`` refuses any command queued in a MULTI, reads included, so every endpoint of
    the API answered 503 while plain reads still worked.
    """
    if published is None:
        published = await published_partitions(redis, prefix)
    numbers = sorted(set(range(partitions)) | published)
    async with redis.pipeline(transaction=False) as pipe:
        for p in numbers:
            pipe.hgetall(counters_key(prefix, p))
        for p in numbers:
            pipe.hgetall(sketches_key(prefix, p))
        replies = await pipe.execute()
    n = len(numbers)
    # Off the event loop: parsing a region's 120,000 counters and 20,000 sketches took about
    # 0.6 s, and /healthz and cached answers waited for it every refresh (review, session 15).
    return await asyncio.to_thread(parse_maps, replies[:n], replies[n:])
