"""Running ``appeals`` in-process for the CLI tests: the exit status, stdout and stderr of a
command, however it ends (a return value or ``SystemExit``)."""

from __future__ import annotations

from typing import Any

from workers import cli


def run_out(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``appeals *argv``; an exception escaping is the failure.

    Both streams come from one ``capsys.readouterr()``: it empties the capture, so a caller
    that read stdout afterwards would see "" whatever the command printed.
    """
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run(argv: list[str], capsys: Any) -> tuple[int, str]:
    """Exit status and stderr of ``appeals *argv`` (see ``run_out`` for stdout too)."""
    rc, _, err = run_out(argv, capsys)
    return rc, err
