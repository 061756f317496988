"""The demo's drain waits until every registered appeal is routed.

An appeal sent to triage counts once in ``triage`` and, once decided, again in ``routed``; the
drain stopped at ``routed + triage >= registered``, so up to ``triage`` appeals early, and the
final summary showed appeals as never routed that reached appeals.routed moments later (review:
registered 29,360, routed 28,993, triage 909). The drain runs here on a stand-in producer whose
flushes stand for the time the workers take: the last decided appeal is routed on the third.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.clock import SlaClock
from streams.settings import Settings
from workers.demo import runner


class Producer:
    def __init__(self, tally: runner.Tally, route_on_flush: int | None) -> None:
        self.tally = tally
        self.route_on_flush = route_on_flush
        self.flushes = 0

    async def send(self, *_args: object, **_kwargs: object) -> None:
        pass

    async def flush(self) -> None:
        self.flushes += 1
        if self.flushes == self.route_on_flush:
            self.tally.routed += 1


def _drain(monkeypatch: pytest.MonkeyPatch, route_on_flush: int | None) -> runner.Tally:
    # Two appeals: one routed straight away, one sent to triage and decided, not routed yet.
    tally = runner.Tally(sent=2, registered=2, routed=1, triage=1, triage_decided=1)
    at_summary: list[tuple[int, int]] = []
    monkeypatch.setattr(runner, "_print_final",
                        lambda t, *_: at_summary.append((t.registered, t.routed)))
    monkeypatch.setattr(runner, "DRAIN_SECONDS", 1.0, raising=False)
    stop = asyncio.Event()
    stop.set()  # the run is over: straight to the drain
    settings = Settings.load({})
    opts = runner.DemoOptions(duration=1.0)
    rc = asyncio.run(runner._feed(settings, opts, [], Producer(tally, route_on_flush), tally,
                                  stop, SlaClock(settings.time_scale, time.time())))
    assert rc == 0
    assert len(at_summary) == 1
    return tally


def test_the_drain_waits_for_the_decided_appeal_to_be_routed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tally = _drain(monkeypatch, route_on_flush=3)
    assert (tally.registered, tally.routed) == (2, 2)
    assert "not routed yet" not in capsys.readouterr().out


def test_a_drain_that_runs_out_of_time_says_how_many_are_not_routed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tally = _drain(monkeypatch, route_on_flush=None)
    assert tally.routed == 1
    out = capsys.readouterr().out
    assert "1 registered appeal(s) not routed yet" in out, out


def test_drained_needs_every_decision_made_and_sent() -> None:
    done = runner.Tally(sent=3, registered=3, routed=3, triage=1, triage_decided=1)
    assert runner.drained(done, set())
    assert not runner.drained(done, {7})  # a decision scheduled, not sent
    done.to_decide.append(("a-1", "roads"))  # one read from triage, not decided
    assert not runner.drained(done, set())
    assert not runner.drained(runner.Tally(sent=3, registered=2, routed=2), set())
