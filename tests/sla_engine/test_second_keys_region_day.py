"""A place's and a category's figures are bucketed on the region's local day.

The API cuts ``muni:`` and ``cat:`` windows on the region's day, but the engine bucketed them on
the day in the authority's zone: an answer 22-minzdrav (Vladivostok, three hours ahead of
Barnaul) gave at 22:00 Barnaul time counted in its own 1d figures and was missing from those
of Barnaul and of healthcare until the region's day turned (review of session 17).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.sla_engine.engine_support import DAY, thirty_day_rules
from workers.sla.engine import apply_lifecycle, keyed_contributions, new_state

OWN = "Asia/Vladivostok"
RULES = thirty_day_rules(zone_of=lambda authority: None)
# 15:00 UTC: 22:00 in Barnaul (10 March), 01:00 in Vladivostok (11 March).
LATE_EVENING = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def _routed() -> dict[str, Any]:
    return {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "22-minzdrav",
            "municipality": "barnaul", "category": "healthcare"}


def _days(counted: list[tuple[str, str, str]], counter: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for subject, day, name in counted:
        if name == counter:
            out.setdefault(subject, []).append(day)
    return out


def test_an_answer_of_a_body_with_its_own_zone_counts_on_the_regions_day() -> None:
    state, _ = new_state(_routed(), 0, LATE_EVENING.timestamp() - 5 * DAY, OWN, RULES)
    apply_lifecycle(state, {"event_id": "e1", "appeal_id": "a1", "event": "answered",
                            "at": LATE_EVENING.isoformat()}, RULES)
    answered = _days(keyed_contributions(state), "answered")
    assert answered == {"22-minzdrav": ["2026-03-11"], "muni:barnaul": ["2026-03-10"],
                        "cat:healthcare": ["2026-03-10"]}


def test_a_place_received_the_appeal_on_the_regions_day_of_its_registration() -> None:
    """Registered late in the evening at a body with its own zone, then redirected: the place
    and the category received it on the region's day of the registration."""
    state, _ = new_state(_routed(), 0, LATE_EVENING.timestamp(), OWN, RULES)
    received = _days(keyed_contributions(state), "received")
    assert received == {"22-minzdrav": ["2026-03-11"], "muni:barnaul": ["2026-03-10"],
                        "cat:healthcare": ["2026-03-10"]}
    apply_lifecycle(state, {"event_id": "e1", "appeal_id": "a1", "event": "redirected",
                            "to_authority_id": "22-minsoc",
                            "at": (LATE_EVENING + dt.timedelta(days=2)).isoformat()}, RULES)
    received = _days(keyed_contributions(state), "received")
    assert received["muni:barnaul"] == received["cat:healthcare"] == ["2026-03-10"]
    # Each body received it on its own day (22-minsoc keeps the zone: zone_of says none).
    assert (received["22-minzdrav"], received["22-minsoc"]) == (["2026-03-11"], ["2026-03-13"])


def test_a_body_in_the_regions_zone_is_counted_as_before() -> None:
    state, _ = new_state(_routed(), 0, LATE_EVENING.timestamp() - 5 * DAY, "Asia/Barnaul",
                         RULES)
    apply_lifecycle(state, {"event_id": "e1", "appeal_id": "a1", "event": "answered",
                            "at": LATE_EVENING.isoformat()}, RULES)
    counted = keyed_contributions(state)
    mine = sorted((d, c) for s, d, c in counted if s == "22-minzdrav")
    for subject in ("muni:barnaul", "cat:healthcare"):
        assert sorted((d, c) for s, d, c in counted if s == subject) == mine
