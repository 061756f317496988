"""Intake's own environment variables are checked at start-up: a bad value is one line naming
the variable and exit status 2, never a feature silently switched off."""

from __future__ import annotations

from typing import Any

import pytest

from streams.settings import ConfigError
from workers import cli
from workers.intake.near_duplicates import NearDupConfig
from workers.intake.normalize import NormaliseConfig


@pytest.mark.parametrize(("name", "raw"), [
    ("APPEALS_NEAR_DUP_THRESHOLD", "80"),  # a percentage: nothing was ever similar enough
    ("APPEALS_NEAR_DUP_THRESHOLD", "0"),  # every appeal of an author flagged as a resend
    ("APPEALS_NEAR_DUP_THRESHOLD", "nan"),
    ("APPEALS_NEAR_DUP_THRESHOLD", "inf"),
    ("APPEALS_NEAR_DUP_THRESHOLD", "high"),
    ("APPEALS_NEAR_DUP_SKETCH", "0"),  # empty sketches: nothing ever matched
    ("APPEALS_NEAR_DUP_SKETCH", "12.5"),
    ("APPEALS_NEAR_DUP_WINDOW_S", "-5"),
    ("APPEALS_NEAR_DUP_WINDOW_S", "0"),
    ("APPEALS_NEAR_DUP_BUCKET_MAX", "0"),
])
def test_near_duplicate_settings_are_range_checked(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        NearDupConfig.from_env({name: raw})
    message = str(info.value)
    assert message.startswith(f"{name} must be ") and repr(raw) in message
    assert "\n" not in message


def test_good_near_duplicate_settings_are_taken() -> None:
    cfg = NearDupConfig.from_env({"APPEALS_NEAR_DUP_THRESHOLD": "1", "APPEALS_NEAR_DUP_SKETCH":
                                  "64", "APPEALS_NEAR_DUP_WINDOW_S": "3600.5"})
    assert (cfg.threshold, cfg.sketch_size, cfg.window_s) == (1.0, 64, 3600.5)
    assert NearDupConfig.from_env({}) == NearDupConfig()


@pytest.mark.parametrize(("name", "raw"), [
    ("APPEALS_PHONE_REGION", "RUS"),  # every national number was kept as digits
    ("APPEALS_PHONE_REGION", "XX"),
    ("APPEALS_MAX_ATTACHMENTS", "ten"),
    ("APPEALS_MAX_ATTACHMENTS", "-1"),
    ("APPEALS_MAX_ATTACHMENT_BYTES", "20MiB"),
])
def test_normalisation_settings_are_checked(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        NormaliseConfig.from_env({name: raw})
    assert str(info.value).startswith(f"{name} must be ") and repr(raw) in str(info.value)


def test_a_phone_region_in_lower_case_is_taken() -> None:
    assert NormaliseConfig.from_env({"APPEALS_PHONE_REGION": "kz"}).phone_region == "KZ"


@pytest.mark.parametrize(("name", "raw"), [
    ("APPEALS_NEAR_DUP_THRESHOLD", "80"),
    ("APPEALS_PHONE_REGION", "RUS"),
])
def test_the_worker_stops_with_one_line_before_kafka(name: str, raw: str, capsys: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, raw)
    monkeypatch.setenv("APPEALS_KAFKA", "kafka://127.0.0.1:1")  # never reached
    monkeypatch.setattr(cli, "setup_logging", lambda level: None)
    rc = cli.main(["worker", "--metrics-port", "0"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"appeals: configuration error: {name} ")
    assert "Kafka" not in err
