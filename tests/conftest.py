"""Shared fixtures: a real Kafka-protocol broker (Tansu) and a real Redis, started per session.

Nothing here is a fake: tests that need Kafka or Redis talk to real servers over TCP on loopback
ports, started by the project's own dev stack (``streams.devstack``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.devstack import Broker, RedisServer, start_broker, start_redis

LOG_DIR = Path(os.environ.get("APPEALS_TEST_LOG_DIR", "var/test-logs"))


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    server = start_broker(log_dir=LOG_DIR)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis(log_dir=LOG_DIR)
    yield server
    server.stop()
