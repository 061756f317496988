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

The fix has two parts. (1) The consumer accepts an acknowledgement only for a record that was
handed to one of our batch bodies (:func:`handed_to_body`, called by
:func:`workers.runtime.batches`); a skipped record's acknowledgement is ignored, so the commit
cannot pass it until the record is read again and processed. Every agent of the pipeline reads
through ``batches``, and values are raw bytes (no decode errors that Faust would acknowledge
for us). (2) Whenever the consumer seeks back to the committed offsets (``perform_seek``), the
acknowledgements recorded so far are forgotten as well. Neither can lose a record: every offset
from the committed one on is fetched again and acknowledged once really processed. At worst a
commit waits a little longer. A first version with (2) alone still lost records in the chaos
test: skips can also happen after the seek (a late rebalance step, an old generation).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource`` of what this module wraps (``ack``, ``perform_seek``) and of
#: the code that reads the private ``_acked``, ``_acked_index`` and ``_gap`` it clears, in the
#: faust-streaming the patch was checked against (docker/constraints.txt). Another release
#: keeps Faust's own acknowledgements until someone compares them and adds its digests.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "faust.transport.consumer:Consumer.ack": frozenset({
        "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f"}),
    "faust.transport.consumer:Consumer.perform_seek": frozenset({
        "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6"}),
    "faust.transport.consumer:Consumer._new_offset": frozenset({
        "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0"}),
    "faust.transport.consumer:Consumer._add_gap": frozenset({
        "4df2573ded7c1c2cde04dc6bde6d4480cb5875ef565256e56966b585ae39b1c1"}),
}
#: Both replacements keep Faust's function as ``__wrapped__``: nothing to save.
_originals: dict[str, Any] = {}
_installed = False


#: The messages handed to a batch body and not yet acknowledged, by identity (the message is
#: kept, so its id cannot be reused meanwhile). By (topic, partition, offset), another copy of
#: a record a batch still worked on (a redelivery a stream skipped) was acknowledged in its
#: place, and the commit could pass the record before the batch's effects were durable
#: (review of session 16).
_handed: dict[int, Any] = {}


def handed_to_body(events: Any) -> None:
    """Mark a batch's records as processed by our code: only these may be acknowledged."""
    if not _installed:  # Faust's own ack: nothing would ever take them out again
        return
    for event in events:
        message = event.message
        _handed[id(message)] = message


def forget_acks(consumer: Any) -> int:
    """Drop the consumer's pending acknowledgements (and gaps) of every partition.

    Gaps are offsets Faust counts as acknowledged; one recorded before the seek is as stale as
    an acknowledgement: the records it spans are read again and must be processed before the
    commit passes them. Returns how many acknowledgements were dropped.
    """
    dropped = 0
    for tp in list(consumer._acked):
        dropped += len(consumer._acked[tp])
        consumer._acked[tp] = []
        consumer._acked_index[tp] = set()
    for gaps in getattr(consumer, "_gap", {}).values():
        gaps.clear()
    return dropped


def install() -> bool:
    """Wrap ``Consumer.perform_seek`` and ``Consumer.ack`` once per process (idempotent);
    returns whether they are wrapped (not on an unchecked Faust)."""
    global _installed
    if _installed:
        return True
    if not source_checked():
        log.warning("faust-streaming's Consumer.ack/perform_seek differ from the checked "
                    "version; keeping Faust's own acknowledgements (a commit can pass records "
                    "no stream processed)")
        return False
    from faust.transport.consumer import Consumer

    original = Consumer.perform_seek

    @functools.wraps(original)
    async def perform_seek(self: Any) -> None:
        await original(self)
        # A batch still at work from before the seek is read again from the committed
        # offsets: its acknowledgements, if it still makes them, must not move the commit
        # past records whose effects it may not have stored (a batch's writes for a revoked
        # partition are skipped). This also drops batches that never acknowledged (stopped
        # or abandoned by a rebalance), which were kept for good.
        _handed.clear()
        dropped = forget_acks(self)
        if dropped:
            log.info("seek to committed offsets: %d acknowledgements of records no stream "
                     "processed were dropped (they are re-read)", dropped)

    cast(Any, Consumer).perform_seek = perform_seek

    original_ack = Consumer.ack

    @functools.wraps(original_ack)
    def ack(self: Any, message: Any) -> bool:
        if _handed.get(id(message)) is not message:
            # Skipped by a stream (flow control, old generation), never processed: not
            # acknowledged, so the commit cannot pass it; the record is read again.
            return False
        del _handed[id(message)]
        return bool(cast(Any, original_ack)(self, message))

    cast(Any, Consumer).ack = ack
    _installed = True
    return True


def source_checked() -> bool:
    """Whether the installed Faust code this module replaces or relies on is the checked one."""
    return not faust_sources.mismatched(KNOWN_SOURCES, _originals)


def installed() -> bool:
    """Whether :func:`install` patched Faust in this process."""
    return _installed
