"""Keep Faust from committing offsets of records that no stream processed (faust-streaming 0.15).

The loss this prevents was found by the SIGKILL chaos test (``tests/chaos/test_chaos_kill.py``)
and traced in the worker's batches: a restarted worker resumed ~100 records per partition past
the last record its predecessor had processed. Why: while a rebalance or table recovery has
Faust's flow control suspended, every stream *skips* the events already fetched into its
buffer, and acknowledges them as it skips (``Stream._c_aiter``: "ack the filtered out
message"). Those acknowledgements stay in the consumer's ack list after Faust seeks back to the
committed offsets, and the next periodic commit counts them: as soon as the stream has processed
the first re-fetched record, the commit jumps over everything that was skipped. A crash before
the stream catches up loses those records; the pipeline's "nothing lost" rule cannot allow it.

The fix: whenever the consumer seeks partitions back to their committed offsets
(``Consumer.perform_seek``, which Faust calls after every rebalance and recovery, just before
flow resumes), forget the acknowledgements recorded for them. Forgetting an ack can never lose
a record: every offset at or after the committed one is fetched and delivered again after the
seek, and acknowledged again once a stream has really processed it. At worst a commit waits a
little longer.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

log = logging.getLogger(__name__)

_installed = False


def forget_acks(consumer: Any) -> int:
    """Drop the consumer's pending acknowledgements of every partition; returns how many."""
    dropped = 0
    for tp in list(consumer._acked):
        dropped += len(consumer._acked[tp])
        consumer._acked[tp] = []
        consumer._acked_index[tp] = set()
    return dropped


def install() -> None:
    """Wrap ``Consumer.perform_seek`` once per process (safe to call repeatedly)."""
    global _installed
    if _installed:
        return
    from faust.transport.consumer import Consumer

    original = Consumer.perform_seek

    @functools.wraps(original)
    async def perform_seek(self: Any) -> None:
        await original(self)
        dropped = forget_acks(self)
        if dropped:
            log.info("seek to committed offsets: %d acknowledgements of records no stream "
                     "processed were dropped (they are re-read)", dropped)

    cast(Any, Consumer).perform_seek = perform_seek
    _installed = True
