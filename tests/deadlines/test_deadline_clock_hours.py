"""Deadlines in clock hours (``counting = "hours"``): a 122 line working round the clock.

DESIGN.md §2 leaves the hotline's deadline to the region, and many regional 122 lines work
24/7, yet hours could only be working hours: a Saturday 10:00 call with a 2-hour callback
came due on Tuesday 02:00 (the closest config that loaded, 00:00-23:59:59 on working days),
and a Friday 23:30 call on Tuesday 01:30:01, a second lost at each midnight. An authority's
`sla:` key ``hours`` silently meant working hours. Review of the deadlines area.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines import cli
from workers.deadlines.calendar import BusinessCalendar
from workers.deadlines.compute import answer_due, extend, pause_shift, stage_due, warning_at
from workers.deadlines.policies import PolicyBook, PolicyError
from workers.sla.deadline_service import DeadlineService, authority_overrides, load_book
from workers.sla.engine import apply_lifecycle, new_state, replay_deadline

MSK = ZoneInfo("Europe/Moscow")
CAL = BusinessCalendar(log_missing_decree=False)


def _data(*overrides: dict[str, Any]) -> dict[str, Any]:
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    data = copy.deepcopy(tomllib.loads(text))
    data["overrides"] = [*data.get("overrides", []), *overrides]
    return data


ROUND_THE_CLOCK = {"regime": "hotline", "region": "77", "counting": "hours", "answer": 2,
                   "urgent_answer": 1}


def _book(**extra: Any) -> PolicyBook:
    return PolicyBook(_data({**ROUND_THE_CLOCK, **extra}))


def _msk(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=MSK)


@pytest.mark.parametrize(("called", "due"), [
    # Saturday 7 March 2026 (a day off, and 8-9 March the holiday and its transfer).
    ("2026-03-07T10:00", "2026-03-07T12:00"),
    # Across midnight into the day off, not a second lost.
    ("2026-03-06T23:30", "2026-03-07T01:30"),
    # A weekday's night.
    ("2026-03-10T03:15", "2026-03-10T05:15"),
])
def test_clock_hours_count_every_hour_of_every_day(called: str, due: str) -> None:
    policy = _book().resolve("hotline", region="77")
    assert policy.counting == "hours"
    got = answer_due("hotline", _msk(called), "Europe/Moscow", policy, calendar=CAL)
    assert got == _msk(due)
    assert got.utcoffset() == dt.timedelta(hours=3)


def test_clock_hours_urgent_fraction_and_warning() -> None:
    policy = _book(answer=1.5).resolve("hotline", region="77")
    called = _msk("2026-03-07T10:00")
    assert answer_due("hotline", called, "Europe/Moscow", policy, urgent=True,
                      calendar=CAL) == _msk("2026-03-07T11:00")
    due = answer_due("hotline", called, "Europe/Moscow", policy, calendar=CAL)
    assert due == _msk("2026-03-07T11:30")
    # 75 % of the clock span, not of working time (there is none on a Saturday).
    assert warning_at(called, due, 0.75, policy, CAL) == _msk("2026-03-07T11:07:30")


def test_clock_hours_pause_gives_back_the_clock_time_left() -> None:
    policy = _book().resolve("hotline", region="77")
    due = _msk("2026-03-07T12:00")
    # 1.5 h left at the pause; given back from the resume, on a day off too.
    assert pause_shift(due, _msk("2026-03-07T10:30"), _msk("2026-03-08T20:00"), policy,
                       CAL) == _msk("2026-03-08T21:30")
    # A pause begun at the deadline cures nothing.
    assert pause_shift(due, due, _msk("2026-03-08T20:00"), policy, CAL) == due


def test_clock_hours_extension_adds_whole_days_of_clock_time() -> None:
    policy = _book(extensions_allowed=1, extension_max_days=2).resolve("hotline", region="77")
    assert extend(_msk("2026-03-07T12:00"), 1, policy, CAL) == _msk("2026-03-08T12:00")
    with pytest.raises(ValueError, match=r"1\.\.2 days"):
        extend(_msk("2026-03-07T12:00"), 3, policy, CAL)


def test_clock_hours_stage() -> None:
    book = PolicyBook(_data({"regime": "hotline", "region": "77",
                             "stages": {"final_answer": {"counting": "hours", "amount": 36}}}))
    policy = book.resolve("hotline", region="77")
    assert stage_due("final_answer", _msk("2026-03-06T18:00"), "Europe/Moscow", policy,
                     CAL) == _msk("2026-03-08T06:00")


def test_work_end_24_00_closes_at_midnight() -> None:
    """Working hours up to midnight lose no second at it (23:59:59 did)."""
    book = PolicyBook(_data({"regime": "hotline", "region": "77", "answer": 2,
                             "work_start": "00:00", "work_end": "24:00"}))
    policy = book.resolve("hotline", region="77")
    assert policy.counting == "working_hours"
    # Fri 6 March 23:30: half an hour that day, then Tuesday 10 March (7-9 March off).
    assert answer_due("hotline", _msk("2026-03-06T23:30"), "Europe/Moscow", policy,
                      calendar=CAL) == _msk("2026-03-10T01:30")
    # Used up exactly at closing: the closing midnight itself.
    assert answer_due("hotline", _msk("2026-03-06T22:00"), "Europe/Moscow", policy,
                      calendar=CAL) == _msk("2026-03-07T00:00")
    evening = PolicyBook(_data({"regime": "hotline", "region": "77", "answer": 3,
                                "work_start": "20:00", "work_end": "24:00"})
                         ).resolve("hotline", region="77")
    # Wed 11 March 22:00: 2 h that evening, 1 h from Thursday's 20:00.
    assert answer_due("hotline", _msk("2026-03-11T22:00"), "Europe/Moscow", evening,
                      calendar=CAL) == _msk("2026-03-12T21:00")


@pytest.mark.parametrize(("work_end", "message"), [
    ("00:00", 'written "24:00"'),
    ("25:00", "or 24:00"),
])
def test_work_end_midnight_has_one_spelling(work_end: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        PolicyBook(_data({"regime": "hotline", "region": "77", "work_end": work_end}))


def test_fractional_clock_hours_load_and_days_stay_whole() -> None:
    assert _book(answer=0.25).resolve("hotline", region="77").answer == 0.25
    with pytest.raises(PolicyError, match="whole number"):
        PolicyBook(_data({"regime": "hotline", "region": "77", "counting": "calendar_days",
                          "answer": 0.1}))


def test_authority_key_hours_is_clock_hours() -> None:
    """``hotline: {hours: 2}`` in the routing rules was silently working hours."""
    auth = SimpleNamespace(id="77-122", sla={"hotline": {"hours": 2},
                                             "incident": {"first_response":
                                                          {"working_hours": 4}}})
    entries = {e["regime"]: e for e in authority_overrides([auth])}
    assert entries["hotline"]["counting"] == "hours"
    assert entries["incident"]["counting"] == "working_hours"
    book = load_book([auth])
    policy = book.resolve("hotline", region="77", authority="77-122")
    assert (policy.counting, policy.answer) == ("hours", 2)
    assert answer_due("hotline", _msk("2026-03-07T10:00"), "Europe/Moscow", policy,
                      calendar=CAL) == _msk("2026-03-07T12:00")


def _engine_state(rules: Any, called: str) -> dict[str, Any]:
    routed = {"appeal_id": "c1", "regime": "hotline", "region": "77", "authority_id": "77-x"}
    return new_state(routed, 0, _msk(called).timestamp(), "Europe/Moscow", rules)[0]


def _event(kind: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{kind}@{at}", "event": kind, "at": f"{at}+03:00", **extra}


def test_engine_counts_clock_hours_through_a_pause_and_an_extension() -> None:
    book = _book(extensions_allowed=1, extension_max_days=1)
    rules = DeadlineService(book, CAL).rules()
    state = _engine_state(rules, "2026-03-07T10:00")
    assert state["due"] == _msk("2026-03-07T12:00").timestamp()
    assert state["warn"] == _msk("2026-03-07T11:30").timestamp()
    for event in (_event("paused", "2026-03-07T10:30"), _event("resumed", "2026-03-08T20:00")):
        assert apply_lifecycle(state, event, rules).outcome == "applied"
    # 1.5 h left, and the warning's 1 h, given back from Sunday 20:00.
    assert state["due"] == _msk("2026-03-08T21:30").timestamp()
    assert state["warn"] == _msk("2026-03-08T21:00").timestamp()
    assert replay_deadline(state, rules) == (state["due"], state["warn"])
    ext = _event("extended", "2026-03-08T20:30", extension_days=1)
    assert apply_lifecycle(state, ext, rules).outcome == "applied"
    assert state["due"] == _msk("2026-03-09T21:30").timestamp()
    assert replay_deadline(state, rules) == (state["due"], state["warn"])


def test_cli_due_in_clock_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = tmp_path / "p.toml"
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    policy_file.write_text(text + '\n[[overrides]]\nregime = "hotline"\nregion = "77"\n'
                           'counting = "hours"\nanswer = 2\n', "utf-8")
    code = cli.main(["sla", "due", "--regime", "hotline", "--registered-at",
                     "2026-03-07T10:00", "--region", "77", "--policy-file", str(policy_file)])
    out, _err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert (data["counting"], data["due"], data["warning_at"]) == (
        "hours", "2026-03-07T12:00:00+03:00", "2026-03-07T11:30:00+03:00")
    code = cli.main(["sla", "due", "--regime", "hotline", "--registered-at",
                     "2026-03-07T10:00", "--region", "77", "--policy-file", str(policy_file),
                     "--hours", "5"])
    assert code == 0
    assert json.loads(capsys.readouterr()[0])["due"] == "2026-03-07T15:00:00+03:00"
