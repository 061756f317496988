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
    assert limit > 100 * 86400  # room for far more than the default
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
