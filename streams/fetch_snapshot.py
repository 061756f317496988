"""Each fetch asks for the partitions that were active when it was made (faust-streaming 0.15).

Why (found by ``tests/chaos/test_chaos_kill.py``, traced with a fetch log): Faust's fetcher
hands its *live* set of active partitions to the consumer thread, where aiokafka's
``fetched_records(partitions, timeout)`` waits up to a second for data and then drains the
buffered records of those partitions. Two things then go wrong together:

* Faust changes that set while the request waits: at the end of table recovery it pauses the
  changelog partitions, which leaves the set *empty* until the stream partitions are resumed;
* aiokafka treats an empty set as "no filter" (``if partitions and tp not in partitions``) and
  drains every partition it has records for, advancing the consumer's position past them.

Faust's own loop then drops those records (their partitions are not active), without a seek.
Measured on a restarted chaos worker: a request from the recovery returned the whole backlog of
every stream partition from the committed offsets (e.g. ``routed[3]`` 850-983) while the stream
partitions were still paused; the worker then went on after the backlog and never processed it.

Handing the thread a frozen copy makes a request drain what was asked for when it was made, and
nothing else; records of partitions resumed later wait in aiokafka's buffer for the next request.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource`` of the wrapped ``_getmany`` and of the consumer thread's
#: ``getmany`` it hands the partitions to, in the checked faust-streaming.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "faust.transport.consumer:ThreadDelegateConsumer._getmany": frozenset({
        "f9d47aa9010b5ff2b874ba65f927871f3612718d8a9db00b58601554a35236c4"}),
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.getmany": frozenset({
        "26fc5fc9f3b667e104f9657dbc49da3b3b6620d40cc9856761cbaf4da2172557"}),
}
#: The replacement keeps Faust's function as ``__wrapped__``: nothing to save.
_originals: dict[str, Any] = {}
_installed = False


def install() -> bool:
    """Wrap ``ThreadDelegateConsumer._getmany`` once per process (idempotent); returns whether
    it is wrapped (not on an unchecked Faust)."""
    global _installed
    if _installed:
        return True
    if not source_checked():
        log.warning("faust-streaming's ThreadDelegateConsumer._getmany differs from the checked "
                    "version; keeping Faust's own fetch (records can be skipped after recovery)")
        return False
    from faust.transport.consumer import ThreadDelegateConsumer

    original = ThreadDelegateConsumer._getmany

    @functools.wraps(original)
    async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        if active_partitions is None:  # a client-only app: every assigned partition
            return await original(self, None, timeout)
        snapshot = frozenset(active_partitions)
        if not snapshot:  # never "no filter": aiokafka would drain every partition
            return {}
        return await original(self, cast(Any, snapshot), timeout)

    cast(Any, ThreadDelegateConsumer)._getmany = _getmany
    _installed = True
    return True


def source_checked() -> bool:
    """Whether the installed Faust code this module replaces or relies on is the checked one."""
    return not faust_sources.mismatched(KNOWN_SOURCES, _originals)


def installed() -> bool:
    """Whether :func:`install` patched Faust in this process."""
    return _installed
