"""A worker or API pointed at a Redis it cannot reach says so once at start-up, naming the
setting and the address, never the password (review: `appeals worker --redis
redis://127.0.0.1:1/0` logged ~200 warnings in 90 s naming neither; the API only "rating
refresh failed: ConnectionError"). Running without Redis stays allowed: a warning, not an exit.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from streams.urls import redacted_url
from tests.cli.cli_run import run

SECRET = "s3cret-pw"


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://:{SECRET}@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
    (f"redis://ops:{SECRET}@redis.internal/2", "redis://ops:***@redis.internal/2"),
    (f"rediss://ops:{SECRET}@[::1]:6380/0", "rediss://ops:***@[::1]:6380/0"),
    (f"redis://{SECRET}@redis.internal:6379/0", "redis://***@redis.internal:6379/0"),
    (f"redis://h:6379/0?password={SECRET}&db=1", "redis://h:6379/0?password=***&db=1"),
    (f"unix:///run/redis.sock?password={SECRET}", "unix:///run/redis.sock?password=***"),
    (f"redis://:{SECRET}@h:port/0", "redis://***"),  # not parseable: the scheme only
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_redacted_url_never_shows_a_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run up to the point where they would serve, and return there."""
    import streams.topics
    import workers.api.app
    import workers.pipeline
    from workers import cli

    monkeypatch.delenv("APPEALS_CONFIG", raising=False)
    monkeypatch.setattr(streams.topics, "ensure_topics", lambda *_, **__: [])
    monkeypatch.setattr(cli, "broker_unreachable", lambda *_, **__: "")
    monkeypatch.setattr(workers.pipeline, "run_worker", lambda *_, **__: None)
    monkeypatch.setattr(workers.api.app, "run_api", lambda *_, **__: None)


def _redis_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "unreachable" in r.getMessage()]


@pytest.mark.parametrize("command", [["worker", "--metrics-port", "0"], ["api", "--port", "0"]],
                         ids=["worker", "api"])
def test_unreachable_redis_is_one_warning_naming_setting_and_host(
        command: list[str], no_servers: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    port = _closed_port()
    monkeypatch.setenv("APPEALS_REDIS", f"redis://:{SECRET}@127.0.0.1:{port}/0")
    with caplog.at_level(logging.WARNING):
        rc, err = run(command, capsys)
    assert rc == 0, err
    warnings = _redis_warnings(caplog)
    assert len(warnings) == 1, caplog.text
    assert warnings[0].startswith(
        f"APPEALS_REDIS=redis://:***@127.0.0.1:{port}/0 unreachable (ConnectionError): "
        "running without "), warnings[0]
    assert warnings[0].endswith(" until it is back")
    assert SECRET not in caplog.text and SECRET not in err


def test_the_redis_option_is_named_when_it_set_the_address(
        no_servers: None, caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    port = _closed_port()
    with caplog.at_level(logging.WARNING):
        rc, err = run(["api", "--port", "0", "--redis",
                       f"redis://ops:{SECRET}@127.0.0.1:{port}/0"], capsys)
    assert rc == 0, err
    assert _redis_warnings(caplog) == [
        f"--redis=redis://ops:***@127.0.0.1:{port}/0 unreachable (ConnectionError): running "
        "without the read model (requests that need it answer 503 unavailable; ratings are "
        "not refreshed) until it is back"]
    assert SECRET not in caplog.text and SECRET not in err


def test_a_redis_that_answers_is_no_warning(no_servers: None, redis_server: Any,
                                             monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture,
                                             capsys: Any) -> None:
    monkeypatch.setenv("APPEALS_REDIS", redis_server.url)
    with caplog.at_level(logging.WARNING):
        for command in (["worker", "--metrics-port", "0"], ["api", "--port", "0"]):
            rc, err = run(command, capsys)
            assert rc == 0, err
    assert _redis_warnings(caplog) == []
