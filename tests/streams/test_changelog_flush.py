"""Faust's producer-buffer flush waits for every queued table changelog record (changelog_flush).

Faust commits offsets right after this flush; a record still in the buffer then is lost with the
process although the event that wrote it is committed. The tests use Faust's own
``ProducerBuffer`` with a channel whose hand-over to the producer is slow, as when the event
loop is busy with a batch.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from streams import changelog_flush


class _SlowChannel:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.handed_over: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(self.delay)
        self.handed_over.append(fut.n)


def _flush_with(n: int, delay: float) -> list[int]:
    async def main() -> list[int]:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        channel = _SlowChannel(delay)
        try:
            for i in range(n):
                buffer.put(SimpleNamespace(n=i, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
            await asyncio.sleep(0)  # the sender takes the first record out of the queue
            await buffer.flush()
            return list(channel.handed_over)
        finally:
            await buffer.stop()

    return asyncio.run(main())


def test_flush_returns_only_when_every_record_is_handed_over() -> None:
    changelog_flush.install()
    # Each hand-over takes 0.25 s: Faust's own flush gives up after 0.1 s without progress.
    assert _flush_with(3, 0.25) == [0, 1, 2]


def test_flush_of_an_empty_buffer_returns_at_once() -> None:
    changelog_flush.install()
    assert _flush_with(0, 0.25) == []


# -- A record the broker refuses: the commit must not go ahead --------------------------------
#
# aiokafka's flush swallows delivery errors and Faust only logs them (``Topic._on_published``),
# so Faust committed the input offsets and the state change was lost after recovery.


class _Exited(BaseException):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_exit(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(changelog_flush, "_exit", fake_exit, raising=False)


class _AiokafkaLikeChannel:
    """Hands a record over as Faust's topic does with aiokafka: returns the delivery future."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future[Any]] = []

    def get_topic_name(self) -> str:
        return "appeals-sla-state-changelog"

    async def publish_message(self, fut: Any, wait: bool = False) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


class _FakeAiokafka:
    """aiokafka's flush: waits for the batches and swallows their errors; ``fail`` fails them
    right before it returns, so no callback has run when the caller resumes."""

    def __init__(self, channel: _AiokafkaLikeChannel, fail: bool) -> None:
        self.channel = channel
        self.fail = fail

    async def flush(self) -> None:
        for delivery in self.channel.deliveries:
            if self.fail:
                delivery.set_exception(RuntimeError("KafkaTimeoutError: batch expired"))
            else:
                delivery.set_result(None)


def _commit_flush(fail: bool) -> dict[str, Any]:
    """Faust's producer flush before a commit, with one changelog record in the buffer."""
    from faust.transport.drivers.aiokafka import Producer

    async def main() -> dict[str, Any]:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        channel = _AiokafkaLikeChannel()
        producer = SimpleNamespace(buffer=buffer, _producer=_FakeAiokafka(channel, fail),
                                   _transaction_producers={})
        try:
            buffer.put(SimpleNamespace(message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
            await Producer.flush(producer)  # type: ignore[arg-type]
            return {"exited": None, "deliveries": len(channel.deliveries)}
        except _Exited as exc:
            return {"exited": exc.code, "deliveries": len(channel.deliveries)}
        finally:
            for delivery in channel.deliveries:
                if delivery.done() and not delivery.cancelled():
                    delivery.exception()  # retrieved: no "never retrieved" noise
            buffer.__dict__.pop("_appeals_failed", None)  # let the buffer stop quietly
            await buffer.stop()

    return asyncio.run(main())


def test_a_failed_changelog_delivery_ends_the_process_before_the_commit(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    changelog_flush.install()
    _exit_raises(monkeypatch)
    assert _commit_flush(fail=True) == {"exited": 70, "deliveries": 1}
    message = next(r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert "appeals-sla-state-changelog" in message and "batch expired" in message


def test_delivered_changelog_records_let_the_commit_go_ahead(
        monkeypatch: pytest.MonkeyPatch) -> None:
    changelog_flush.install()
    _exit_raises(monkeypatch)
    assert _commit_flush(fail=False) == {"exited": None, "deliveries": 1}


class _RefusingChannel:
    """Fails the record as ``Topic._on_published`` does when the broker refuses its batch."""

    async def publish_message(self, fut: Any, wait: bool = False) -> Any:
        fut.set_exception(RuntimeError("NOT_ENOUGH_REPLICAS"))
        return fut


def test_the_buffer_flush_does_not_return_after_a_failed_delivery(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.types.tuples import FutureMessage, PendingMessage

    changelog_flush.install()
    _exit_raises(monkeypatch)

    async def main() -> int | None:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        message = PendingMessage(channel=_RefusingChannel(), key=b"k", value=b"v",  # type: ignore[arg-type]
                                 partition=None, timestamp=None, headers=None,
                                 key_serializer=None, value_serializer=None, callback=None)
        fut = FutureMessage(message)
        try:
            buffer.put(fut)
            await buffer.flush()
            return None
        except _Exited as exc:
            return exc.code
        finally:
            fut.exception()
            buffer.__dict__.pop("_appeals_failed", None)
            await buffer.stop()

    assert asyncio.run(main()) == 70


def test_a_stop_without_the_delivery_patch_is_not_called_undelivered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With APPEALS_REQUIRE_FAUST_PATCHES=false on a Faust the patch does not fit, every clean
    stop logged "changelog records not delivered": nothing was lost, the patch was off."""
    from streams import app as streams_app

    monkeypatch.setattr(changelog_flush, "_installed", False)
    assert "patch is not installed" in streams_app.unclean_stop_message()
    assert "not delivered" not in streams_app.unclean_stop_message()
    monkeypatch.setattr(changelog_flush, "_installed", True)
    assert "not delivered" in streams_app.unclean_stop_message()
