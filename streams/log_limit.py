"""At most one log line per kind of event per interval, counting the ones left out.

Why: an event that repeats with the traffic (a malformed HTTP request, an appeal from a region
without routing rules) logged once per occurrence floods the log at the rate of the traffic
and buries everything else; its count belongs in a metric, the log needs one line now and then
saying it goes on. Shared by the HTTP servers' error filter (:mod:`streams.http_logging`) and
the router (:mod:`workers.routing.router`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

#: Seconds between two lines of one kind; the ones in between are counted, not written.
LOG_INTERVAL_S = 60.0


class LogLimiter:
    """Decides, per key, whether a line may be written now (thread-safe).

    ``max_keys`` bounds the memory a stream of distinct keys can take: past it the oldest
    keys are forgotten (their next line is written at once).
    """

    def __init__(self, interval: float = LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 1024) -> None:
        self.interval, self.clock, self.max_keys = interval, clock, max_keys
        self._last: dict[Hashable, float] = {}
        self._skipped: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable = None) -> int | None:
        """None: leave this line out (counted). Else write it, noting the returned number of
        lines of ``key`` left out since the last one written. A limiter of one condition (Redis
        down for intake's dedupe) needs no key."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return None
            if last is None and len(self._last) >= self.max_keys:
                oldest = next(iter(self._last))
                del self._last[oldest]
                self._skipped.pop(oldest, None)
            self._last.pop(key, None)
            self._last[key] = now  # re-inserted: the dict stays in order of the last line
            return self._skipped.pop(key, 0)
