"""Second keys, day windows, expiry of old days and the sketch's stated accuracy."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from workers.aggregates.partials import PartitionAggregates, oldest_kept_day
from workers.aggregates.readmodel import figures_from_maps, subject_kind
from workers.aggregates.sketch import RELATIVE_ACCURACY, Sketch
from workers.sla.engine import SlaRules, contributions, keyed_contributions, new_state, subjects

DAY = 86400.0
TZ = "Asia/Barnaul"


def _rules() -> SlaRules:
    return SlaRules(due=lambda regime, start, *_: start + 30 * DAY,
                    extend=lambda regime, due, days, *_: due + days * DAY)


def _routed(**extra: object) -> dict[str, object]:
    base = {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "22-minzdrav",
            "category": "healthcare", "municipality": "barnaul"}
    base.update(extra)
    return base


def test_second_keys_repeat_every_contribution() -> None:
    state, _ = new_state(_routed(), 0, 1_750_000_000.0, TZ, _rules())
    assert subjects(state) == ["22-minzdrav", "muni:barnaul", "cat:healthcare"]
    base = contributions(state)
    keyed = keyed_contributions(state)
    assert len(keyed) == 3 * len(base)
    for subject in subjects(state):
        assert sorted((d, c) for s, d, c in keyed if s == subject) == sorted(
            (d, c) for _, d, c in base)


def test_states_without_municipality_still_work() -> None:
    """Backward compatible: states written before ``muni`` existed lack the key."""
    state, _ = new_state(_routed(municipality=None), 0, 1_750_000_000.0, TZ, _rules())
    old = {k: v for k, v in state.items() if k != "muni"}
    assert subjects(old) == ["22-minzdrav", "cat:healthcare"]
    assert len(keyed_contributions(old)) == 2 * len(contributions(old))


def test_subject_kinds() -> None:
    assert [subject_kind(s) for s in ("22-cur", "muni:barnaul", "cat:roads")] == [
        "authority", "muni", "cat"]


def _maps(agg: PartitionAggregates) -> tuple[list[dict[bytes, bytes]], list[dict[bytes, bytes]]]:
    counters, sketches = agg.to_redis()
    return ([{k.encode(): str(v).encode() for k, v in counters.items()}],
            [{k.encode(): v for k, v in sketches.items()}])


def test_windows_count_whole_local_days_ending_today() -> None:
    today = dt.date(2026, 3, 31)
    agg = PartitionAggregates()
    for back in (0, 1, 6, 7, 29, 30):
        day = (today - dt.timedelta(days=back)).isoformat()
        agg.apply_delta([], [("a", day, "answered"), ("muni:m", day, "answered")])
        agg.add_response("a", day, 3600.0 * (back + 1))
    agg.apply_delta([], [("a", "", "open"), ("a", "", "open_overdue")])
    c, s = _maps(agg)
    for window, expected in (("1d", 1), ("7d", 3), ("30d", 5), ("all", 6)):
        figs = figures_from_maps(c, s, today, window)
        assert set(figs) == {"a"}  # second keys are not authorities
        assert figs["a"].answered == expected, window
        assert figs["a"].sketch.count == expected
        assert figs["a"].open == 1 and figs["a"].open_overdue == 1  # current in every window
        assert figures_from_maps(c, s, today, window, "muni")["muni:m"].answered == expected
    week_ago = figures_from_maps(c, s, today - dt.timedelta(days=7), "7d")
    assert week_ago["a"].answered == 1  # only the day 7 back is in the previous week


def test_expiry_drops_old_days_and_never_goes_negative() -> None:
    now = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC).timestamp()
    oldest = oldest_kept_day(now)
    assert oldest == "2026-02-21"  # 38 days: 30-day window + a week of trend + a day of slack
    agg = PartitionAggregates()
    agg.apply_delta([], [("a", "2026-01-01", "answered"), ("a", "2026-03-30", "answered"),
                         ("a", "2026-01-01", "received")])
    agg.add_response("a", "2026-01-01", 10.0)
    agg.dirty = False
    assert agg.expire(oldest) == 3
    assert agg.dirty
    assert dict(agg.counters) == {("a", "2026-03-30", "answered"): 1}
    # A reopened answer of January must not leave a -1 behind in an expired bucket.
    agg.apply_delta([("a", "2026-01-01", "answered"), ("a", "2026-01-01", "received")],
                    [("a", "2026-01-01", "received")])
    assert all(n > 0 for n in agg.counters.values())
    agg.add_response("a", "2026-01-02", 5.0)
    assert ("a", "2026-01-02") not in agg.sketches
    assert agg.expire(oldest) == 0  # same cut-off: nothing to do


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sketch_quantiles_within_stated_accuracy(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(11, 1.2) for _ in range(20_000)]  # hours to weeks
    halves = Sketch(), Sketch()
    for i, v in enumerate(values):
        halves[i % 2].add(v)
    merged = Sketch.merged(halves)  # mergeable: the halves give the whole
    exact = sorted(values)
    for q in (0.1, 0.5, 0.9, 0.99):
        true = exact[int(q * (len(exact) - 1))]
        got = merged.quantile(q)
        assert got is not None
        assert abs(got - true) <= RELATIVE_ACCURACY * true * 1.0001, q
    round_trip = Sketch.from_json_map(merged.to_json_map())
    assert round_trip.quantile(0.9) == merged.quantile(0.9)


def test_redirected_overdue_is_a_day_counter_of_its_window() -> None:
    today = dt.date(2026, 3, 31)
    agg = PartitionAggregates()
    for back in (0, 10):
        day = (today - dt.timedelta(days=back)).isoformat()
        agg.apply_delta([], [("a", day, "redirected_overdue"), ("a", day, "answered")])
    c, s = _maps(agg)
    assert figures_from_maps(c, s, today, "7d")["a"].redirected_overdue == 1
    assert figures_from_maps(c, s, today, "30d")["a"].redirected_overdue == 2
    assert figures_from_maps(c, s, today, "30d")["a"].on_time_share == 0.0
