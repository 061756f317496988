"""Non-finite numbers are refused at load: ``nan`` and ``inf`` parse as floats and passed the
range checks (``inf > 0``; APPEALS_CLOCK_EPOCH had none), then the API answered 500."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from streams.settings import ConfigError, Settings

FLOAT_SETTINGS = [f"APPEALS_{f.name.upper()}" for f in dataclasses.fields(Settings)
                  if str(f.type).startswith("float")]


def test_every_float_setting_is_covered() -> None:
    assert {"APPEALS_CLOCK_EPOCH", "APPEALS_TIME_SCALE", "APPEALS_RATING_REFRESH",
            "APPEALS_WARNING_SHARE", "APPEALS_ESCALATION_AFTER"} <= set(FLOAT_SETTINGS)


@pytest.mark.parametrize("var", FLOAT_SETTINGS)
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "Infinity", "NaN"])
def test_non_finite_environment_values_are_refused(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load({var: raw})
    assert str(exc.value) == f"{var} must be a finite number"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_file_values_are_refused_naming_the_file(tmp_path: Path, value: str) -> None:
    path = tmp_path / "appeals.toml"
    path.write_text(f"clock_epoch = {value}\nrating_refresh = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_CONFIG": str(path)})
    assert str(exc.value) == (f"APPEALS_CLOCK_EPOCH must be a finite number "
                              f"(set by APPEALS_CONFIG={path}: clock_epoch)")


def test_replace_refuses_them_too_and_finite_values_pass() -> None:
    with pytest.raises(ConfigError, match="APPEALS_TIME_SCALE must be a finite number"):
        Settings.load({}).replace(time_scale=float("inf"))
    s = Settings.load({"APPEALS_CLOCK_EPOCH": "1700000000.5", "APPEALS_TIME_SCALE": "2"})
    assert (s.clock_epoch, s.time_scale) == (1700000000.5, 2.0)


INT_SETTINGS = [f"APPEALS_{f.name.upper()}" for f in dataclasses.fields(Settings)
                if str(f.type) == "int"]


@pytest.mark.parametrize("var", INT_SETTINGS)
def test_every_whole_number_setting_has_a_range(var: str) -> None:
    """APPEALS_DEDUPE_WINDOW_DAYS=0 passed, Redis then refused every dedupe call and intake
    deduplicated within a batch only; APPEALS_MAX_MESSAGE_BYTES=-5 passed too (review of
    session 15). No count, size, port or duration here means anything below zero."""
    with pytest.raises(ConfigError) as exc:
        Settings.load({var: "-1"})
    assert str(exc.value).startswith(f"{var} "), exc.value


def test_a_dedupe_window_of_zero_days_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"APPEALS_DEDUPE_WINDOW_DAYS must be 1\.\.3660 days"):
        Settings.load({"APPEALS_DEDUPE_WINDOW_DAYS": "0"})
    assert Settings.load({"APPEALS_DEDUPE_WINDOW_DAYS": "1"}).dedupe_window_days == 1
