"""An APPEALS_* variable nothing reads (a misspelt APPEALS_KAFKA) is a WARNING at start-up with
the setting it resembles. It was silently ignored, while the same typo in the APPEALS_CONFIG
file is an error with "did you mean kafka?". A warning, not an error: other tools may set
APPEALS_ variables of their own."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams import settings as settings_module
from streams.settings import Settings, known_variables, unknown_variables
from tests.cli.cli_run import run

REPO = Path(__file__).resolve().parents[2]
# Built, so the repository scan below does not find the typos of this file.
KAFAK = "APPEALS_" + "KAFAK"
REDSI = "APPEALS_" + "REDSI"
ODD = "APPEALS_" + "ZQXJW"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "_warned", set())
    monkeypatch.delenv("APPEALS_CONFIG", raising=False)


def _unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "reads no such variable" in r.getMessage()]


def test_a_typo_is_a_warning_with_the_setting_it_resembles(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(KAFAK, "kafka://secret-host:9092")
    monkeypatch.setenv(ODD, "1")
    with caplog.at_level(logging.WARNING):
        Settings.load()
        Settings.load()  # once per process, however often the settings are loaded
    assert _unknown_warnings(caplog) == [
        f"{KAFAK} is set, but appeals reads no such variable (did you mean APPEALS_KAFKA?): "
        "it is ignored (`appeals config` lists the variables read)",
        f"{ODD} is set, but appeals reads no such variable: it is ignored (`appeals config` "
        "lists the variables read)",
    ]
    assert "secret-host" not in caplog.text  # the value is never shown


def test_every_command_that_loads_the_settings_warns(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    monkeypatch.setenv(REDSI, "redis://h/0")
    with caplog.at_level(logging.WARNING):
        rc, err = run(["config"], capsys)
    assert rc == 0, err
    assert [m for m in _unknown_warnings(caplog) if "did you mean APPEALS_REDIS?" in m], \
        caplog.text


def test_an_explicit_environment_is_not_the_process_s(caplog: pytest.LogCaptureFixture) -> None:
    """Settings.load({...}) (tests, tools) warns of nothing: only the process's own variables
    are start-up configuration."""
    with caplog.at_level(logging.WARNING):
        Settings.load({KAFAK: "x"})
    assert _unknown_warnings(caplog) == []


def test_variables_read_outside_the_settings_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"APPEALS_CONFIG": "x", "APPEALS_GATEWAY_PORT": "1", "APPEALS_NEAR_DUP_SALT": "s",
           "APPEALS_OPEN311_TTL_DAYS": "1", "APPEALS_TEST_LOG_DIR": "d",
           "APPEALS_SKIP_SYSTEM_TOOLS": "1", "APPEALS_FAUST_FASTPATH": "1",
           "APPEALS_KAFKA": "kafka://h:1", "PATH": "/bin", "APPEALSX": "1"}
    assert unknown_variables(env) == []
    assert unknown_variables({**env, KAFAK: "1"}) == [(KAFAK, "APPEALS_KAFKA")]


def test_every_appeals_variable_the_repository_names_is_known() -> None:
    """Whatever the project sets or reads (code, tests, scripts, compose, docs) is a setting,
    in OTHER_VARIABLES or in TOOLING_VARIABLES: none of it may draw the warning."""
    try:
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    known = known_variables()
    named: set[str] = set()
    for name in files:
        path = REPO / name
        if path.suffix in (".pkl", ".gz", ".tsv", ".jsonl", ".csv") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        named.update(re.findall(r"\bAPPEALS_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert "APPEALS_KAFKA" in named  # the scan found something
    # A family named by its prefix (``APPEALS_NEAR_DUP``, as in "APPEALS_NEAR_DUP_*") is fine.
    stray = {n for n in named - known if not any(k.startswith(n + "_") for k in known)}
    assert stray == set()
