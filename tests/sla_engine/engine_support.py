"""Inputs of the SLA engine's unit tests: rules, routed records and lifecycle events.

The engine (``workers.sla.engine``) is driven here without the agent: a routed record starts
a state, lifecycle events and ticks move it. Most of these tests need the same simple inputs
(one appeal ``a1`` of body ``A`` under parent ``P``, thirty-day deadlines or the packaged
policy book); they are built here once, so that a field the engine starts to read is added in
one place. Each test file keeps what is particular to it (its own rules, moments, bodies).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import SlaRules

DAY = 86400.0
TZ = "Asia/Barnaul"
#: Mon 2 Mar 2026, 10:00 in Barnaul.
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()


def thirty_day_rules(**extra: Any) -> SlaRules:
    """Every regime due thirty calendar days after its start; an extension adds whole days.
    ``extra`` sets the other rules (``warning_share``, ``escalation_after``, ``zone_of``)."""
    return SlaRules(due=lambda regime, start, *_: start + 30 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY, **extra)


SIMPLE = thirty_day_rules()
#: The packaged policy book's deadlines (business days, holidays, extension limits).
BOOK = DeadlineService().rules()


def routed(regime: str = "fz59", authority: str = "A", **extra: Any) -> dict[str, Any]:
    """The routed record of appeal ``a1`` (roads, region 22) to ``authority`` under ``P``;
    ``extra`` overrides or adds fields."""
    return {"appeal_id": "a1", "regime": regime, "region": "22", "authority_id": authority,
            "parent_authority_id": "P", "category": "roads", "urgent": False, **extra}


def ev(event: str, at: float, n: int, **extra: Any) -> dict[str, Any]:
    """Lifecycle event ``e<n>`` of appeal ``a1`` stamped ``at`` (Unix seconds)."""
    return {"event_id": f"e{n}", "appeal_id": "a1", "event": event,
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), **extra}


_NUMBERS = itertools.count(1)


def next_ev(event: str, at: float, **extra: Any) -> dict[str, Any]:
    """:func:`ev` with the next number of a counter this process shares: every event new."""
    return ev(event, at, next(_NUMBERS), **extra)
