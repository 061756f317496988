"""Topic look-ups against a port that accepts TCP connections but never answers.

kafka-python waits 30 s for its first metadata answer whatever request timeout it is given;
`appeals sla recompute --timeout 3` and a worker's start-up topic check must give up on the
time they were given (the operator asked for it), not on the library's.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from streams.settings import Settings
from streams.topics import ensure_topics, existing_topics


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connections are accepted and then never answered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_existing_topics_gives_up_after_its_timeout(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(Exception, match="bootstrap"):
        existing_topics(f"127.0.0.1:{silent_port}", timeout=2.0)
    # kafka-python's own bootstrap wait is 30 s; the margin is wide on a loaded machine.
    assert time.monotonic() - started < 20


def test_ensure_topics_gives_up_after_its_timeout(silent_port: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_KAFKA", f"kafka://127.0.0.1:{silent_port}")
    settings = Settings.load()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot reach Kafka"):
        ensure_topics(settings, timeout=2.0)
    assert time.monotonic() - started < 20
