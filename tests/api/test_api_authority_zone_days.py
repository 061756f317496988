"""An authority with a zone of its own has its windows cut on its own local day.

The SLA agent buckets an authority's figures on the day in the authority's zone (a region
spanning several zones names one per body), but the API cut every window on the region's day:
an answer given half an hour ago by a body three hours ahead of its region stayed out of the
1d window and the rating until the region's day turned too (review of session 16).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from streams.settings import Settings
from workers.aggregates.partials import PartitionAggregates
from workers.aggregates.readmodel import parse_maps
from workers.api.service import ApiService
from workers.routing import load_rules
from workers.routing.loader import default_rules_path


def _rules_with_zone(tmp_path: Path) -> object:
    source = next(Path(default_rules_path()).glob("22*.yaml"))
    text = source.read_text()
    anchor = "  - id: 22-minzdrav\n"
    assert anchor in text
    text = text.replace(anchor, anchor + "    timezone: Asia/Vladivostok\n", 1)
    path = tmp_path / source.name
    path.write_text(text)
    return load_rules(path)


def test_an_answer_on_the_bodys_own_day_counts_in_its_1d_window(tmp_path: Path) -> None:
    rules = _rules_with_zone(tmp_path)
    auth = rules.authorities["22-minzdrav"]  # type: ignore[attr-defined]
    assert auth.timezone == "Asia/Vladivostok"
    # 15:30 UTC: 22:30 in Barnaul (10 March), 01:30 in Vladivostok (11 March). The body
    # answered at 15:00 UTC, on 11 March in its own zone, where the SLA agent bucketed it.
    now = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC).timestamp()
    agg = PartitionAggregates()
    agg.apply_delta([], [("22-minzdrav", "2026-03-11", "answered"),
                         ("22-minzdrav", "2026-03-11", "answered_on_time"),
                         ("22-minzdrav", "2026-03-10", "received"),
                         ("22-mintrans", "2026-03-10", "answered"),
                         ("22-mintrans", "2026-03-10", "answered_on_time")])
    counters, _ = agg.to_redis()
    parsed = parse_maps([{k.encode(): str(v).encode() for k, v in counters.items()}], [])
    svc = ApiService(Settings.load({}), None, rules)  # type: ignore[arg-type]
    snap = svc._derive(rules, parsed, time.monotonic(), now)  # type: ignore[arg-type]
    own = svc.figures(snap, "22-minzdrav", "1d", "22")
    assert (own.answered, own.received) == (1, 0)
    assert svc.window_bounds(snap, "1d", "22", "22-minzdrav") == ("2026-03-11", "2026-03-11")
    assert svc.figures(snap, "22-minzdrav", "7d", "22").received == 1
    # A body in the region's zone still ends on the region's day.
    assert svc.figures(snap, "22-mintrans", "1d", "22").answered == 1
    assert svc.window_bounds(snap, "1d", "22", "22-mintrans") == ("2026-03-10", "2026-03-10")
    rated = {e.authority_id: e for e in snap.rating("22", "1d")}
    assert rated["22-minzdrav"].figures.answered == 1
    assert rated["22-mintrans"].figures.answered == 1


def test_the_same_answer_counts_in_the_places_and_the_categorys_1d_window(
        tmp_path: Path) -> None:
    """The SLA engine's contributions of an answer 22-minzdrav (Vladivostok) gave at 22:00
    Barnaul time, 01:00 its own: counted in its own 1d figures and, half an hour later, in
    those of its municipality and its category as well (they were bucketed on the body's
    day, and the API cuts a place's and a category's windows on the region's)."""
    from workers.sla.engine import SlaRules, apply_lifecycle, keyed_contributions, new_state

    rules = _rules_with_zone(tmp_path)
    sla = SlaRules(due=lambda regime, start, *_: start + 30 * 86400.0,
                   extend=lambda regime, due, days, *_: due + days * 86400.0)
    answered = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22",
              "authority_id": "22-minzdrav", "municipality": "barnaul",
              "category": "healthcare"}
    state, _ = new_state(routed, 0, answered.timestamp() - 5 * 86400.0, "Asia/Vladivostok",
                         sla)
    apply_lifecycle(state, {"event_id": "e1", "appeal_id": "a1", "event": "answered",
                            "at": answered.isoformat()}, sla)
    agg = PartitionAggregates()
    agg.apply_delta([], keyed_contributions(state))
    counters, _ = agg.to_redis()
    parsed = parse_maps([{k.encode(): str(v).encode() for k, v in counters.items()}], [])
    svc = ApiService(Settings.load({}), None, rules)  # type: ignore[arg-type]
    now = answered.timestamp() + 1800
    snap = svc._derive(rules, parsed, time.monotonic(), now)  # type: ignore[arg-type]
    for subject, region in (("22-minzdrav", "22"), ("muni:barnaul", "22"),
                            ("cat:healthcare", None)):
        assert svc.figures(snap, subject, "1d", region).answered == 1, subject
