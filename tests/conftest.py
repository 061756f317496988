"""Shared fixtures: a real Kafka-protocol broker (Tansu) and a real Redis, started per session.

Nothing here is a fake: tests that need Kafka or Redis talk to real servers over TCP on loopback
ports, started by the project's own dev stack (``streams.devstack``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from streams.devstack import Broker, RedisServer, start_broker, start_redis

# CI runs the property tests on a fixed sequence of examples, so a submission's result does not
# depend on the draw; developers' runs keep exploring new examples (and hypothesis prints the
# failing example to add as an explicit case when one turns up).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

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
