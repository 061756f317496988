"""The demo's output, kept going after its terminal is gone.

When the terminal closes, the kernel sends SIGHUP and every later write to it fails with EIO.
The demo's SIGHUP handler moved the output to a file, but asyncio runs that handler on a later
loop turn: a print already scheduled for this turn still went to the terminal, raised EIO and
ended the demo with exit 1, no drain and no summary (seen once in CI, session 15). So the
switch happens where the write fails, as well as from the handler.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class HangupOutput:
    """Where the demo's output goes once the terminal is gone: one file for stdout and
    stderr, opened on the first need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: TextIO | None = None
        self._terminals: list[TextIO] = []

    def watch(self, terminal: TextIO) -> TerminalOrFile:
        self._terminals.append(terminal)
        return TerminalOrFile(terminal, self)

    def switch(self) -> TextIO:
        """Open the file (once) and point the log handlers that wrote to a terminal at it."""
        if self.file is None:
            self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            for handler in logging.getLogger().handlers:
                if (type(handler) is logging.StreamHandler
                        and (handler.stream in self._terminals
                             or isinstance(handler.stream, TerminalOrFile))):
                    # Not setStream: it flushes the old stream, which fails the same way.
                    with handler.lock or contextlib.nullcontext():
                        handler.stream = self.file
        return self.file


class TerminalOrFile(io.TextIOBase):
    """A text stream that writes to the terminal until a write fails, then to the file."""

    def __init__(self, terminal: TextIO, hangup: HangupOutput) -> None:
        super().__init__()
        self._terminal = terminal
        self._hangup = hangup

    def write(self, text: str) -> int:
        if self._hangup.file is None:
            try:
                self._terminal.write(text)
                self._terminal.flush()
                return len(text)
            except OSError as exc:
                # Only a terminal that is gone: a closed pipe (`appeals demo | head`) still
                # ends the demo as it did.
                if exc.errno != errno.EIO:
                    raise
        return self._hangup.switch().write(text)

    def flush(self) -> None:
        if self._hangup.file is not None:
            self._hangup.file.flush()
            return
        try:
            self._terminal.flush()
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise

    def isatty(self) -> bool:
        return self._hangup.file is None and self._terminal.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8" if self._hangup.file is not None else self._terminal.encoding


@contextlib.contextmanager
def output_survives_hangup(path: Path) -> Iterator[HangupOutput]:
    """Wrap sys.stdout and sys.stderr for the length of the block; after a hang-up they stay
    on the file, since the terminal will not come back."""
    hangup = HangupOutput(path)
    saved = sys.stdout, sys.stderr
    sys.stdout = hangup.watch(sys.stdout)
    sys.stderr = hangup.watch(sys.stderr)
    try:
        yield hangup
    finally:
        if hangup.file is None:
            sys.stdout, sys.stderr = saved
        else:  # the terminal is gone for good: whatever is printed later goes to the file
            sys.stdout = sys.stderr = hangup.file

