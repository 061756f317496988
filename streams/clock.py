"""The SLA clock: wall time, optionally sped up so a one-minute demo spans weeks of deadlines.

Every process of one deployment must agree on the clock, so its two parameters (scale and epoch)
come from settings, not from each process's start time. With scale 1 it is the wall clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class SlaClock:
    scale: float = 1.0
    epoch: float = 0.0

    def now(self) -> float:
        """SLA-clock time as Unix seconds."""
        if self.scale == 1.0:
            return time.time()
        return self.epoch + (time.time() - self.epoch) * self.scale

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def wall_time_of(self, sla_ts: float) -> float:
        """The wall-clock Unix time at which the SLA clock reads ``sla_ts``."""
        if self.scale == 1.0:
            return sla_ts
        return self.epoch + (sla_ts - self.epoch) / self.scale

    def sla_time_of(self, wall_ts: float) -> float:
        """The SLA-clock time (Unix seconds) at the wall-clock Unix time ``wall_ts``: a Kafka
        timestamp on the SLA clock (the inverse of :meth:`wall_time_of`)."""
        if self.scale == 1.0:
            return wall_ts
        return self.epoch + (wall_ts - self.epoch) * self.scale
