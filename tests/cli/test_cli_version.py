"""``appeals --version`` prints the installed version and exits 0 (it was a usage error)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from tests.cli.cli_run import run_out
from workers import cli


def test_version(capsys: Any) -> None:
    rc, out, err = run_out(["--version"], capsys)
    assert rc == 0, err
    assert out == f"appeals {metadata.version('citizen-appeals')}\n"


def test_version_from_a_source_tree(capsys: Any, monkeypatch: Any) -> None:
    """Not installed (run from a checkout): still an answer and status 0."""
    def missing(_: str) -> str:
        raise metadata.PackageNotFoundError("citizen-appeals")

    monkeypatch.setattr(metadata, "version", missing)
    rc, out, _ = run_out(["--version"], capsys)
    assert rc == 0
    assert out.startswith("appeals (version unknown") and cli.DISTRIBUTION == "citizen-appeals"
