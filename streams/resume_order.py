"""Seek before resuming: streams restart after a rebalance without losing fetched records.

Why (faust-streaming 0.15.3, found by ``tests/chaos/test_chaos_kill.py``): when table recovery
ends, Faust's ``Recovery.on_recovery_completed`` (and ``_resume_streams`` for apps without
tables) does, in this order,

1. ``consumer.resume_partitions(stream partitions)``: the fetcher starts reading them at once
   (flow control is already open since recovery began);
2. ``await consumer.perform_seek()``: seeks every partition back to its committed offset and
   resets Faust's read offsets (a Kafka round trip; 0.2 s measured on a loaded machine);
3. ``app.flow_control.resume()``: which *clears every stream buffer*.

Records fetched during 2 reach the stream buffers and are then cleared by 3, and the seek does
not bring them back when the fetch that read them ran after the seek: the consumer's position
is already past them. Records fetched before the seek and delivered after it move Faust's read
offset ahead, so the re-fetched ones are then dropped as already read (``DROPPED MESSAGE ROFF``).
Either way the worker goes on with later records while those are never processed in its
lifetime. Seen in the chaos test: a restarted worker left 83 authority answers of one partition
and 504 alerts of another unprocessed, with the consumer's position at the end of both.

The replacement keeps every step and changes the order: seek while the stream partitions are
still paused, clear the buffers, and only then resume fetching them. Nothing is fetched for a
stream partition between the seek and the clear, so nothing is lost to either. (That a fetch
made during the seek cannot drain the paused partitions either is :mod:`streams.fetch_snapshot`.)
Partitions with nothing committed are also sought to their start, which aiokafka's seek to the
committed offsets skips. The patched
methods are checked against the sources they were written for (like :mod:`streams.fastpath`);
another faust-streaming release keeps its own order, with a warning, until someone compares.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource`` of the two methods in faust-streaming 0.15.3.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "on_recovery_completed": frozenset({
        "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    }),
    "_resume_streams": frozenset({
        "d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e",
    }),
}

_originals: dict[str, Any] = {}


def source_digest(name: str) -> str | None:
    """Digest of Faust's own ``Recovery.<name>`` (also after :func:`install` replaced it); None
    on a release without it."""

    def original() -> Any:
        from faust.tables.recovery import Recovery

        return _originals.get(name) or getattr(Recovery, name)

    return faust_sources.digest_or_none(original)


async def _seek_then_resume(recovery: Any, assignment: set[Any]) -> None:
    """Steps 2, 3, 1 of the module docstring, in that order, then Faust's remaining steps."""
    app = recovery.app
    consumer = app.consumer
    if assignment:
        recovery.log.info("Seek stream partitions to committed offsets.")
        await recovery._wait(consumer.perform_seek(),
                             timeout=app.conf.broker_request_timeout)
        await _seek_uncommitted_to_start(recovery, assignment)
    recovery.completed.set()
    app.flow_control.resume()  # clears the stream buffers: nothing new can be in them
    consumer.resume_partitions({tp for tp in assignment if not recovery._is_changelog_tp(tp)})
    consumer.resume_flow()
    await cast(Any, app)._fetcher.maybe_start()


async def _seek_uncommitted_to_start(recovery: Any, assignment: set[Any]) -> None:
    """Partitions without a committed offset restart from their first record, too.

    aiokafka's ``seek_to_committed`` leaves a partition where it is when nothing (or 0) was
    committed for it, so a fetch made before the seek (records Faust then dropped) would have
    moved its position for good. With ``auto_offset_reset=earliest`` the committed position of
    such a partition *is* its start.
    """
    app = recovery.app
    if app.conf.consumer_auto_offset_reset != "earliest":
        return
    consumer = app.consumer
    acks_enabled_for = app.topics.acks_enabled_for
    uncommitted = {tp: 0 for tp in assignment
                   if not recovery._is_changelog_tp(tp) and acks_enabled_for(tp.topic)
                   and consumer._committed_offset.get(tp) is None}
    if uncommitted:
        await consumer.seek_wait(uncommitted)


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """Faust's ``Recovery.on_recovery_completed`` with the seek before the resume."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(table.on_recovery_completed(
            self.actives_for_table[table], self.standbys_for_table[table]))
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id "
                         f"{self.app.consumer_generation_id} param {generation_id}")
        return
    await _seek_then_resume(self, assignment)
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    """Faust's ``Recovery._resume_streams`` (apps without tables) with the same order."""
    app = self.app
    consumer = app.consumer
    await app.on_rebalance_complete.send()
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    if not assignment:
        self.log.info("Resuming streams with empty assignment")
    self.log.info("Resuming flow...")
    await _seek_then_resume(self, assignment)
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


_REPLACEMENTS = {"on_recovery_completed": on_recovery_completed,
                 "_resume_streams": _resume_streams}


def installed() -> bool:
    """Whether :func:`install` replaced Faust's methods in this process."""
    return bool(_originals)


def install(enabled: bool = True) -> bool:
    """Replace both methods once per process; returns whether the seek-first order is active."""
    if not enabled:
        return False
    if _originals:
        return True
    from faust.tables.recovery import Recovery

    unknown = [name for name in _REPLACEMENTS
               if source_digest(name) not in KNOWN_SOURCES[name]]
    if unknown:
        log.warning("faust-streaming's Recovery.%s differs from the checked version; keeping "
                    "Faust's own resume order (records fetched while it seeks can be lost)",
                    ", ".join(unknown))
        return False
    for name, replacement in _REPLACEMENTS.items():
        _originals[name] = getattr(Recovery, name)
        setattr(cast(Any, Recovery), name, replacement)
    return True
