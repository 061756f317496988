"""True partition end offsets for table recovery, where the broker reports them short.

Why: Faust recovers a table by reading its changelog up to the partition's end offset as the
broker reports it (ListOffsets, "latest"). The embedded broker (Tansu) answers that with the
*last batch's base offset + 1* instead of the offset after the batch's last record (measured:
a batch at offsets 0-4 is reported as end 1; a single record at 5 as 6). Recovery then stops
after the first record of the changelog's last batch, and the records after it sit in Faust's
recovery buffer and never reach the table. After a SIGKILL, the SLA table lost its newest states
that way (answered appeals were tracked as still running; found by ``tests/chaos``).

A fetch response carries the correct high watermark, so each partition the broker reports as
non-empty is probed with one fetch from its reported last offset, and the larger of the two
figures is used. On Apache Kafka the two agree and the probe is one cheap fetch per changelog
partition per recovery; ``APPEALS_VERIFY_END_OFFSETS=0`` turns it off.

A probe that fails (a slow broker, a timeout) is tried again, :data:`PROBE_ATTEMPTS` times in
all with a warning each time, and then recovery fails with :class:`EndOffsetsUnverified`: the
broker's figures are the ones known to be short, and recovering on them lost the newest states
without a word (the probe used to fall back to them). The worker stops with the error in its
log; once the broker answers, a restart recovers in full.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

from streams import faust_sources

log = logging.getLogger(__name__)

#: sha256 of ``inspect.getsource`` of the wrapped ``_highwaters`` and of the two helpers the
#: probe consumer is built with, in the checked faust-streaming.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._highwaters": frozenset({
        "a7f4f97d9f32aca2777713e22671d70eae4b3ae51541bb09a90448ce83acefce"}),
    "faust.transport.drivers.aiokafka:server_list": frozenset({
        "5a13d9708b3ced16569c1626e636254af9a8f7420feb23099ad26c991e01f342"}),
    "faust.transport.drivers.aiokafka:credentials_to_aiokafka_auth": frozenset({
        "364c9c9c68523c509239799c4ece511022cc10e32c06e53a204716861c9553f7"}),
}
#: The replacement keeps Faust's function as ``__wrapped__``: nothing to save.
_originals: dict[str, Any] = {}
_ATTR = "_appeals_verify_end_offsets"
PROBE_TIMEOUT_S = 10.0
#: Probes of one recovery's end offsets before it fails, and the pause after a failed one (s,
#: growing with each attempt).
PROBE_ATTEMPTS = 3
PROBE_RETRY_PAUSE_S = 1.0
_installed = False


class EndOffsetsUnverified(RuntimeError):
    """The end offsets table recovery would read up to could not be verified."""


def configure(app: Any, enabled: bool) -> None:
    """Record the choice on the app; the patched consumer thread reads it from there (Faust's
    own ``_highwaters`` is left alone while no app of the process turned the probe on)."""
    setattr(app, _ATTR, enabled)
    if enabled:
        install()


def install() -> bool:
    """Wrap ``AIOKafkaConsumerThread._highwaters`` once per process (idempotent); returns
    whether it is wrapped (not on an unchecked Faust)."""
    global _installed
    if _installed:
        return True
    if not source_checked():
        log.warning("faust-streaming's AIOKafkaConsumerThread._highwaters differs from the "
                    "checked version; table recovery reads up to the broker's own end offsets "
                    "(short on the embedded broker: newest states missed)")
        return False
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._highwaters

    @functools.wraps(original)
    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int | None]:
        reported = dict(await original(self, partitions))
        if not getattr(self.app, _ATTR, False) or self.consumer.in_transaction:
            return reported
        return await verified_end_offsets(lambda: _probe_consumer(self), reported)

    cast(Any, AIOKafkaConsumerThread)._highwaters = _highwaters
    _installed = True
    return True


def source_checked() -> bool:
    """Whether the installed Faust code this module replaces or relies on is the checked one."""
    return not faust_sources.mismatched(KNOWN_SOURCES, _originals)


def installed() -> bool:
    """Whether :func:`install` patched Faust in this process."""
    return _installed


async def verified_end_offsets(make_probe: Callable[[], Any],
                               reported: Mapping[Any, int | None]) -> dict[Any, int | None]:
    """:func:`true_end_offsets` with a new probe consumer per attempt, :data:`PROBE_ATTEMPTS`
    attempts; :class:`EndOffsetsUnverified` when none answers.

    Not the broker's figures instead: they are the possibly short ones this module exists for,
    and a table recovered up to them silently misses its newest states.
    """
    if not any(reported.values()):
        # Nothing to probe (every changelog partition empty, as on a first start): a probe
        # created anyway was never started nor closed, and aiokafka logged "Unclosed
        # AIOKafkaConsumer" at ERROR in every fresh worker's log (review of session 16).
        return dict(reported)
    problem = ""
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        try:
            return await true_end_offsets(make_probe(), reported)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if attempt == PROBE_ATTEMPTS:
                break
            pause = PROBE_RETRY_PAUSE_S * attempt
            log.warning("Could not verify the end offsets of %d changelog partitions (%s); "
                        "trying again in %g s (attempt %d of %d)", len(reported), problem,
                        pause, attempt + 1, PROBE_ATTEMPTS)
            await asyncio.sleep(pause)
    message = (
        f"table recovery stopped: the end offsets of {len(reported)} changelog partitions "
        f"could not be verified in {PROBE_ATTEMPTS} attempts ({problem}). The broker's own "
        "figures can be short (the embedded broker's are), and a table recovered up to them "
        "misses its newest states. Check that the broker answers fetches, then restart the "
        "worker; on Apache Kafka, whose figures are right, APPEALS_VERIFY_END_OFFSETS=0 "
        "skips the check")
    log.error("%s", message)
    raise EndOffsetsUnverified(message)


def _probe_consumer(thread: Any) -> Any:
    return probe_consumer(thread.app, thread.transport)


def probe_consumer(app: Any, transport: Any) -> Any:
    """A group-less consumer with the worker's connection settings (TLS, SASL), unstarted."""
    import aiokafka
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list

    conf = app.conf
    return aiokafka.AIOKafkaConsumer(
        bootstrap_servers=server_list(transport.url, transport.default_port),
        client_id=f"{conf.broker_client_id}-end-offsets",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(conf.broker_request_timeout * 1000.0),
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=64 * 1024,  # only the high watermark is wanted
        **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
    )


async def true_end_offsets(probe: Any, reported: Mapping[Any, int | None],
                           timeout: float = PROBE_TIMEOUT_S) -> dict[Any, int | None]:
    """``reported`` raised to the high watermark a fetch from each last offset shows.

    ``probe`` is an unstarted ``AIOKafkaConsumer`` without a group; it is started and stopped
    here. Partitions reported empty (end 0) are taken as empty: the quirk never reports a
    non-empty partition below 1.
    """
    from aiokafka import TopicPartition

    out: dict[Any, int | None] = dict(reported)
    todo = {TopicPartition(tp.topic, tp.partition): end for tp, end in reported.items() if end}
    if not todo:
        return out
    original_key = {TopicPartition(tp.topic, tp.partition): tp for tp in reported}
    await probe.start()
    try:
        for tp, high in (await _fetched_high_watermarks(probe, todo, timeout)).items():
            if high > todo[tp]:
                out[original_key[tp]] = high
        raised = {tp: (end, out[original_key[tp]]) for tp, end in todo.items()
                  if out[original_key[tp]] != end}
        if raised:
            log.info("Broker reported %d of %d end offsets short; using the fetched high "
                     "watermarks (e.g. %s)", len(raised), len(todo),
                     ", ".join(f"{tp.topic}[{tp.partition}] {a}->{b}"
                               for tp, (a, b) in list(raised.items())[:3]))
        return out
    finally:
        await probe.stop()


async def _fetched_high_watermarks(probe: Any, todo: Mapping[Any, int],
                                   timeout: float) -> dict[Any, int]:
    """The high watermark one fetch from ``end - 1`` of each partition shows (``todo``: aiokafka
    partitions to a reported end above 0; ``probe`` started, assigned here)."""
    probe.assign(list(todo))
    for tp, end in todo.items():
        probe.seek(tp, end - 1)
    pending = set(todo)
    found: dict[Any, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError(f"no fetch answer for {len(pending)} partitions")
        await probe.getmany(*pending, timeout_ms=int(min(left, 1.0) * 1000))
        for tp in list(pending):
            high = probe.highwater(tp)
            if high is not None:
                pending.discard(tp)
                found[tp] = high
    return found


async def current_end_offsets(probe: Any, partitions: Collection[Any],
                              timeout: float = PROBE_TIMEOUT_S) -> dict[Any, int]:
    """End offsets of ``partitions`` (Faust TPs) now: the broker's (ListOffsets), raised to the
    high watermark a fetch shows (the broker's are short on the embedded broker).

    For the lag of partitions the worker does not fetch (Faust pauses a stream's partitions
    while its buffer is full): a consumer's own high watermark comes with its fetches and stands
    still meanwhile. ``probe`` is an unstarted group-less consumer, started and stopped here;
    any error (a slow broker, :class:`TimeoutError`) goes to the caller.
    """
    ends, _ = await current_offsets(probe, partitions, timeout, starts=False)
    return ends


async def current_offsets(probe: Any, partitions: Collection[Any],
                          timeout: float = PROBE_TIMEOUT_S, starts: bool = True
                          ) -> tuple[dict[Any, int], dict[Any, int]]:
    """(end offsets as :func:`current_end_offsets`, log-start offsets) of ``partitions``.

    The log start is where a group without a committed offset begins (the workers reset to
    the earliest record): the lag monitor counts such a partition's backlog from there, not
    from offset 0, which retention may have deleted long ago. A broker that cannot list them
    leaves them out (the ends still count); ``starts=False`` does not ask.
    """
    from aiokafka import TopicPartition

    keys = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions}
    if not keys:
        return {}, {}
    await probe.start()
    try:
        first: dict[Any, int] = {}
        if starts:
            try:
                listed_starts = await asyncio.wait_for(
                    probe.beginning_offsets(list(keys)), timeout)
            except Exception as exc:
                log.debug("log-start offsets not listed (%s)", type(exc).__name__)
            else:
                first = {keys[tp]: int(start) for tp, start in listed_starts.items()
                         if tp in keys and start is not None}
        listed = await asyncio.wait_for(probe.end_offsets(list(keys)), timeout)
        ends = {tp: int(listed.get(tp) or 0) for tp in keys}
        todo = {tp: end for tp, end in ends.items() if end > 0}
        if todo:
            for tp, high in (await _fetched_high_watermarks(probe, todo, timeout)).items():
                ends[tp] = max(ends[tp], high)
        return {keys[tp]: end for tp, end in ends.items()}, first
    finally:
        await probe.stop()
