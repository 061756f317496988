"""Safe, bounded logging of the HTTP servers' own errors (the intake gateway and the API).

Why: aiohttp logs a malformed request on ``aiohttp.server`` ("Error handling request from
<peer>") with a traceback whose exception text quotes the offending request line or header
bytes: whatever a client sent (a name, a phone number in a path or a header) went to the log
with the client's address, at ERROR, once per request (at DEBUG also for a bad method). And a
process out of file descriptors (a connection flood) has asyncio log "socket.accept() out of
system resource" with a traceback for every accept it retries: thousands of lines a second.

:class:`HttpErrorLogFilter` turns each into one line naming the exception class only (no
request bytes, no peer, no traceback), writes at most one such line per kind every
:data:`LOG_INTERVAL_S` seconds, saying how many it left out, and counts every one in
``appeals_http_bad_requests_total{server}``, ``appeals_http_accept_errors_total{server}`` or
``appeals_http_server_errors_total{server}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

from monitoring import metrics
from streams.log_limit import LOG_INTERVAL_S, LogLimiter

#: The logger aiohttp's server writes request-handling errors to.
AIOHTTP_SERVER = "aiohttp.server"
#: asyncio's message when ``accept()`` fails for lack of descriptors or memory.
ACCEPT_ERROR = "socket.accept() out of system resource"


class HttpErrorLogFilter(logging.Filter):
    """Rewrites (or drops) the records of one server's HTTP errors; see the module doc."""

    def __init__(self, server: str, interval: float = LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.server, self.clock = server, clock
        # Through ``self``: the clock may be set after construction (tests do).
        self._limiter = LogLimiter(interval, lambda: self.clock())

    @property
    def interval(self) -> float:
        return self._limiter.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self._limiter.interval = value

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == AIOHTTP_SERVER and record.exc_info:
            exc = record.exc_info[1]
            if isinstance(exc, HttpProcessingError):
                # A client's mistake, not ours: a warning at most (aiohttp logs a bad method
                # at DEBUG, port scanners' noise, and that stays so).
                metrics.HTTP_BAD_REQUESTS.labels(self.server).inc()
                return self._rewrite(record, "bad_request", min(record.levelno, logging.WARNING),
                                     "bad HTTP request: %s", type(exc).__name__)
            # A handler or the access log failed: say where, never the exception's message
            # (it may quote the request) or the peer.
            if record.levelno >= logging.ERROR:
                metrics.HTTP_SERVER_ERRORS.labels(self.server).inc()
            return self._rewrite(record, "server_error", record.levelno,
                                 "HTTP server error: %s at %s", *_where(exc))
        if record.name == "asyncio" and isinstance(record.msg, str) and (
                record.msg.startswith(ACCEPT_ERROR)):
            exc = record.exc_info[1] if record.exc_info else None
            metrics.HTTP_ACCEPT_ERRORS.labels(self.server).inc()
            return self._rewrite(record, "accept", logging.ERROR,
                                 "cannot accept connections: %s (out of file descriptors or "
                                 "memory: too many connections open?)",
                                 type(exc).__name__ if exc else "error")
        return True

    def _rewrite(self, record: logging.LogRecord, kind: str, level: int, msg: str,
                 *args: object) -> bool:
        skipped = self._limiter.allow(kind)
        if skipped is None:
            return False
        if skipped:
            msg += f" ({skipped} more since the last such line)"
        record.msg, record.args = msg, args
        record.levelno, record.levelname = level, logging.getLevelName(level)
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def _where(exc: BaseException | None) -> tuple[str, str]:
    """The exception's class and innermost frame (file:line function): enough to find a bug."""
    if exc is None:
        return "error", "?"
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__name__, "?"
    code = tb.tb_frame.f_code
    return type(exc).__name__, f"{code.co_filename}:{tb.tb_lineno} {code.co_name}"


def install_http_log_filters(server: str) -> HttpErrorLogFilter:
    """Put a filter for ``server`` (``gateway`` or ``api``) on ``aiohttp.server`` and
    ``asyncio``, replacing one installed before (one process serves one of them; tests may
    build both)."""
    new = HttpErrorLogFilter(server)
    for name in (AIOHTTP_SERVER, "asyncio"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, HttpErrorLogFilter)]:
            logger.removeFilter(old)
        logger.addFilter(new)
    return new
