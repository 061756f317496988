"""The consumer's fetch wait, which Faust hard-codes (faust-streaming 0.15: 1,500 ms).

Why it matters: a fetch waits up to ``fetch_max_wait_ms`` for data. Apache Kafka answers a
waiting fetch as soon as data arrives, so the setting only bounds idle polling there. The
embedded broker (Tansu) does not: it answers when the wait is over, so every record arriving at
an idle partition waited up to 1.5 s before any agent saw it. Measured (``appeals bench``,
1,000 appeals/s): intake → routed p50 428 ms, p99 2.0 s with 1,500 ms (``--set
fetch_max_wait=1.5``), p50 86 ms, p99 385 ms with 100 ms. ``APPEALS_FETCH_MAX_WAIT`` sets
it. The default, 50 ms, was chosen on 2026-11-26 from 60 s latency runs after the later
batching changes: p99 83 / 90 / 92 ms with 50 ms against 102 / 105 / 105 ms with 100 ms; 30 ms
gave 117 ms, because every fetch also costs the embedded broker more as partitions fill
(``python -m benchmarks.broker_fetch``), so more frequent fetches load it. On a real Kafka
cluster the default costs at most twenty empty fetches a second per idle connection.
"""

from __future__ import annotations

import functools
from typing import Any, cast

_ATTR = "_appeals_fetch_max_wait_ms"
_installed = False


def configure(app: Any, fetch_max_wait_s: float) -> None:
    """Record the wait on the app; the patched consumer factory reads it from there."""
    setattr(app, _ATTR, max(1, int(fetch_max_wait_s * 1000)))
    install()


def install() -> None:
    global _installed
    if _installed:
        return
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._create_consumer

    @functools.wraps(original)
    def _create_consumer(self: Any, loop: Any) -> Any:
        consumer = original(self, loop)
        wait_ms = getattr(self.app, _ATTR, None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = wait_ms  # read by aiokafka when it starts its fetcher
        return consumer

    cast(Any, AIOKafkaConsumerThread)._create_consumer = _create_consumer
    _installed = True
