"""Keep the deadline tests independent of the developer's environment."""

from __future__ import annotations

import pytest

from workers.deadlines.calendar import CALENDAR_FILE_ENV
from workers.deadlines.compute import default_calendar
from workers.deadlines.policies import POLICY_FILE_ENV


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A calendar or policy file in the caller's shell would change every expected value.
    monkeypatch.delenv(CALENDAR_FILE_ENV, raising=False)
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    default_calendar.cache_clear()
