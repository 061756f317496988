"""A failed end-offset probe is tried again, then stops recovery (streams.end_offsets).

It used to hand recovery the broker's figures, the ones known to be short on the embedded
broker: the table recovered without its newest states and only a warning said so.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import end_offsets


@pytest.fixture
def highwaters(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The patched ``_highwaters`` over a broker that reports every end as 1 (short)."""
    async def reported(self: Any, partitions: list[str]) -> dict[str, int]:
        return {p: 1 for p in partitions}

    monkeypatch.setattr(AIOKafkaConsumerThread, "_highwaters", reported)
    monkeypatch.setattr(end_offsets, "_installed", False)
    # The stand-in is not Faust's checked source: wrap it all the same.
    monkeypatch.setattr(end_offsets, "source_checked", lambda: True)
    monkeypatch.setattr(end_offsets, "PROBE_RETRY_PAUSE_S", 0.0, raising=False)
    monkeypatch.setattr(end_offsets, "_probe_consumer", lambda thread: object())
    end_offsets.install()

    def run(verify: bool = True) -> Any:
        thread = SimpleNamespace(app=SimpleNamespace(),
                                 consumer=SimpleNamespace(in_transaction=False))
        setattr(thread.app, end_offsets._ATTR, verify)
        return asyncio.run(AIOKafkaConsumerThread._highwaters(thread, ["changelog-0"]))

    return run


def _probe_answers(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[Any]:
    calls: list[Any] = []

    async def probe(consumer: Any, reported: Any) -> Any:
        calls.append(consumer)
        answer = answers[len(calls) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(end_offsets, "true_end_offsets", probe)
    return calls


def test_a_probe_that_never_answers_stops_recovery(highwaters: Any,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    calls = _probe_answers(monkeypatch, [TimeoutError("no fetch answer for 1 partitions")]
                           * end_offsets.PROBE_ATTEMPTS)
    with caplog.at_level(logging.WARNING, logger="streams.end_offsets"), \
            pytest.raises(end_offsets.EndOffsetsUnverified) as exc:
        highwaters()
    assert len(calls) == end_offsets.PROBE_ATTEMPTS
    assert len({id(c) for c in calls}) == len(calls)  # a new probe consumer each time
    message = str(exc.value)
    assert "TimeoutError: no fetch answer" in message
    assert "APPEALS_VERIFY_END_OFFSETS=0" in message
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == end_offsets.PROBE_ATTEMPTS - 1
    assert any(r.levelno == logging.ERROR and "recovery stopped" in r.getMessage()
               for r in caplog.records)


def test_a_probe_that_answers_on_a_later_attempt_is_used(highwaters: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _probe_answers(monkeypatch, [TimeoutError("slow"), {"changelog-0": 5}])
    assert highwaters() == {"changelog-0": 5}
    assert len(calls) == 2


def test_the_check_switched_off_uses_the_brokers_figures(highwaters: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _probe_answers(monkeypatch, [])
    assert highwaters(verify=False) == {"changelog-0": 1}
    assert calls == []


def test_no_probe_is_made_when_every_changelog_partition_is_empty() -> None:
    """A first start (every end offset 0) needs no probe: one created anyway was never
    started nor closed, and aiokafka logged "Unclosed AIOKafkaConsumer" at ERROR in every
    fresh worker's log (review of session 16)."""
    made: list[int] = []

    def make() -> Any:
        made.append(1)
        return object()

    reported = {"changelog-0": 0, "changelog-1": None}
    assert asyncio.run(end_offsets.verified_end_offsets(make, reported)) == reported
    assert made == []
