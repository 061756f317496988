"""Policy book: shipped defaults, override resolution, validation."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from workers.deadlines.policies import POLICY_FILE_ENV, PolicyBook, PolicyError


def _shipped() -> dict[str, Any]:
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_shipped_defaults() -> None:
    book = PolicyBook.load()
    fz59 = book.resolve("fz59")
    assert (fz59.counting, fz59.answer, fz59.shift) == ("calendar_days", 30, "previous")
    assert (fz59.extensions_allowed, fz59.extension_max_days) == (1, 30)
    assert fz59.stage("registration").amount == 3
    assert fz59.stage("redirect").amount == 7
    pos = book.resolve("pos")
    assert (pos.counting, pos.answer) == ("working_days", 10)
    assert {"moderation", "assignment"} <= set(pos.stages)
    inc = book.resolve("incident")
    assert (inc.counting, inc.answer, inc.urgent_answer) == ("working_hours", 8, 4)
    assert (inc.work_start, inc.work_end) == (dt.time(9), dt.time(18))
    assert inc.stage("final_answer").amount == 7
    assert book.resolve("hotline").counting == "working_hours"
    for regime in book.regimes:
        assert book.resolve(regime).warning_share == 0.75
        assert book.resolve(regime).escalation_after > dt.timedelta(0)


def test_unknown_regime_and_stage() -> None:
    book = PolicyBook.load()
    with pytest.raises(PolicyError, match="unknown regime"):
        book.resolve("fz60")
    with pytest.raises(PolicyError, match="no stage"):
        book.resolve("pos").stage("redirect")


def _book(*overrides: dict[str, Any]) -> PolicyBook:
    data = _shipped()
    data["overrides"] = list(overrides)
    return PolicyBook(data, "test")


def test_most_specific_wins_and_fields_combine() -> None:
    book = _book(
        {"regime": "pos", "region": "22", "answer": 9, "warning_share": 0.5},
        {"regime": "pos", "category": "roads", "answer": 8},
        {"regime": "pos", "region": "22", "subcategory": "snow_on_roads", "answer": 5},
        {"authority": "mintrans-22", "escalation_after_hours": 2},
    )
    assert book.resolve("pos").answer == 10
    assert book.resolve("pos", region=22).answer == 9
    assert book.resolve("pos", region="122").answer == 9  # plate alias normalised
    # category (1 selector besides regime) vs region (1): category ranks higher on a tie.
    assert book.resolve("pos", region="22", category="roads").answer == 8
    two = book.resolve("pos", region="22", category="roads", subcategory="snow_on_roads",
                       authority="mintrans-22")
    assert two.answer == 5
    assert two.warning_share == 0.5  # from the broader region rule
    assert two.escalation_after == dt.timedelta(hours=2)  # regime-less authority rule
    assert book.resolve("fz59", authority="mintrans-22").escalation_after == \
        dt.timedelta(hours=2)


def test_partial_stage_override_only_where_stage_exists() -> None:
    book = _book({"authority": "a1", "stages": {"final_answer": {"amount": 5}}})
    assert book.resolve("incident", authority="a1").stage("final_answer").amount == 5
    assert book.resolve("incident", authority="a1").stage("final_answer").counting == \
        "working_days"
    assert "final_answer" not in book.resolve("fz59", authority="a1").stages


@pytest.mark.parametrize(("override", "message"), [
    ({"regime": "pos", "answer": 0}, "must be >"),
    ({"regime": "pos", "answer": 2.5}, "whole number"),
    ({"regime": "fz59", "shift": "later"}, "shift"),
    ({"regime": "pos", "warning_share": 1.5}, "warning_share"),
    ({"regime": "pos", "answr": 3}, "unknown key"),
    ({"answer": 3}, "at least one selector"),
    ({"region": "22"}, "sets nothing"),
    ({"region": "999", "answer": 3}, "region"),
    ({"regime": "nope", "answer": 3}, "unknown regime"),
    ({"regime": "incident", "work_start": "19:00"}, "before work_end"),
    ({"regime": "incident", "timezone": "Mars/Olympus"}, "IANA"),
    ({"regime": "incident", "stages": {"x": {"amount": 1, "counting": "weeks"}}}, "counting"),
])
def test_invalid_overrides(override: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        _book(override)


def test_duplicate_selectors_refused() -> None:
    with pytest.raises(PolicyError, match="same selectors"):
        _book({"region": "22", "answer": 3, "regime": "pos"},
              {"regime": "pos", "region": "22", "warning_share": 0.5})


def test_invalid_regime_defaults() -> None:
    data = copy.deepcopy(_shipped())
    del data["regimes"]["pos"]["counting"]
    with pytest.raises(PolicyError, match="missing required"):
        PolicyBook(data, "test")


def test_a_misspelt_regime_table_is_refused_at_load(tmp_path: Path) -> None:
    """[regimes.fz95] loaded, and every fz59 appeal then failed with "unknown regime"."""
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    path = tmp_path / "policies.toml"
    path.write_text(text.replace("[regimes.fz59", "[regimes.fz95"), "utf-8")
    with pytest.raises(PolicyError) as err:
        PolicyBook.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: regimes.fz95: unknown regime 'fz95'")
    assert "missing: regimes.fz59" in message
    assert "fz59, pos, incident, hotline" in message


def test_a_deleted_regime_table_is_refused() -> None:
    data = copy.deepcopy(_shipped())
    del data["regimes"]["hotline"]
    with pytest.raises(PolicyError, match=r"^test: regimes\.hotline: missing; every regime "
                                          r"needs its table \(fz59, pos, incident, hotline\)"):
        PolicyBook(data, "test")


def test_policy_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
    path = tmp_path / "p.toml"
    path.write_text(text + '\n[[overrides]]\nregime = "pos"\nanswer = 8\n', "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    assert PolicyBook.load().resolve("pos").answer == 8
    path.write_text("[regimes\n", "utf-8")
    with pytest.raises(PolicyError, match="invalid TOML"):
        PolicyBook.load()


def test_an_urgent_answer_is_never_longer_than_the_ordinary_one() -> None:
    """An authority that shortens ``answer`` kept the book's 4-hour ``urgent_answer``: an
    urgent incident got more time than an ordinary one (review of session 15)."""
    import datetime as dt
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from workers.deadlines.calendar import BusinessCalendar
    from workers.deadlines.compute import answer_due
    from workers.sla.deadline_service import load_book

    body = SimpleNamespace(id="22-cur", sla={"incident": {"first_response": {"working_hours": 2}}})
    policy = load_book([body]).resolve("incident", region="22", authority="22-cur")
    registered = dt.datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Barnaul"))
    cal = BusinessCalendar(log_missing_decree=False)
    ordinary = answer_due("incident", registered, "Asia/Barnaul", policy, calendar=cal)
    urgent = answer_due("incident", registered, "Asia/Barnaul", policy, urgent=True,
                        calendar=cal)
    assert ordinary.hour == 12 and urgent <= ordinary


def test_an_override_in_another_unit_drops_the_inherited_urgent_period() -> None:
    """The book's incident urgent period is 4 working hours; an override to 10 working days
    kept 4, read as 4 working days (review of session 15)."""
    from types import SimpleNamespace

    from workers.sla.deadline_service import load_book

    body = SimpleNamespace(id="22-x", sla={"incident": {"first_response": {"working_days": 10}}})
    policy = load_book([body]).resolve("incident", region="22", authority="22-x")
    assert policy.counting == "working_days"
    assert policy.answer_amount(urgent=True) == policy.answer_amount() == 10
