"""Absurd period amounts fail fast and clearly (exit 2 / ValueError), not by overflow.

Before: ``--hours 1e300`` printed "Python int too large to convert to C int" and
``--working-days 100000000`` walked the calendar for ~6 s, then "date value out of range".
Bounds: 3650 days (about 14 years of working days), 10000 working hours.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines import cli
from workers.deadlines.calendar import MAX_PERIOD_DAYS, MAX_PERIOD_HOURS, BusinessCalendar
from workers.deadlines.compute import Period, period_due
from workers.deadlines.policies import PolicyBook, PolicyError

MSK = ZoneInfo("Europe/Moscow")
REG = dt.datetime(2026, 1, 12, 10, tzinfo=MSK)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bounds_are_the_documented_ones() -> None:
    assert (MAX_PERIOD_DAYS, MAX_PERIOD_HOURS) == (3650, 10_000)


@pytest.mark.parametrize(("argv", "message"), [
    (["--regime", "incident", "--hours", "1e300"], "--hours: must be at most 10000"),
    (["--regime", "incident", "--hours", "10000.5"], "--hours: must be at most 10000"),
    (["--regime", "pos", "--working-days", "100000000"], "--working-days: must be at most 3650"),
    (["--regime", "incident", "--working-days", "3651"], "--working-days: must be at most 3650"),
])
def test_cli_rejects_huge_periods_up_front(capsys: pytest.CaptureFixture[str],
                                           argv: list[str], message: str) -> None:
    started = time.monotonic()
    code, out, err = run(capsys, *argv, "--registered-at", "2026-01-10T10:00", "--region", "77")
    assert time.monotonic() - started < 2
    assert code == 2 and out == ""
    assert message in err
    assert "usage:" in err  # an argparse error, like the other bad options


def test_cli_accepts_the_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--regime", "pos", "--working-days", "3650",
                       "--registered-at", "2026-01-10T10:00", "--region", "77")
    assert code == 0
    assert json.loads(out)["due"] > "2040"  # 3650 working days are about 14.6 years
    code, out, _ = run(capsys, "--regime", "incident", "--hours", "10000",
                       "--registered-at", "2026-01-10T10:00", "--region", "77")
    assert code == 0
    assert json.loads(out)["due"] > "2030"  # 10000 h / 9 h a day = 1112 working days


def test_help_explains_the_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sla", "due", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1..3650" in out and "at most 10000" in out


def test_calendar_refuses_huge_working_days() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="at most 3650"):
        BusinessCalendar().add_working_days(dt.date(2026, 1, 12), 100_000_000)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("hours", [1e300, math.inf, math.nan, 10_001,
                                   dt.timedelta(days=1_000_000)])
def test_calendar_refuses_huge_hours(hours: Any) -> None:
    with pytest.raises(ValueError, match="at most 10000"):
        BusinessCalendar().add_working_hours(REG, hours)


@pytest.mark.parametrize("period", [
    Period("working_hours", 1e300),
    Period("working_days", 100_000_000),
    Period("calendar_days", 1_000_000),      # year 4764: used to be computed
    Period("calendar_days", math.inf),       # used to raise OverflowError
    Period("calendar_days", 3651),
])
def test_period_due_refuses_huge_amounts(period: Period) -> None:
    with pytest.raises(ValueError, match=r"at most|0\.\.3650"):
        period_due(REG, MSK, period, BusinessCalendar())


def test_period_due_at_the_bound() -> None:
    # 12 Jan 2026 + 10 years = 12 Jan 2036 = 3652 days (leap days 29 Feb 2028 and 2032),
    # so + 3650 days = 10 Jan 2036; "none" (the Period default) keeps it whatever day it is.
    due = period_due(REG, MSK, Period("calendar_days", 3650), BusinessCalendar())
    assert due.date() == dt.date(2036, 1, 10)


def _shipped_with(override: dict[str, Any]) -> dict[str, Any]:
    import tomllib
    from importlib import resources

    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    data = tomllib.loads(text)
    data["overrides"] = [override]
    return data


@pytest.mark.parametrize(("override", "message"), [
    ({"regime": "incident", "answer": 1e300}, "answer: must be at most 10000"),
    ({"regime": "pos", "answer": 100_000_000}, "answer: must be at most 3650"),
    ({"regime": "fz59", "answer": 3651}, "answer: must be at most 3650"),
    ({"regime": "incident", "stages": {"final_answer": {"amount": 100_000_000}}},
     "final_answer.amount: must be at most 3650"),
    ({"regime": "fz59", "extension_max_days": 100_000}, "extension_max_days: must be at most"),
    ({"regime": "fz59", "escalation_after_hours": 1e300}, "escalation_after_hours: must be at"),
    ({"regime": "fz59", "warning_share": math.nan}, "warning_share: expected a finite"),
])
def test_policy_file_refuses_huge_amounts(override: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        PolicyBook(_shipped_with(override), "test")


def test_cli_policy_file_with_huge_hours(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    path = tmp_path / "pol.toml"
    text = Path(__file__).resolve().parents[2].joinpath(
        "workers/deadlines/policies.toml").read_text("utf-8")
    path.write_text(text + '\n[[overrides]]\nregime = "incident"\nanswer = 1e300\n', "utf-8")
    code, out, err = run(capsys, "--regime", "incident", "--registered-at", "2026-01-10T10:00",
                         "--region", "77", "--policy-file", str(path))
    assert code == 2 and out == ""
    assert "answer: must be at most 10000" in err
