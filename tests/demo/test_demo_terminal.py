"""The demo's output once the terminal is gone (workers/demo/terminal.py).

The pseudo-terminal test in tests/pipeline/test_demo_signals.py hits the race only sometimes
(a print on the same loop turn as the SIGHUP); these tests make the failing write happen
every time.
"""

from __future__ import annotations

import errno
import io
import logging
import sys
from pathlib import Path

from workers.demo.terminal import output_survives_hangup


class GoneTerminal(io.StringIO):
    """A terminal that works until hung up, then fails every write and flush with EIO."""

    def __init__(self) -> None:
        super().__init__()
        self.hung_up = False

    def write(self, text: str) -> int:
        if self.hung_up:
            raise OSError(errno.EIO, "Input/output error")
        return super().write(text)

    def flush(self) -> None:
        if self.hung_up:
            raise OSError(errno.EIO, "Input/output error")


def test_a_print_that_finds_the_terminal_gone_goes_to_the_file(
        tmp_path: Path) -> None:
    out, err = GoneTerminal(), GoneTerminal()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    handler = logging.StreamHandler(err)
    logging.getLogger().addHandler(handler)
    path = tmp_path / "after-hangup.log"
    try:
        with output_survives_hangup(path) as hangup:
            print("before", flush=True)
            out.hung_up = err.hung_up = True
            print("after, the live line", flush=True)  # raised EIO and ended the demo
            print("a warning", file=sys.stderr)
            logging.getLogger("demo-test").warning("logged after the hang-up")
            assert hangup.file is not None
        assert sys.stdout is hangup.file, "later prints would find the terminal gone again"
        print("after the block")
    finally:
        logging.getLogger().removeHandler(handler)
        sys.stdout, sys.stderr = saved
    assert out.getvalue() == "before\n"
    assert path.read_text().splitlines() == [
        "after, the live line", "a warning", "logged after the hang-up", "after the block"]


def test_without_a_hang_up_nothing_changes(tmp_path: Path) -> None:
    out = GoneTerminal()
    saved = sys.stdout
    sys.stdout = out
    path = tmp_path / "after-hangup.log"
    try:
        with output_survives_hangup(path):
            print("a line")
        assert sys.stdout is out
    finally:
        sys.stdout = saved
    assert out.getvalue() == "a line\n"
    assert not path.exists()


def test_the_sighup_handler_switches_before_any_write_fails(tmp_path: Path) -> None:
    out = GoneTerminal()
    saved = sys.stdout
    sys.stdout = out
    path = tmp_path / "after-hangup.log"
    try:
        with output_survives_hangup(path) as hangup:
            hangup.switch()
            print("to the file")
    finally:
        sys.stdout = saved
    assert out.getvalue() == ""
    assert path.read_text() == "to the file\n"


def test_a_closed_pipe_is_not_taken_for_a_hang_up(tmp_path: Path) -> None:
    """`appeals demo | head`: a broken pipe still ends the demo; only EIO (the terminal is
    gone) moves the output to the file."""
    import pytest

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    saved = sys.stdout
    sys.stdout = ClosedPipe()
    path = tmp_path / "after-hangup.log"
    try:
        with output_survives_hangup(path), pytest.raises(BrokenPipeError):
            print("a line")
    finally:
        sys.stdout = saved
    assert not path.exists()
