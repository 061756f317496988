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
from typing import Any
from zoneinfo import ZoneInfo

import orjson

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
)
from workers.routing.model import Authority, RoutingRules
from workers.sla import read_model
from workers.sla.engine import OPEN_STATUSES

log = logging.getLogger(__name__)

RATING_WINDOWS = ("1d", "7d", "30d")
TREND_DAYS = 7
BREACH_SCAN_LIMIT = 20_000  # open breaches read per request at most (most overdue first)
OPEN_BREACHES = read_model.OPEN_BREACHES


def rating_key(app_id: str, region: str, window: str) -> str:
    return f"{app_id}:rating:{region}:{window}"


@dataclass
class Snapshot:
    """One consistent read of the partitions and everything derived from it."""

    computed_mono: float
    now_sla: float
    parsed: ParsedMaps
    today: dict[str, dt.date]
    ratings: dict[tuple[str, str], list[RatingEntry]] = field(default_factory=dict)

    def rating(self, region: str, window: str) -> list[RatingEntry]:
        return self.ratings.get((region, window), [])

    def entry(self, authority: Authority, window: str) -> RatingEntry | None:
        for entry in self.rating(authority.region_code, window):
            if entry.authority_id == authority.id:
                return entry
        return None


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
        self._lock = asyncio.Lock()
        self._gauge_labels: set[tuple[str, str]] = set()

    # ----------------------------------------------------------------- routing data
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
        region_rules = self.rules.regions.get(region or self.settings.default_region)
        tz = region_rules.timezone if region_rules else "Europe/Moscow"
        return dt.datetime.fromtimestamp(self.clock.now(), ZoneInfo(tz)).date()

    # ----------------------------------------------------------------- snapshot
    async def snapshot(self, max_age: float | None = None) -> Snapshot:
        """The cached snapshot, recomputed when older than ``APPEALS_RATING_REFRESH``."""
        age_limit = self.settings.rating_refresh if max_age is None else max_age
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.computed_mono < age_limit:
            return snap
        async with self._lock:
            snap = self._snapshot
            if snap is not None and time.monotonic() - snap.computed_mono < age_limit:
                return snap
            snap = await self._compute()
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

    async def _compute(self) -> Snapshot:
        parsed = await fetch_maps(self.redis, self.prefix, self.settings.partitions)
        snap = Snapshot(time.monotonic(), self.clock.now(), parsed,
                        {code: self.today(code) for code in self.rules.regions})
        for code in self.rules.regions:
            today = snap.today[code]
            ids = [a.id for a in self.authorities(code)]
            for window in RATING_WINDOWS:
                now_figs = figures_from_parsed(parsed, today, window, "authority")
                past_figs = figures_from_parsed(
                    parsed, today - dt.timedelta(days=TREND_DAYS), window, "authority")
                # Bodies that are not in the rules any more but still have figures are rated
                # too (their appeals still count for the region's mean).
                extra = [a for a in now_figs if a not in self.rules.authorities
                         and a.startswith(f"{code}-")]
                snap.ratings[(code, window)] = rate_with_trend(
                    now_figs, past_figs, ids + sorted(extra), self.policy)
        self._set_gauges(snap)
        return snap

    def _set_gauges(self, snap: Snapshot) -> None:
        seen: set[tuple[str, str]] = set()
        for (_region, window), entries in snap.ratings.items():
            for entry in entries:
                share = entry.figures.on_time_share
                if share is None or entry.authority_id not in self.rules.authorities:
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

    def figures(self, snap: Snapshot, subject: str, window: str,
                region: str | None = None) -> AuthorityFigures:
        today = snap.today.get(region or "") or self.today(region)
        figs = figures_from_parsed(snap.parsed, today, window, "any")
        return figs.get(subject) or AuthorityFigures(subject)

    def window_bounds(self, snap: Snapshot, window: str, region: str | None) -> tuple[str, str]:
        today = snap.today.get(region or "") or self.today(region)
        return (today - dt.timedelta(days=WINDOWS[window] - 1)).isoformat(), today.isoformat()

    # ----------------------------------------------------------------- appeals, breaches
    async def appeal(self, appeal_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(read_model.appeal_key(self.prefix, appeal_id))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def open_breaches(self, authority_ids: Iterable[str] | None = None,
                            limit: int = 100) -> tuple[list[OpenBreach], int]:
        """Open breached appeals, most overdue first, and how many matched in total."""
        wanted = set(authority_ids) if authority_ids is not None else None
        members = await self.redis.zrange(f"{self.prefix}{OPEN_BREACHES}", 0,
                                          BREACH_SCAN_LIMIT - 1, withscores=True)
        if not members:
            return [], 0
        fields = ("authority_id", "category", "regime", "municipality", "status", "sla")
        async with self.redis.pipeline(transaction=False) as pipe:
            for member, _score in members:
                pipe.hmget(read_model.appeal_key(self.prefix, member.decode()), *fields)
            rows = await pipe.execute()
        now = self.clock.now()
        out: list[OpenBreach] = []
        total = 0
        for (member, due), row in zip(members, rows, strict=True):
            values = [v.decode() if v is not None else "" for v in row]
            auth, category, regime, muni, status, sla = values
            if not auth or status not in OPEN_STATUSES:
                continue  # record lost (Redis data loss), or closed since (the set catches up)
            if wanted is not None and auth not in wanted:
                continue
            total += 1
            if len(out) < limit:
                out.append(OpenBreach(member.decode(), auth, category, regime, muni,
                                      _iso(due), max(0.0, now - due), sla))
        return out, total

    async def healthy(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False


def _iso(ts: float | None) -> str:
    return "" if not ts else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
