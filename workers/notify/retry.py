"""Alerts parked for a later delivery: the record on ``appeals.notify.retry`` and its backoff.

Why a topic and not a timer in memory: an alert whose receiver is down must survive the worker
(a restart, a crash, a rebalance) and must not hold the notify agent's offsets, or every other
supervisor's alerts would wait behind it. The notify agent parks the alert, the broker
acknowledges the record, and only then are the alert's offsets committed; the retry agent reads
the record, waits until its ``not_before``, tries the targets not yet served, and either marks
the alert sent or parks it again one attempt later. After ``APPEALS_NOTIFY_RETRY_MAX_AGE`` of
failures the record is dead-lettered (``delivery_failed``): nothing is dropped silently.

The record is internal (written and read only by ``workers/notify``), JSON like every topic:
``{"schema_version": 1, "kind": "notify-retry", "alert": <SlaAlert v1>, "done": [target keys],
"attempt": n, "first_failed_at": unix s, "not_before": unix s, "channels": [pending],
"rejected": [target keys]}``.
``done`` holds :attr:`workers.notify.delivery.Target.key` values (channel and URL hash, never
the URL): a retry sends to the alert's current targets minus those. ``rejected`` (optional,
absent in records of older workers) names those of ``done`` that refused the alert (an
answer no retry can change, dead-lettered as ``delivery_rejected``) or whose delivery raised
(``delivery_error``): once the others took it, the alert is not marked sent as a whole, so
the dead letter's replay reaches the receivers that refused.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.records import SlaAlert
from schemas.validation import InvalidEvent, validate_incoming
from streams.settings import Settings
from workers.runtime import parse_event

KIND = "notify-retry"
VERSION = 1


#: Attempts a record may claim. A record claiming 2**64 - 1 was accepted, and ``attempt + 1``
#: then could not be encoded: the worker exited on it at every replay (review of session 14).
#: Backoff doubles to its cap long before; a year of retries at one a second stays below.
MAX_ATTEMPT = 1 << 32


@dataclass(slots=True)
class Parked:
    """One alert waiting for its next delivery attempt."""

    alert: SlaAlert
    attempt: int
    """The retry this record schedules (1 = the first retry after the quick attempts)."""
    first_failed_at: float
    not_before: float
    done: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Targets of ``done`` that refused the alert (they are in ``done`` too)."""

    def to_json(self) -> bytes:
        return orjson.dumps({
            "schema_version": VERSION,
            "kind": KIND,
            "alert": self.alert.to_dict(),
            "done": sorted(set(self.done)),
            "attempt": self.attempt,
            "first_failed_at": self.first_failed_at,
            "not_before": self.not_before,
            "channels": sorted(set(self.channels)),
            "rejected": sorted(set(self.rejected)),
        })

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Parked:
        """Decode and check a record; :class:`InvalidEvent` with a reason code otherwise."""
        data = parse_event(raw)
        if data.get("kind") != KIND or data.get("schema_version") != VERSION:
            raise InvalidEvent("bad_retry_record", "not a notify-retry record of version 1")
        alert = data.get("alert")
        validate_incoming("sla-alert", alert)
        done, channels = data.get("done", []), data.get("channels", [])
        rejected = data.get("rejected", [])
        attempt = data.get("attempt")
        moments = (data.get("first_failed_at"), data.get("not_before"))
        if not (_strings(done) and _strings(channels) and _strings(rejected)
                and isinstance(attempt, int) and not isinstance(attempt, bool)
                and 1 <= attempt <= MAX_ATTEMPT
                and all(_finite(m) for m in moments)):
            raise InvalidEvent("bad_retry_record", "done, channels, attempt or moments invalid")
        assert isinstance(alert, dict)
        return cls(alert=SlaAlert.from_dict(alert), attempt=attempt,
                   first_failed_at=float(moments[0]), not_before=float(moments[1]),  # type: ignore[arg-type]
                   done=list(done), channels=list(channels), rejected=list(rejected))

    def merge(self, other: Parked) -> None:
        """Two records of one alert (a replay parked it twice): one attempt serves both."""
        self.done = sorted(set(self.done) | set(other.done))
        self.channels = sorted(set(self.channels) | set(other.channels))
        self.rejected = sorted(set(self.rejected) | set(other.rejected))
        self.attempt = max(self.attempt, other.attempt)
        self.first_failed_at = min(self.first_failed_at, other.first_failed_at)
        self.not_before = min(self.not_before, other.not_before)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def retry_delay(settings: Settings, attempt: int, rng: random.Random) -> float:
    """Delay before retry ``attempt`` (1-based): base·2^(n-1) capped at the maximum, the
    upper half jittered so that the alerts of one outage do not all come back at once."""
    full = min(settings.notify_retry_backoff * 2.0 ** min(attempt - 1, 40),
               settings.notify_retry_backoff_max)
    return full / 2 + rng.uniform(0, full / 2)


class ParkedTracker:
    """Alerts this worker parked or is retrying, per channel, for the parked gauges.

    Each entry remembers the partition of ``appeals.notify.retry`` its record was read from.
    After a rebalance the worker keeps only the entries of the partitions it still owns
    (:meth:`keep_partitions`): the new owner of a partition reads its records again and
    exports them from then on. Kept until ``forget_after``, an entry whose partition had moved
    was counted by both workers, and its age, still growing on the old owner, passed
    ``AppealsSupervisorAlertsStuck``'s 30 minutes for an alert the new owner had delivered.
    A record can still move on without this worker hearing of it (delivered from another
    record of the same alert), so an entry not seen again within ``forget_after`` seconds (more
    than a retry agent can hold a record) is forgotten as well.
    """

    def __init__(self, forget_after: float, clock: Callable[[], float] = time.time) -> None:
        self.forget_after = forget_after
        self._clock = clock
        # alert_id -> (pending channels, first failed at, last seen, retry partition or None)
        self._entries: dict[str, tuple[frozenset[str], float, float, int | None]] = {}
        self._owned: frozenset[int] | None = None  # retry partitions owned; None: not known

    def seen(self, alert_id: str, channels: Iterable[str], first_failed_at: float,
             partition: int | None = None) -> None:
        """The alert is parked with ``channels`` pending, its record on ``partition`` (None:
        not known, kept whatever the assignment). A record of a partition this worker no
        longer owns (the end of a batch that outlived its partition's revocation) is left to
        the partition's new owner."""
        pending = frozenset(channels)
        owned = partition is None or self._owned is None or partition in self._owned
        if pending and owned:
            self._entries[alert_id] = (pending, first_failed_at, self._clock(), partition)
        else:
            self._entries.pop(alert_id, None)

    def resolved(self, alert_id: str) -> None:
        self._entries.pop(alert_id, None)

    def keep_partitions(self, partitions: Iterable[int]) -> None:
        """After a rebalance: ``partitions`` are the retry partitions this worker now owns
        (all of them, not only the new ones); forget the entries of every other one."""
        self._owned = frozenset(partitions)
        for alert_id in [a for a, (_, _, _, p) in self._entries.items()
                         if p is not None and p not in self._owned]:
            del self._entries[alert_id]

    def _live(self) -> list[tuple[frozenset[str], float]]:
        horizon = self._clock() - self.forget_after
        for alert_id in [a for a, (_, _, seen, _) in self._entries.items() if seen < horizon]:
            del self._entries[alert_id]
        return [(channels, first) for channels, first, _, _ in self._entries.values()]

    def count(self, channel: str) -> int:
        return sum(1 for channels, _ in self._live() if channel in channels)

    def oldest_age(self, channel: str) -> float:
        firsts = [first for channels, first in self._live() if channel in channels]
        return max(0.0, self._clock() - min(firsts)) if firsts else 0.0
