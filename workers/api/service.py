"""What the HTTP API knows: figures of every subject, the rating of every region, open breaches.

Why the rating is computed here and not in a worker timer: every worker sees only its own
partitions, so a worker-side rating would need every worker to read every partition from Redis
and race the others to write the same sorted sets. The API process reads all partitions anyway
to answer requests, so it computes figures and ratings once per ``APPEALS_RATING_REFRESH``
seconds (a snapshot with a short cache, refreshed by a background task and on demand), and
publishes the result: the ratings as sorted sets per region and window
(``{app_id}:rating:{region}:{window}``, score = rating score), their details as a hash
(``…:entries``), and the ``appeals_on_time_ratio{authority,window}`` gauge. Several API
replicas compute identical snapshots from identical input, so their writes agree.

Nothing here reads or returns personal data: the read model holds none (see
``workers.sla.agent._write_redis``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import redis.exceptions

from monitoring import metrics
from streams.clock import SlaClock
from streams.settings import Settings
from workers.aggregates.rating import RatingEntry, RatingPolicy, rate_with_trend
from workers.aggregates.readmodel import (
    WINDOWS,
    AuthorityFigures,
    ParsedMaps,
    fetch_maps,
    figures_from_parsed,
    published_partitions,
    subject_kind,
)
from workers.api.pool import PoolBusy
from workers.routing.model import Authority, RoutingRules
from workers.sla import read_model
from workers.sla.engine import OPEN_STATUSES

log = logging.getLogger(__name__)

RATING_WINDOWS = ("1d", "7d", "30d")
TREND_DAYS = 7
#: The window of the TREND_DAYS days after the past window (its last day is today).
TREND_WINDOW = "7d"
#: Open breaches read and checked per round trip while paging through the index.
BREACH_CHUNK = 2_000
#: Entries read before the rank a position was estimated at (:meth:`ApiService._after`):
#: ranks shift when the index changes between round trips; a read is used only when it
#: starts at or before the position, and is tried again from further back otherwise.
RANK_MARGIN = 64
#: (due, appeal id as stored): a position in a breach index, ordered as Redis orders a
#: sorted set (score, then member bytes).
Position = tuple[float, bytes]
OPEN_BREACHES = read_model.OPEN_BREACHES
_BREACH_FIELDS = ("authority_id", "category", "regime", "municipality", "status", "sla")
_FIELD_NAMES = tuple(f.encode() for f in _BREACH_FIELDS)
#: Records whose bytes that are not UTF-8 are logged once per process; past this many, every
#: further one is logged at each read (the set stays bounded).
UNDECODABLE_KEYS_LOGGED = 1024


def rating_key(app_id: str, region: str, window: str) -> str:
    return f"{app_id}:rating:{region}:{window}"


@dataclass
class Snapshot:
    """One consistent read of the partitions and everything derived from it.

    ``figures`` holds every subject's figures per (local day, window), cut once when the
    snapshot is computed: requests only look subjects up. (``/v1/authorities`` used to cut the
    figures of every subject again for each authority it listed, about 2 s of CPU per request
    on region-sized data, with the event loop blocked meanwhile.)
    """

    computed_mono: float
    now_sla: float
    parsed: ParsedMaps
    today: dict[str, dt.date]
    ratings: dict[tuple[str, str], list[RatingEntry]] = field(default_factory=dict)
    figures: dict[tuple[dt.date, str], dict[str, AuthorityFigures]] = field(default_factory=dict)
    default_today: dt.date | None = None
    """The categories' day (``RoutingRules.category_zone``), windows without a region."""
    rules: RoutingRules | None = None
    own_day: dict[str, dt.date] = field(default_factory=dict)
    """Authorities with a zone of their own whose local day is not their region's."""

    def rating(self, region: str, window: str) -> list[RatingEntry]:
        return self.ratings.get((region, window), [])

    def entry(self, authority: Authority, window: str) -> RatingEntry | None:
        for entry in self.rating(authority.region_code, window):
            if entry.authority_id == authority.id:
                return entry
        return None


@dataclass
class _Failure:
    """The last snapshot computation's Redis error, answered at once until ``until``."""

    error: BaseException
    at: float
    until: float


class ReadModelUnavailable(redis.exceptions.ConnectionError):
    """The snapshot could not be computed a moment ago; raised at once instead of trying again.

    Why: with Redis hung, every request used to wait out the socket timeout on its own, one
    after another (the k-th waited k × 5 s). A failure is remembered for one refresh interval
    (the background refresher keeps probing meanwhile) and requests fail fast during it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReadModelRebuilding(Exception):
    """Fewer of the ``APPEALS_PARTITIONS`` partitions than all have published their figures
    (``{app_id}:agg:partitions``): Redis restarted empty, or lost its data, and the workers
    have not written everything back yet (at start-up, before any worker ran, too).

    Why not answer from what is there: every figure read as 0, the rating as all unrated,
    known appeals as unknown, and nothing told a client that these were no real data (review
    of session 17). Not a Redis error: Redis answers, so nothing is remembered as a failure;
    the next request or refresh looks again.
    """

    def __init__(self, published: int, expected: int) -> None:
        message = f"{published} of {expected} partitions have published their figures"
        if published:
            # Some published and the rest never do: an API configured with more partitions
            # than the topics have waits for ever, and this is all an operator sees of it.
            message += (f"; if this lasts while the workers run, check that APPEALS_PARTITIONS "
                        f"({expected}) is the partition count of the appeals topics")
        super().__init__(message)
        self.published, self.expected = published, expected


class BreachPage(NamedTuple):
    """A page of open breaches: ``total`` matched in all. ``truncated`` is kept in the
    answer's shape for clients; since the per-authority sets every count is complete.
    ``more``: open breaches follow the last item (the next page starts after it)."""

    items: list[OpenBreach]
    total: int
    truncated: bool
    more: bool = False


@dataclass
class OpenBreach:
    appeal_id: str
    authority_id: str
    category: str
    regime: str
    municipality: str
    due_at: str
    overdue_s: float
    sla_status: str
    #: The score in the index (``due_at`` before formatting): a cursor's position.
    due_ts: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "appeal_id": self.appeal_id,
            "authority_id": self.authority_id,
            "category": self.category or None,
            "regime": self.regime,
            "municipality": self.municipality or None,
            "due_at": self.due_at,
            "overdue_s": round(self.overdue_s, 1),
            "sla_status": self.sla_status,
        }


class ApiService:
    def __init__(self, settings: Settings, redis: Any, rules: RoutingRules,
                 clock: SlaClock | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.rules = rules
        self.clock = clock or SlaClock(settings.time_scale, settings.clock_epoch)
        self.prefix = read_model.key_prefix(settings.app_id)
        self.policy = RatingPolicy(min_volume=settings.rating_min_volume)
        self._snapshot: Snapshot | None = None
        self._inflight: asyncio.Task[Snapshot] | None = None
        self._failure: _Failure | None = None
        self._gauge_labels: set[tuple[str, str]] = set()
        self._undecodable: set[str] = set()

    # ----------------------------------------------------------------- routing data
    def replace_rules(self, rules: RoutingRules) -> None:
        """Take reloaded routing rules into use (``RulesWatcher``'s ``on_change``).

        The cached snapshot was rated with the previous rules (which bodies a region has), so
        it counts as stale from now on: the next request or refresh computes a new one.
        """
        self.rules = rules

    def authorities(self, region: str | None = None) -> list[Authority]:
        items = self.rules.authorities.values()
        return sorted((a for a in items if region is None or a.region_code == region),
                      key=lambda a: a.id)

    def authority(self, authority_id: str) -> Authority | None:
        return self.rules.authorities.get(authority_id)

    def municipality_region(self, muni_id: str) -> str | None:
        for code, region in self.rules.regions.items():
            if muni_id in region.municipalities:
                return code
        return None

    def today(self, region: str | None) -> dt.date:
        return _local_day(self.rules, region, self.clock.now())

    # ----------------------------------------------------------------- snapshot
    def _fresh(self, snap: Snapshot, age_limit: float) -> bool:
        """Young enough, and rated with the rules in use (a reload makes it stale)."""
        return snap.rules is self.rules and time.monotonic() - snap.computed_mono < age_limit

    async def snapshot(self, max_age: float | None = None, *, probe: bool = False) -> Snapshot:
        """The cached snapshot, recomputed when older than ``APPEALS_RATING_REFRESH``.

        Single flight: concurrent callers share the one computation in flight, its result or
        its exception (each of them used to retry it alone behind a lock, so with Redis hung
        the k-th request waited k socket timeouts). A Redis failure is remembered for one
        refresh interval and raised at once as :class:`ReadModelUnavailable` meanwhile;
        ``probe`` (the background refresher) tries again regardless, so the API recovers
        within one interval of Redis coming back.
        """
        age_limit = self.settings.rating_refresh if max_age is None else max_age
        snap = self._snapshot
        if snap is not None and self._fresh(snap, age_limit):
            return snap
        failure = self._failure
        now = time.monotonic()
        if failure is not None and now < failure.until and not probe:
            raise ReadModelUnavailable(
                f"the read model could not be read {now - failure.at:.1f} s ago "
                f"({type(failure.error).__name__}); not retried before the next refresh",
                retry_after=failure.until - now) from failure.error
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(),
                                                          name="api-snapshot")
            self._inflight = task
            task.add_done_callback(self._refresh_done)
        # shield: a request cancelled (client gone) must not cancel the others' computation.
        return await asyncio.shield(task)

    def failure_wait(self, exc: BaseException) -> float | None:
        """Seconds until the snapshot is read again, if ``exc`` is its remembered failure.

        The request whose read failed gets the raw Redis error, not
        :class:`ReadModelUnavailable`; its Retry-After should still say when a retry can be
        answered from Redis rather than at once from the remembered failure.
        """
        failure = self._failure
        if failure is None or failure.error is not exc:
            return None
        return max(0.0, failure.until - time.monotonic())

    def _refresh_done(self, task: asyncio.Task[Snapshot]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away meanwhile

    async def _refresh(self) -> Snapshot:
        try:
            snap = await self._compute()
        except PoolBusy:
            raise  # this process is saturated, Redis answered: nothing to remember
        except (redis.exceptions.RedisError, OSError) as exc:
            now = time.monotonic()
            self._failure = _Failure(exc, now, now + self.settings.rating_refresh)
            raise
        self._failure = None
        # Published before the snapshot is shared: a request served from this snapshot
        # must find the same ratings in Redis (the refresher's publish used to be still
        # in flight when another request got the cached snapshot; a CI run caught it).
        try:
            await self._publish(snap)
        except Exception as exc:  # a failed publish must not fail the request
            metrics.REDIS_ERRORS.labels("rating_publish").inc()
            log.warning("rating publish failed: %s", type(exc).__name__)
        self._snapshot = snap
        return snap

    async def close(self) -> None:
        """Cancel a computation in flight (shutdown): nobody will wait for it any more."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _published(self, published: set[int]) -> int:
        """How many of the configured partitions are in ``published``; every read of it sets
        ``appeals_api_read_model_ready``, so a rebuild that lasts is alerted on
        (AppealsApiReadModelRebuilding) and not only answered 503 request by request."""
        count = len(published & set(range(self.settings.partitions)))
        metrics.API_READ_MODEL_READY.set(1 if count >= self.settings.partitions else 0)
        return count

    async def check_ready(self) -> None:
        """Raise :class:`ReadModelRebuilding` unless every partition has published: for the
        reads that do not go through a snapshot (an appeal not found, the breach list)."""
        published = self._published(await published_partitions(self.redis, self.prefix))
        if published < self.settings.partitions:
            raise ReadModelRebuilding(published, self.settings.partitions)

    async def _compute(self) -> Snapshot:
        """A new snapshot; :class:`ReadModelRebuilding` (nothing read, rated, published or
        set as a gauge) while a partition has not published its figures."""
        rules = self.rules
        published = await published_partitions(self.redis, self.prefix)
        count = self._published(published)
        if count < self.settings.partitions:
            raise ReadModelRebuilding(count, self.settings.partitions)
        parsed = await fetch_maps(self.redis, self.prefix, self.settings.partitions,
                                  published=published)
        computed_mono, now_sla = time.monotonic(), self.clock.now()
        # Cutting every window of every subject is CPU work of a few hundred ms on
        # region-sized data: off the event loop, so /healthz and cached answers keep flowing.
        snap = await asyncio.to_thread(self._derive, rules, parsed, computed_mono, now_sla)
        self._set_gauges(snap, rules)
        return snap

    def _derive(self, rules: RoutingRules, parsed: ParsedMaps, computed_mono: float,
                now_sla: float) -> Snapshot:
        """Figures of every subject per (local day, window), and the ratings.

        Windows end on the region's local day, except for an authority with a zone of its own
        whose day differs (``Snapshot.own_day``): its answers are bucketed on its own day, and
        cut on the region's, an answer given minutes ago stayed out of the 1d window for up to
        the zones' difference (review of session 16).
        """
        today = {code: _local_day(rules, code, now_sla) for code in rules.regions}
        default_today = _local_day(rules, None, now_sla)
        own_day = _own_days(rules, today, now_sla)
        snap = Snapshot(computed_mono, now_sla, parsed, today, default_today=default_today,
                        rules=rules, own_day=own_day)
        for day in sorted({*today.values(), default_today, *own_day.values()}):
            for window in RATING_WINDOWS:
                snap.figures[(day, window)] = figures_from_parsed(parsed, day, window, "any")
        past: dict[tuple[dt.date, str], dict[str, AuthorityFigures]] = {}

        def authorities(day: dt.date, window: str, back: int = 0) -> dict[str, AuthorityFigures]:
            """The authorities' figures of ``window`` ending ``back`` days before ``day``, or
            before an authority's own day."""
            def table(d: dt.date) -> dict[str, AuthorityFigures]:
                if back == 0:
                    return snap.figures[(d, window)]
                key = (d - dt.timedelta(days=back), window)
                if key not in past:
                    past[key] = figures_from_parsed(parsed, key[0], window, "authority")
                return past[key]

            out = {s: f for s, f in table(day).items()
                   if subject_kind(s) == "authority" and s not in own_day}
            for auth, d in own_day.items():
                fig = table(d).get(auth)
                if fig is not None:
                    out[auth] = fig
            return out

        for code in rules.regions:
            day = today[code]
            ids = sorted(a.id for a in rules.authorities.values() if a.region_code == code)
            # The days after the past window up to today: the past backlog is today's walked
            # back over them (rating.past_backlog).
            since = authorities(day, TREND_WINDOW)
            for window in RATING_WINDOWS:
                now_figs = authorities(day, window)
                # Bodies that are not in the rules any more but still have figures are rated
                # too (their appeals still count for the region's mean).
                extra = [a for a in now_figs if a not in rules.authorities
                         and a.startswith(f"{code}-")]
                snap.ratings[(code, window)] = rate_with_trend(
                    now_figs, authorities(day, window, TREND_DAYS), ids + sorted(extra),
                    self.policy, since)
        return snap

    def _set_gauges(self, snap: Snapshot, rules: RoutingRules) -> None:
        seen: set[tuple[str, str]] = set()
        for (_region, window), entries in snap.ratings.items():
            for entry in entries:
                share = entry.figures.on_time_share
                if share is None or entry.authority_id not in rules.authorities:
                    continue
                metrics.ON_TIME_RATIO.labels(entry.authority_id, window).set(share)
                seen.add((entry.authority_id, window))
        for labels in self._gauge_labels - seen:
            with contextlib.suppress(KeyError):
                metrics.ON_TIME_RATIO.remove(*labels)
        self._gauge_labels = seen

    async def _publish(self, snap: Snapshot) -> None:
        """Replace the rating sorted sets and their detail hashes atomically (MULTI)."""
        ttl = max(60, int(self.settings.rating_refresh * 20))
        async with self.redis.pipeline(transaction=True) as pipe:
            for (region, window), entries in snap.ratings.items():
                key = rating_key(self.settings.app_id, region, window)
                details = f"{key}:entries"
                pipe.delete(key, details)
                scores = {e.authority_id: e.score for e in entries if e.score is not None}
                if scores:
                    pipe.zadd(key, scores)
                    pipe.expire(key, ttl)
                mapping = {e.authority_id: orjson.dumps(e.to_dict()) for e in entries}
                mapping["_computed_at"] = orjson.dumps(_iso(snap.now_sla))
                pipe.hset(details, mapping=mapping)
                pipe.expire(details, ttl)
            await pipe.execute()

    def _day(self, snap: Snapshot, region: str | None, subject: str = "") -> dt.date:
        """The local day a snapshot's windows of ``region`` end on (None: the categories', the
        rules' default region's), or of ``subject``, an authority whose own zone has another
        day."""
        if subject in snap.own_day:
            return snap.own_day[subject]
        if region is None:
            return snap.default_today or self.today(None)
        return snap.today.get(region) or self.today(region)

    def figures(self, snap: Snapshot, subject: str, window: str,
                region: str | None = None) -> AuthorityFigures:
        """A subject's figures: a lookup in the snapshot, no recomputation."""
        key = (self._day(snap, region, subject), window)
        table = snap.figures.get(key)
        if table is None:  # a region of rules reloaded after this snapshot: cut it once
            table = snap.figures[key] = figures_from_parsed(snap.parsed, key[0], window, "any")
        return table.get(subject) or AuthorityFigures(subject)

    def window_bounds(self, snap: Snapshot, window: str, region: str | None,
                      subject: str = "") -> tuple[str, str]:
        today = self._day(snap, region, subject)
        return (today - dt.timedelta(days=WINDOWS[window] - 1)).isoformat(), today.isoformat()

    # ----------------------------------------------------------------- appeals, breaches
    def _decoded(self, key: str, fields: Iterable[bytes], values: Iterable[bytes | None]
                 ) -> tuple[list[str], list[str]]:
        """A record's field names and values as text (None: ``""``).

        Bytes that are not UTF-8 become U+FFFD and the rest is served: one such byte in one
        appeal's hash made ``/v1/breaches``, the supervisor page and the appeal answer 500 for
        every reader. The key and the field names are logged, once per key and process,
        never a value (what an appeal says is about a person)."""
        names, texts, bad = [], [], []
        for name, value in zip(fields, values, strict=True):
            try:
                text = name.decode()
            except UnicodeDecodeError:
                text = name.decode(errors="replace")
                bad.append(text)
            names.append(text)
            if value is None:
                texts.append("")
                continue
            try:
                texts.append(value.decode())
            except UnicodeDecodeError:
                texts.append(value.decode(errors="replace"))
                bad.append(text)
        if bad and key not in self._undecodable:
            if len(self._undecodable) < UNDECODABLE_KEYS_LOGGED:
                self._undecodable.add(key)
            log.warning("read model record %s: field(s) %s hold bytes that are not UTF-8; "
                        "served with U+FFFD in their place", key, ", ".join(sorted(set(bad))))
        return names, texts

    async def appeal(self, appeal_id: str) -> dict[str, str] | None:
        row, _ = await self.appeal_and_breach(appeal_id)
        return row

    async def appeal_and_breach(self, appeal_id: str) -> tuple[dict[str, str] | None, bool]:
        """An appeal's record and whether it is in the open-breach index, in one MULTI.

        Why the index and not the record's ``sla`` field: ``/v1/breaches`` and the supervisor
        page list the index, and a breached appeal that was then paused reads ``sla=paused``
        while it stays an open breach; ``open_breach`` said false for it. The writer changes
        the record and the index in one script, so one MULTI reads them consistently.

        Redis over ``maxmemory`` (``noeviction``) refuses every command queued in a MULTI,
        reads too, while it still serves plain reads: the API answered 503 "not reachable"
        for every appeal. The two reads are then sent as a plain pipeline (counted as
        ``appeals_redis_errors_total{operation="appeal_read"}``): a full Redis refuses the
        writer's updates as well, and one answer torn by a racing write beats none.
        """
        key = read_model.appeal_key(self.prefix, appeal_id)
        index = f"{self.prefix}{OPEN_BREACHES}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(key)
                pipe.zscore(index, appeal_id)
                raw, score = await pipe.execute()
        except redis.exceptions.OutOfMemoryError:
            metrics.REDIS_ERRORS.labels("appeal_read").inc()
            log.warning("Redis is over maxmemory and refuses MULTI: appeal read without it")
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                pipe.zscore(index, appeal_id)
                raw, score = await pipe.execute()
        if not raw:
            return None, False
        names, values = self._decoded(key, raw.keys(), raw.values())
        return dict(zip(names, values, strict=True)), score is not None

    async def open_breaches(self, authority_ids: Iterable[str] | None = None,
                            limit: int = 100, after: Position | None = None) -> BreachPage:
        """Open breached appeals, most overdue first, and how many matched in total.

        ``after``: the position of the last item of the page before (a cursor); this page
        lists those after it in the index's order (due, then appeal id). A page is read from
        the position, not from an offset, so an appeal that stays an open breach is listed
        exactly once over the pages whatever is added or removed between them.

        Unfiltered, the total is the size of the index (ZCARD, less entries met whose record
        is gone). Filtered by authorities, only those bodies' own sets are read
        (:func:`read_model.authority_breaches_key`): the total is the sum of their sizes less
        the entries met whose record is gone, and the page is the merge of the first of each.
        The old filtered listing paged through the whole index (4.5 s of CPU at 100,000
        breaches of another body) and stopped at 100,000 entries with a lower bound
        (``truncated``, now always false).
        """
        if authority_ids is None:
            return await self._all_breaches(limit, after)
        wanted = sorted(set(authority_ids))
        if not wanted:
            return BreachPage([], 0, False)
        keys = [read_model.authority_breaches_key(self.prefix, a) for a in wanted]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zcard(key)
            card = sum(int(n) for n in await pipe.execute())
        now = self.clock.now()
        take = limit + 64
        while True:
            pages = await self._after(keys, after, take)
            # Entries not read yet lie beyond the last one read from each set with more: the
            # merge is in order only up to the earliest of those.
            bound = min((last for _entries, more, last in pages if more and last), default=None)
            merged = sorted(e for entries, _more, _last in pages for e in entries
                            if bound is None or e <= bound)
            out, stale = await self._checked(merged, wanted, limit + 1, now, set())
            if len(out) > limit or bound is None:
                return BreachPage(out[:limit], max(card - stale, len(out[:limit])), False,
                                  more=len(out) > limit)
            take *= 4  # stale entries ate the margin before the bound: read further

    async def _after(self, keys: list[str], after: Position | None, count: int
                     ) -> list[tuple[list[Position], bool, Position | None]]:
        """Per key: the entries after ``after`` (all from the start: None) among about
        ``count`` read from its position, whether the set goes on beyond the read, and the
        last entry read.

        By rank, which ZRANGE reads in O(log n + count): the position's rank is the member's
        own (ZRANK) while it is in the set with the same score, else the number of entries
        due before it (ZCOUNT). The index can change between that estimate and the read, so
        the read starts :data:`RANK_MARGIN` earlier and counts only if its first entry is at
        or before the position (nothing after it was passed over); else it is tried again
        from further back. Entries at or before the position are dropped, so none repeats.
        """
        results: list[tuple[list[Position], bool, Position | None]] = [([], False, None)] * len(
            keys)
        todo = list(range(len(keys)))
        estimate = dict.fromkeys(todo, 0)
        margin = RANK_MARGIN
        for attempt in range(6):
            if after is not None:
                due, member = after
                async with self.redis.pipeline(transaction=False) as pipe:
                    for i in todo:
                        pipe.zscore(keys[i], member)
                        pipe.zrank(keys[i], member)
                        pipe.zcount(keys[i], "-inf", f"({due!r}")
                    replies = await pipe.execute()
                for j, i in enumerate(todo):
                    score, rank, below = replies[3 * j:3 * j + 3]
                    estimate[i] = rank if score == due and rank is not None else int(below)
            # The last try reads from the start: always in time, however busy the index.
            starts = {i: 0 if attempt == 5 else max(0, estimate[i] - margin) for i in todo}
            stops = {i: estimate[i] + count for i in todo}
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    pipe.zrange(keys[i], starts[i], stops[i], withscores=True)
                pages = await pipe.execute()
            again = []
            for i, page in zip(todo, pages, strict=True):
                entries = [(float(score), m) for m, score in page]
                if after is not None and starts[i] > 0 and (not entries or entries[0] > after):
                    again.append(i)  # the index shrank before the position meanwhile
                    continue
                results[i] = ([e for e in entries if after is None or e > after],
                              len(entries) == stops[i] - starts[i] + 1,
                              entries[-1] if entries else None)
            if not again:
                break
            todo, margin = again, margin * 8
        return results

    async def _checked(self, merged: list[Position], wanted: Iterable[str] | None,
                       limit: int, now: float, seen: set[bytes]
                       ) -> tuple[list[OpenBreach], int]:
        """The first ``limit`` of ``(due, appeal id)`` whose record is an open appeal (of
        ``wanted``, when given), and how many entries met had no such record (stale). ``seen``
        (shared by the pages of one listing) skips an id met before: the index can move
        while it is paged through."""
        allowed = set(wanted) if wanted is not None else None
        prefix = read_model.appeal_key(self.prefix, "").encode()
        out: list[OpenBreach] = []
        stale = 0
        for start in range(0, len(merged), BREACH_CHUNK):
            if len(out) >= limit:
                break
            part = merged[start:start + BREACH_CHUNK]
            # The key from the member's bytes as they are: an id that is not UTF-8 (a
            # corrupted index) still finds its record.
            keys = [prefix + member for _due, member in part]
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, *_BREACH_FIELDS)
                rows = await pipe.execute()
            for (due, member), key, row in zip(part, keys, rows, strict=True):
                if member in seen:
                    continue
                seen.add(member)
                appeal_id = member.decode(errors="replace")
                _, values = self._decoded(key.decode(errors="replace"), _FIELD_NAMES, row)
                auth, category, regime, muni, status, sla = values
                if not auth or status not in OPEN_STATUSES or (
                        allowed is not None and auth not in allowed):
                    stale += 1  # record lost (Redis data loss), closed, or moved since
                    continue
                if len(out) < limit:
                    out.append(OpenBreach(appeal_id, auth, category, regime, muni,
                                          _iso(due), max(0.0, now - due), sla, due))
        return out, stale

    async def _all_breaches(self, limit: int, after: Position | None = None) -> BreachPage:
        key = f"{self.prefix}{OPEN_BREACHES}"
        card = int(await self.redis.zcard(key))
        now = self.clock.now()
        out: list[OpenBreach] = []
        seen: set[bytes] = set()
        stale = 0
        chunk = min(BREACH_CHUNK, limit + 64)
        position = after
        # One more than the page: whether anything follows its last item.
        while len(out) <= limit:
            [(entries, more, last)] = await self._after([key], position, chunk)
            page, gone = await self._checked(entries, None, limit + 1 - len(out), now, seen)
            out += page
            stale += gone
            if not more or last is None:
                break
            position = last
        items = out[:limit]
        return BreachPage(items, max(card - stale, len(items)), False, more=len(out) > limit)

    async def health(self) -> tuple[str, int | None]:
        """``ok``, ``busy`` (no free pooled connection within the wait) or
        ``redis_unreachable``; with ``ok``, how many of the configured partitions have
        published their figures (fewer than all: :class:`ReadModelRebuilding`)."""
        try:
            if not await self.redis.ping():
                return "redis_unreachable", None
            published = await published_partitions(self.redis, self.prefix)
        except PoolBusy:
            return "busy", None
        except Exception:
            return "redis_unreachable", None
        return "ok", self._published(published)


def _own_days(rules: RoutingRules, today: dict[str, dt.date], ts: float) -> dict[str, dt.date]:
    """Local day of each authority whose zone's day at ``ts`` is not its region's."""
    region_zone = {code: r.timezone for code, r in rules.regions.items()}
    days: dict[str, dt.date] = {}
    out: dict[str, dt.date] = {}
    for a in rules.authorities.values():
        if not a.timezone or a.timezone == region_zone.get(a.region_code):
            continue
        if a.timezone not in days:
            days[a.timezone] = dt.datetime.fromtimestamp(ts, ZoneInfo(a.timezone)).date()
        if days[a.timezone] != today.get(a.region_code):
            out[a.id] = days[a.timezone]
    return out


def _local_day(rules: RoutingRules, region: str | None, ts: float) -> dt.date:
    """The calendar day at ``ts`` in ``region``'s zone (Moscow time for an unknown region),
    or with ``region`` None the categories' day: the zones the SLA agent buckets a place's and
    a category's figures in (``RoutingRules.day_zone``, ``category_zone``), so a window is
    cut on the days its figures were kept on."""
    tz = rules.category_zone() if region is None else rules.day_zone(region)
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).date()


def _iso(ts: float | None) -> str:
    return "" if not ts else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
