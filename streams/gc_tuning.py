"""The worker's garbage-collector settings: what is loaded at start-up is never scanned again.

Why: a worker holds millions of long-lived objects (the classifier's vocabulary, the per-token
lemma and n-gram caches, the SLA table), and CPython's cyclic collector walks all of them on
every full collection, with the event loop stopped. With the default thresholds (700, 10, 10)
that happened often enough to cost a quarter of the worker's CPU and to set the latency tail
(``appeals bench --events 5000 --skip-scaleout --latency-seconds 30``: 0.742 ms of CPU per appeal
and p99 272 ms with CPython's settings, ``--set gc_threshold=python``; 0.554 ms and p99 125 ms
with ``gc.freeze()`` after start-up and thresholds 50000,50,1000, the default). Reference
counting still frees almost everything at once; the collector is only needed for cycles, which
the larger first generation still catches.
"""

from __future__ import annotations

import gc
import logging

from streams.settings import Settings, gc_thresholds

log = logging.getLogger(__name__)


def tune(settings: Settings) -> tuple[int, int, int] | None:
    """Freeze what start-up allocated and apply ``APPEALS_GC_THRESHOLD``; returns the thresholds
    (None: ``python``, the collector left as CPython sets it)."""
    thresholds = gc_thresholds(settings.gc_threshold)
    if thresholds is None:
        log.info("GC: left as CPython sets it (%s)", ",".join(map(str, gc.get_threshold())))
        return None
    gc.collect()
    gc.freeze()  # start-up objects move to a generation the collector never walks
    gc.set_threshold(*thresholds)
    log.info("GC: %d start-up objects frozen, thresholds %s", gc.get_freeze_count(),
             ",".join(map(str, thresholds)))
    return thresholds
