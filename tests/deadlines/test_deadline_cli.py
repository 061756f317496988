"""``appeals sla due`` command: JSON output, help, and exit code 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.deadlines import cli

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--regime", "fz59", "--registered-at", "2026-03-10T20:00:00Z",
                         "--region", "22")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["due"] == "2026-04-10T23:59:59+07:00"
    assert data["timezone"] == "Asia/Barnaul"
    assert data["registered_at"] == "2026-03-11T03:00:00+07:00"
    assert data["counting"] == "calendar_days"
    assert data["redirect_due"] == "2026-03-18T23:59:59+07:00"
    assert data["warning_at"] < data["due"]


def test_incident_warning_is_a_share_of_working_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    """75 % of 8 working hours from Friday 17:00 are used on Monday at 14:00; the wall-clock
    share said Sunday 22:15, after one working hour (session-9 DESIGN review)."""
    code, out, _err = run(capsys, "--regime", "incident", "--registered-at", "2026-03-13T17:00",
                          "--region", "22")
    assert code == 0
    data = json.loads(out)
    assert data["due"] == "2026-03-16T16:00:00+07:00"
    assert data["warning_at"] == "2026-03-16T14:00:00+07:00"


def test_readme_example_redirect_due_is_after_the_new_year(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example: 7 days from Wed 30 Dec 2026 end on Wed 6 Jan, inside the New
    Year days off; "previous" walked back to 30 Dec itself, the day of registration."""
    code, out, _err = run(capsys, "--regime", "fz59", "--registered-at", "2026-12-30T15:00",
                          "--region", "22")
    assert code == 0
    data = json.loads(out)
    assert data["redirect_due"] == "2027-01-11T23:59:59+07:00"
    assert data["due"] == "2027-01-29T23:59:59+07:00"


@pytest.mark.parametrize(("argv", "message"), [
    (["--regime", "fz60", "--registered-at", "2026-03-10", "--region", "77"], "invalid choice"),
    (["--regime", "fz59", "--registered-at", "2026-03-10", "--region", "999"], "region"),
    (["--regime", "fz59", "--registered-at", "10.03.2026", "--region", "77"], "ISO 8601"),
    (["--regime", "fz59", "--registered-at", "2026-02-30T10:00", "--region", "77"], "ISO"),
    (["--regime", "pos", "--registered-at", "2026-03-10", "--region", "77",
      "--working-days", "0"], "must be at least 1"),
    (["--regime", "pos", "--registered-at", "2026-03-10", "--region", "77",
      "--shift", "later"], "invalid choice"),
    (["--regime", "pos", "--region", "77"], "required"),
    # Year 1 printed an offset of +11:49:56, year 9999 an error naming no option.
    (["--regime", "fz59", "--registered-at", "0001-03-10T10:00", "--region", "77"],
     "--registered-at: the year must be 2000..2099"),
    (["--regime", "fz59", "--registered-at", "9999-12-30T10:00", "--region", "77"],
     "--registered-at: the year must be 2000..2099"),
    # The year where the deadline is counted: 2100-01-01 07:00 in Moscow.
    (["--regime", "fz59", "--registered-at", "2099-12-31T23:00-05:00", "--region", "77"],
     "--registered-at: the year must be 2000..2099"),
])
def test_bad_input_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                          message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err


def test_bad_calendar_file_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text("[years.2026]\nnon_working = [2027-01-01]\n", "utf-8")
    code, _, err = run(capsys, "--regime", "pos", "--registered-at", "2026-03-10",
                       "--region", "77", "--calendar-file", str(path))
    assert code == 2
    assert "not in year 2026" in err


def test_calendar_file_moves_deadline(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text("[years.2026]\nnon_working = [2026-05-18]\n", "utf-8")
    code, out, _ = run(capsys, "--regime", "pos", "--registered-at", "2026-04-30T10:00",
                       "--region", "77", "--calendar-file", str(path))
    assert code == 0
    assert json.loads(out)["due"] == "2026-05-19T23:59:59+03:00"


def test_irrelevant_option_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--regime", "fz59", "--registered-at", "2026-03-10T10:00",
                       "--region", "77", "--hours", "3")
    assert code == 0
    assert json.loads(out)["ignored_options"] == ["--hours"]


def test_incident_working_days_sets_final_answer(capsys: pytest.CaptureFixture[str]) -> None:
    # Fri 8 May 2026 16:00, the day before Victory Day (closes at 17:00, art. 95): 1 h, then
    # 7 h from Tue 12 May 09:00 = 16:00. 3 wd after: 12, 13, 14 May.
    code, out, _ = run(capsys, "--regime", "incident", "--registered-at", "2026-05-08T16:00",
                       "--region", "77", "--working-days", "3")
    assert code == 0
    data = json.loads(out)
    assert data["due"] == "2026-05-12T16:00:00+03:00"
    assert data["final_answer_due"] == "2026-05-14T23:59:59+03:00"


def test_hotline_working_days_sets_final_answer_and_the_help_says_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The help named the pos answer and the incident final answer only; the hotline's final
    answer (3 working days by default) is changed too."""
    # Tue 10 Mar 2026: 5 working days after are 11, 12, 13, 16, 17 March.
    code, out, _ = run(capsys, "--regime", "hotline", "--registered-at", "2026-03-10T10:00",
                       "--region", "77", "--working-days", "5")
    assert code == 0
    data = json.loads(out)
    assert data["final_answer_due"] == "2026-03-17T23:59:59+03:00"
    assert "ignored_options" not in data
    assert cli.main(["sla", "due", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "else the final answer (incident, hotline)" in text


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sla", "due", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--registered-at" in out and "Civil Code art. 191" in out


def test_subprocess_module_entry() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("APPEALS_CALENDAR_FILE", None)
    env.pop("APPEALS_POLICY_FILE", None)
    ok = subprocess.run(
        [sys.executable, "-m", "workers.deadlines.cli", "sla", "due", "--regime", "incident",
         "--registered-at", "2026-03-10T17:00", "--region", "77", "--urgent"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["due"] == "2026-03-11T12:00:00+03:00"
    bad = subprocess.run(
        [sys.executable, "-m", "workers.deadlines.cli", "sla", "due", "--regime", "pos",
         "--registered-at", "yesterday", "--region", "77"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "error" in bad.stderr
