"""Help texts a newcomer reads first: `appeals classify bench --help` had no description, and
`appeals worker --help` listed the agents without triage and notify-retry."""

from __future__ import annotations

import pytest

from tests.cli.cli_run import run_out


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc, out, _ = run_out([*argv, "--help"], capsys)
    assert rc == 0
    return " ".join(out.split())


def test_classify_bench_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["classify", "bench"], capsys)
    head = text.split("options:")[0]
    assert "JSON" in head and "appeals/s" in head, text


def test_worker_help_names_every_agent_the_worker_runs(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["worker"], capsys)
    for agent in ("intake", "triage", "SLA", "notify", "notify-retry"):
        assert agent in text, (agent, text)
