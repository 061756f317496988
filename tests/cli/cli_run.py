"""Running ``appeals`` in-process for the CLI tests: the exit status and stderr of a command,
however it ends (a return value or ``SystemExit``)."""

from __future__ import annotations

from typing import Any

from workers import cli


def run(argv: list[str], capsys: Any) -> tuple[int, str]:
    """Exit status and stderr of ``appeals *argv``; an exception escaping is the failure."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 2
    return rc, capsys.readouterr().err
