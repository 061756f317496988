"""An authority's own time zone (rules: ``timezone:``) reaches the SLA clock.

The routing decision carried it, but the routed record had no field for it, so the SLA stage
counted every deadline in the catalogue zone of the region: an authority working on Moscow
time in a Barnaul region got its deadline four hours early.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

from schemas.validation import validate
from streams.settings import Settings
from workers.route.agent import routed_record
from workers.routing import RouteInput, Router, load_rules
from workers.sla.agent import appeal_zone, sla_rules
from workers.sla.deadline_service import DeadlineService, load_book
from workers.sla.engine import apply_lifecycle, new_state

RULES = Path(__file__).resolve().parents[2] / "workers/routing/data/22-altai-krai.yaml"


def _rules_with_moscow_health_ministry(tmp_path: Path) -> Path:
    src = RULES.read_text(encoding="utf-8")
    assert "  - id: 22-minzdrav\n" in src
    path = tmp_path / "22.yaml"
    path.write_text(src.replace("  - id: 22-minzdrav\n",
                                "  - id: 22-minzdrav\n    timezone: Europe/Moscow\n"),
                    encoding="utf-8")
    return path


def test_routed_record_carries_the_authority_zone_and_the_sla_counts_in_it(
        tmp_path: Path) -> None:
    rules = load_rules(_rules_with_moscow_health_ministry(tmp_path))
    decision = Router(rules).route(RouteInput("a1", "22", "healthcare"))
    assert decision.authority_id == "22-minzdrav"
    appeal = {"appeal_id": "a1", "regime": "fz59", "region": "22",
              "registered_at": "2026-03-02T15:30:00+00:00"}
    record = orjson.loads(routed_record(appeal, decision, "healthcare", False, 0.9,
                                        "m").to_json())
    validate("routed-appeal", record)
    assert record["timezone"] == "Europe/Moscow"
    tz = appeal_zone(record["region"], record.get("timezone"))
    assert tz == "Europe/Moscow"
    service = DeadlineService(load_book(rules.authorities.values()))
    start = dt.datetime.fromisoformat(appeal["registered_at"]).timestamp()
    due = service.due("fz59", start, tz, False, "22-minzdrav", "healthcare", None, "22")
    # Registered 2 Mar 2026 18:30 Moscow; day 30 is 1 Apr (Wed), end of day in Moscow.
    assert dt.datetime.fromtimestamp(due, dt.UTC) == dt.datetime(2026, 4, 1, 20, 59, 59,
                                                                  tzinfo=dt.UTC)


def test_zone_falls_back_to_the_region_for_no_or_an_unknown_zone() -> None:
    assert appeal_zone("22", None) == "Asia/Barnaul"
    assert appeal_zone("22", "Mars/Olympus") == "Asia/Barnaul"
    assert appeal_zone("22", "../../etc/passwd") == "Asia/Barnaul"
    assert appeal_zone("99999", None) == "Europe/Moscow"


def test_a_redirect_counts_the_receiving_body_deadline_in_its_own_zone(tmp_path: Path) -> None:
    """The first routing carried the authority's zone; a redirect kept the first body's."""
    rules = load_rules(_rules_with_moscow_health_ministry(tmp_path))
    router = Router(rules)
    service = DeadlineService(load_book(rules.authorities.values()))
    sla = sla_rules(service, Settings.load({}), router)
    start = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC).timestamp()
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, start, appeal_zone("22", None), sla)
    assert state["tz"] == "Asia/Barnaul"
    event = {"event_id": "e1", "appeal_id": "a1", "event": "redirected",
             "at": "2026-03-02T15:30:00+00:00", "to_authority_id": "22-minzdrav"}
    apply_lifecycle(state, event, sla, lambda a: router.authority(a).parent)
    assert (state["auth"], state["tz"]) == ("22-minzdrav", "Europe/Moscow")
    # As if routed to it first: day 30 is Wed 1 Apr, end of day in Moscow.
    assert dt.datetime.fromtimestamp(state["due"], dt.UTC) == dt.datetime(
        2026, 4, 1, 20, 59, 59, tzinfo=dt.UTC)
    # A body the rules don't know keeps the appeal's zone.
    assert sla.zone_of is not None and sla.zone_of("22-nobody") is None
