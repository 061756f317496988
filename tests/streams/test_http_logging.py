"""What the HTTP servers' own error logs may say (streams/http_logging.py).

aiohttp logged a malformed request at ERROR with the peer's address and a traceback quoting the
offending request bytes (a name or phone number in a path or header went to the log as sent),
once per request; asyncio logged every failed accept() with a traceback, thousands a second
once the process ran out of file descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitoring import metrics
from streams.http_logging import HttpErrorLogFilter, install_http_log_filters

PD = b"Sekretov_+79137770011"
MALFORMED = (
    b"GET /v1/appeals/" + PD + b" HTTP/1.1\r\nHost: x\r\nX-Bad\x01: " + PD + b"\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: x\r\nX-Ok: " + PD + b"\x00\r\n\r\n",
    b"POST /v1/appeals HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\nX-Who: " + PD + b"\r\n\r\nhello",
    b"G\x00T /" + PD + b" HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: x\r\nX-Long: " + PD * 500 + b"\r\n\r\n",
)


async def send_raw(host: str, port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(200), 10)
    writer.close()
    return answer


def malformed_requests_leave_no_bytes(app: web.Application, server: str,
                                      caplog: pytest.LogCaptureFixture,
                                      **runner: Any) -> None:
    """Send every malformed request to ``app`` served as its process serves it (``runner``:
    the access log options); the log keeps one line, naming no byte."""
    before = metrics.HTTP_BAD_REQUESTS.labels(server)._value.get()
    caplog.set_level(logging.DEBUG)

    async def go() -> list[bytes]:
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server(**runner)
        try:
            return [await send_raw("127.0.0.1", test_server.port or 0, raw) for raw in MALFORMED]
        finally:
            await test_server.close()

    answers = asyncio.run(go())
    assert all(a.split(b"\r\n")[0].endswith(b" 400 Bad Request") for a in answers), answers
    text = caplog.text + "".join(
        f"{r.getMessage()} {r.exc_info} {r.exc_text}" for r in caplog.records)
    for needle in ("79137770011", "Sekretov", "127.0.0.1", "Traceback"):
        assert needle not in text, needle
    lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(lines) == 1 and lines[0].getMessage().startswith("bad HTTP request: ")
    assert lines[0].exc_info is None and lines[0].levelno <= logging.WARNING
    assert metrics.HTTP_BAD_REQUESTS.labels(server)._value.get() - before == len(MALFORMED)


def test_the_api_logs_no_bytes_of_a_malformed_request(redis_server: object,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import redis.asyncio as aioredis

    from tests.api.api_support import api_settings
    from workers.api.app import create_app

    url = redis_server.url  # type: ignore[attr-defined]
    app = create_app(api_settings(url), aioredis.Redis.from_url(url))
    malformed_requests_leave_no_bytes(app, "api", caplog, access_log=None)  # as run_api


def test_the_gateway_logs_no_bytes_of_a_malformed_request(
        caplog: pytest.LogCaptureFixture) -> None:
    from streams.settings import Settings
    from tests.intake.gateway_support import gateway_config
    from workers.intake.gateway import create_app, runner_options

    app = create_app(Settings.load({}), gateway_config(), producer=object(), redis=object())
    app.on_startup.clear()  # neither Kafka nor Redis: no request reaches a handler
    app.on_cleanup.clear()
    malformed_requests_leave_no_bytes(app, "gateway", caplog, **runner_options())


def test_accept_errors_are_one_line_a_minute_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    """asyncio's "socket.accept() out of system resource" (EMFILE), once per retry."""
    now = [1000.0]
    installed = install_http_log_filters("api")
    installed.clock = lambda: now[0]
    before = metrics.HTTP_ACCEPT_ERRORS.labels("api")._value.get()
    caplog.set_level(logging.DEBUG)
    sock = socket.socket()
    loop = asyncio.new_event_loop()
    try:
        for at in (1000.0, 1001.0, 1030.0, 1061.0):
            now[0] = at
            try:
                raise OSError(24, "Too many open files")
            except OSError as exc:
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource", "exception": exc,
                    "socket": sock})
        loop.call_exception_handler({"message": "something else entirely"})
    finally:
        loop.close()
        sock.close()
    accept = [r for r in caplog.records if "accept" in r.getMessage()]
    assert [r.getMessage() for r in accept] == [
        "cannot accept connections: OSError (out of file descriptors or memory: too many "
        "connections open?)",
        "cannot accept connections: OSError (out of file descriptors or memory: too many "
        "connections open?) (2 more since the last such line)"]
    assert all(r.exc_info is None for r in accept)
    assert "laddr" not in caplog.text and "Traceback" not in caplog.text
    assert any(r.getMessage() == "something else entirely" for r in caplog.records)
    assert metrics.HTTP_ACCEPT_ERRORS.labels("api")._value.get() - before == 4


def test_a_server_error_keeps_its_place_not_its_message(
        caplog: pytest.LogCaptureFixture) -> None:
    """An exception outside the handlers (the access log failing, say): where, not what."""
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("aiohttp.server")
    filt = HttpErrorLogFilter("gateway")
    logger.addFilter(filt)
    try:
        try:
            raise ValueError(PD.decode())
        except ValueError:
            logger.exception("Error handling request from %s", "10.1.2.3")
        logger.debug("Ignored premature client disconnection")
    finally:
        logger.removeFilter(filt)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("HTTP server error: ValueError at ")
    assert "test_http_logging.py" in messages[0]
    assert messages[1] == "Ignored premature client disconnection"
    assert "79137770011" not in caplog.text and "10.1.2.3" not in caplog.text
