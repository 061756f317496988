"""``appeals demo --time-scale 1e9`` hung two minutes, then said the workers did not come up.

In fact they were up: the SLA clock had passed the last year events may carry (MAX_YEAR) and
the probe appeal was dead-lettered as invalid_value. The option is now bounded, and a probe
dead-lettered while the demo waits stops the wait at once, naming the reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from streams.settings import Settings
from tests.cli.cli_run import run
from workers.demo import runner


def test_a_time_scale_past_the_last_year_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started: list[Any] = []
    monkeypatch.setattr(runner, "run_demo", lambda opts: started.append(opts) or 0)
    rc, err = run(["demo", "--time-scale", "1e9"], capsys)
    assert (rc, started) == (2, [])
    assert "--time-scale" in err and "must be at most" in err, err
    assert len(err.strip().splitlines()) == 1


def test_the_default_time_scale_and_the_bound_itself_are_accepted(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started: list[Any] = []
    monkeypatch.setattr(runner, "run_demo", lambda opts: started.append(opts) or 0)
    limit = runner.max_time_scale(time.time())
    assert limit > 3 * 86400  # room for more than the default
    assert run(["demo", "--duration", "1"], capsys)[0] == 0
    assert run(["demo", "--time-scale", f"{limit * 0.99:.6g}"], capsys)[0] == 0
    assert [o.time_scale for o in started] == [86400.0, pytest.approx(limit * 0.99, rel=1e-5)]


class Producer:
    async def send_and_wait(self, *_args: object) -> None:
        pass


class Workers:
    """Workers that run and never route anything."""

    def __init__(self) -> None:
        self.procs: list[Any] = []

    def __iter__(self) -> Any:
        return iter(self.procs)

    def exited(self) -> None:
        return None


def test_a_dead_lettered_probe_stops_the_wait_with_its_reason(
        capsys: pytest.CaptureFixture[str]) -> None:
    tally = runner.Tally()

    async def wait() -> bool:
        async def dead_letter() -> None:
            await asyncio.sleep(0.3)
            tally.deadletter["invalid_value"] += 1
            tally.first_deadletter = ("sla", "invalid_value", "registered_at: year 2100")

        letter = asyncio.create_task(dead_letter())
        ready = await runner._wait_ready(Producer(), Settings.load({}), tally, asyncio.Event(),
                                         Workers(), timeout=5.0)  # type: ignore[arg-type]
        await letter
        return ready

    assert asyncio.run(wait()) is False
    err = capsys.readouterr().err
    assert "dead-lettered" in err and "invalid_value" in err, err
    assert "did not come up" not in err


def test_a_time_scale_that_ages_an_appeal_past_intake_s_limit_during_start_up_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """At 1.2e7 (under the bound of the years events may carry) 365 SLA days passed in 2.6 s,
    and the probe, sent while the workers started, was dead-lettered as submitted too long
    ago (invalid_value). The bound is APPEALS_INTAKE_MAX_AGE over the start-up wait."""
    started: list[Any] = []
    monkeypatch.setattr(runner, "run_demo", lambda opts: started.append(opts) or 0)
    monkeypatch.delenv("APPEALS_INTAKE_MAX_AGE", raising=False)
    rc, err = run(["demo", "--time-scale", "1.2e7"], capsys)
    assert (rc, started) == (2, [])
    assert "APPEALS_INTAKE_MAX_AGE" in err and "must be at most 2.63e+05" in err, err
    assert run(["demo", "--time-scale", "2.6e5"], capsys)[0] == 0
    monkeypatch.setenv("APPEALS_INTAKE_MAX_AGE", str(3650 * 86400))  # ten years
    assert run(["demo", "--time-scale", "2e6"], capsys)[0] == 0
    assert [o.time_scale for o in started] == [2.6e5, 2e6]


def test_the_probe_is_stamped_on_the_sla_clock(capsys: pytest.CaptureFixture[str]) -> None:
    """The probe was stamped with the wall time while intake judges it on the SLA clock, and
    at a fast clock it was too old for intake at once."""
    import datetime as dt

    import orjson

    sent: list[bytes] = []

    class Capture(Producer):
        async def send_and_wait(self, *args: object) -> None:
            sent.append(args[1])  # type: ignore[arg-type]

    epoch = time.time() - 100
    settings = Settings.load({}).replace(time_scale=2e5, clock_epoch=epoch)  # 231 days ahead
    tally = runner.Tally()
    tally.first_deadletter = ("intake", "invalid_value", "")  # stop the wait at once
    assert asyncio.run(runner._wait_ready(Capture(), settings, tally, asyncio.Event(),
                                          Workers(), timeout=1.0)) is False  # type: ignore[arg-type]
    submitted = dt.datetime.fromisoformat(orjson.loads(sent[0])["submitted_at"]).timestamp()
    sla_now = epoch + (time.time() - epoch) * 2e5
    assert abs(submitted - sla_now) < 86400, (submitted - time.time()) / 86400
