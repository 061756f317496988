"""A dev-stack server whose port another program has is an error, not a dead child
(streams.devstack).

redis-server and Tansu exit when they cannot bind; the other program answered the start-up
check, so ``start_redis``/``start_broker`` returned a server that was already gone.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import devstack

pytestmark = pytest.mark.integration


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port another program listens on (as a server does: SO_REUSEADDR)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


@pytest.mark.parametrize("start", [devstack.start_redis, devstack.start_broker])
def test_a_requested_port_in_use_is_reported(start: object, squatter: int,
                                             tmp_path: Path) -> None:
    with pytest.raises(devstack.PortInUse, match=f"127.0.0.1:{squatter} is already in use"):
        start(port=squatter, log_dir=tmp_path)  # type: ignore[operator]
    assert issubclass(devstack.PortInUse, devstack.DevStackError)  # what the demo catches


@pytest.mark.parametrize("start", [devstack.start_redis, devstack.start_broker])
def test_a_free_port_taken_before_the_server_binds_it_is_replaced(
        start: object, squatter: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first port free_port finds is taken by the time the child binds: the child exits,
    the port still answers, and the start is tried again on another free port."""
    ports = iter([squatter])
    real_free_port = devstack.free_port
    monkeypatch.setattr(devstack, "free_port", lambda: next(ports, None) or real_free_port())
    server = start(log_dir=tmp_path)  # type: ignore[operator]
    try:
        assert server.port != squatter
        assert server.alive()
        with socket.create_connection(("127.0.0.1", server.port), 1.0):
            pass
    finally:
        server.stop()


def test_the_foreign_listener_is_found_by_the_start_up_check(squatter: int,
                                                             tmp_path: Path) -> None:
    """Without the check before the start (a port taken in between), the start-up wait itself
    tells the other program from the child."""
    with pytest.raises(devstack.PortInUse, match="in use by another program"):
        devstack._start_redis(squatter, tmp_path, timeout=10.0)
