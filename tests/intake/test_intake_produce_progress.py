"""`appeals produce`'s progress when stderr is not a terminal (review of the CLI, D9)."""

from __future__ import annotations

import io

from workers.intake import cli


def _lines(total: int) -> list[str]:
    stream = io.StringIO()  # not a tty: a line every 10 %
    progress = cli._Progress(stream, total, quiet=False)
    for done in range(1, total + 1):
        progress.update(done, done, 0)
    progress.update(total, total, 0, final=True)
    return stream.getvalue().splitlines()


def test_the_last_line_is_printed_once() -> None:
    lines = _lines(20)
    assert len(lines) == 11 and lines[-1].split("] ")[1].startswith("20/20 sent 20 ")
    assert sum("20/20" in line for line in lines) == 1


def test_the_final_call_prints_what_no_line_showed_yet() -> None:
    stream = io.StringIO()
    progress = cli._Progress(stream, 20, quiet=False)
    for done in range(1, 20):  # the 20th line was blank: no update for it
        progress.update(done, done, 0)
    progress.update(19, 19, 0, final=True)
    assert sum("19/20" in line for line in stream.getvalue().splitlines()) == 1
