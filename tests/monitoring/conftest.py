"""Fixtures for the monitoring checks (helpers live in monitoring_support.py)."""

from __future__ import annotations

import pytest
from monitoring_support import require_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_tool("amtool")
