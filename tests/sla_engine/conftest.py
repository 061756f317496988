"""Fixtures of the SLA engine's unit tests (their inputs are in ``engine_support.py``)."""

from __future__ import annotations

import pytest

from workers.deadlines.calendar import CALENDAR_FILE_ENV
from workers.deadlines.compute import default_calendar
from workers.deadlines.policies import POLICY_FILE_ENV


@pytest.fixture
def packaged_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged calendar and policy book, whatever files the caller's shell names: the
    tests that expect the real holidays and policy numbers use it."""
    monkeypatch.delenv(CALENDAR_FILE_ENV, raising=False)
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    default_calendar.cache_clear()
