"""``appeals sla due --authority`` counts as the SLA engine does (the authority's own ``sla:``
block and zone of the routing rules), and the untracked stages the README promises are
printed: fz59 ``registration``, pos ``moderation`` then ``assignment`` (review 12, defects 8
and 9)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workers.deadlines import cli
from workers.routing import loader
from workers.sla.agent import appeal_zone
from workers.sla.deadline_service import DeadlineService, load_book

REG = "2026-03-02T10:00"


def _due(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return dict(json.loads(out))


def _fake_rules(monkeypatch: pytest.MonkeyPatch, **bodies: Any) -> None:
    rules = SimpleNamespace(authorities=bodies)
    monkeypatch.setattr(loader, "load_rules", lambda *a, **k: rules)


def test_authority_sla_block_and_zone_of_the_routing_rules(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    body = SimpleNamespace(id="22-x", sla={"pos": {"working_days": 3}, "shift": "next"},
                           timezone="Europe/Moscow", parent=None)
    _fake_rules(monkeypatch, **{"22-x": body})
    data = _due(capsys, "--regime", "pos", "--registered-at", "2026-03-02T10:00+07:00",
                "--region", "22", "--authority", "22-x")
    # Mon 2 March 10:00 Barnaul = 06:00 Moscow; 3 working days: 3, 4, 5 March.
    assert data["amount"] == 3 and data["timezone"] == "Europe/Moscow"
    assert data["due"] == "2026-03-05T23:59:59+03:00"
    # In any case, as the README names bodies.
    assert _due(capsys, "--regime", "pos", "--registered-at", "2026-03-02T10:00+07:00",
                "--region", "22", "--authority", "22-X") == data


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(["sla", "due", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("typo", ["22-minzkh", "22-MINZKH"])
def test_an_authority_nobody_names_is_refused(capsys: pytest.CaptureFixture[str],
                                              typo: str) -> None:
    """A typo was taken silently: exit 0 and the region's default deadline (10 working days
    where 22-minzhkh has 8), as if it were that body's."""
    line = _refused(capsys, "--regime", "pos", "--registered-at", REG, "--region", "22",
                    "--authority", typo)
    assert f"unknown authority {typo!r}" in line and "22-minzhkh" in line, line


def test_packaged_authorities_are_named_in_any_case(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--regime", "pos", "--registered-at", REG, "--region", "22", "--authority")
    lower = _due(capsys, *argv, "22-minzhkh")
    assert lower["amount"] == 8  # its own `sla:` block (the region's default is 10)
    assert _due(capsys, *argv, "22-MINZHKH") == lower


def test_an_authority_only_the_policy_file_names_is_known(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A body the rules do not list (yet), with an override of its own in the policy file."""
    path = tmp_path / "pol.toml"
    text = Path(cli.__file__).with_name("policies.toml").read_text("utf-8")
    path.write_text(text + '\n[[overrides]]\nauthority = "22-new-body"\nregime = "pos"\n'
                    "answer = 5\n", "utf-8")
    argv = ("--regime", "pos", "--registered-at", REG, "--region", "22",
            "--policy-file", str(path), "--authority")
    assert _due(capsys, *argv, "22-New-Body")["amount"] == 5
    assert "unknown authority" in _refused(capsys, *argv, "22-old-body")


def test_cli_gives_the_engine_s_deadline_for_an_authority_of_the_packaged_rules(
        capsys: pytest.CaptureFixture[str]) -> None:
    rules = loader.load_rules()
    service = DeadlineService(load_book(rules.authorities.values()))
    overridden = [a for a in rules.authorities.values()
                  if "pos" in (getattr(a, "sla", None) or {})]
    assert overridden, "the packaged rules have no authority with its own pos block"
    for body in overridden[:3]:
        tz = appeal_zone("22", body.timezone)
        start = dt.datetime.fromisoformat(REG).replace(tzinfo=ZoneInfo(tz)).timestamp()
        engine = dt.datetime.fromtimestamp(
            service.due("pos", start, tz, False, body.id, None, None, "22"),
            ZoneInfo(tz)).isoformat()
        data = _due(capsys, "--regime", "pos", "--registered-at", REG, "--region", "22",
                    "--authority", body.id)
        assert data["due"] == engine, body.id


def test_untracked_stages_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    fz59 = _due(capsys, "--regime", "fz59", "--registered-at", "2026-03-02T10:00",
                "--region", "22")
    assert fz59["registration_due"] == "2026-03-05T23:59:59+07:00"  # 3 days of receipt
    # (9 March, the day off for 8 March, shifts back to Friday 6 March)
    assert fz59["redirect_due"] == "2026-03-06T23:59:59+07:00"
    pos = _due(capsys, "--regime", "pos", "--registered-at", "2026-03-06T10:00",
               "--region", "22")
    # Fri 6 March: moderation within 1 working day (Tue 10 March: Mon 9 March is the day
    # off for 8 March), assignment 1 working day after that (Wed 11 March).
    assert pos["moderation_due"] == "2026-03-10T23:59:59+07:00"
    assert pos["assignment_due"] == "2026-03-11T23:59:59+07:00"
