"""A scratch directory for the logs of the servers a benchmark starts (``streams.devstack``).

Why: started without a log directory, the broker and Redis write their logs to the system's
temporary directory, and every benchmark run left a ``tansu-*.log`` or ``redis-*.log`` there.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def server_logs() -> Iterator[Path]:
    """A fresh directory, removed when the benchmark ends well.

    Kept, and named on stderr, when it ended with an error: a server that did not start or
    stalled says why in its log (the error names the log file)."""
    path = Path(tempfile.mkdtemp(prefix="appeals-bench-logs-"))
    try:
        yield path
    except BaseException:
        print(f"server logs kept in {path}", file=sys.stderr)
        raise
    shutil.rmtree(path, ignore_errors=True)
