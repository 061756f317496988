"""The rating formula, ranking, minimum volume and the weekly change (pure functions)."""

from __future__ import annotations

import pytest

from workers.aggregates.rating import (
    RatingPolicy,
    past_backlog_estimate,
    rate,
    rate_with_trend,
    regional_mean,
    score,
)
from workers.aggregates.readmodel import AuthorityFigures


def fig(auth: str, answered: int, on_time: int, overdue: int = 0, breaches: int = 0,
        open_: int = 0) -> AuthorityFigures:
    return AuthorityFigures(auth, received=answered + overdue, answered=answered,
                            answered_on_time=on_time, open_overdue=overdue, breaches=breaches,
                            open=max(open_, overdue))


def test_score_matches_the_documented_formula() -> None:
    f = fig("a", answered=40, on_time=30, overdue=10, breaches=15)
    prior = 0.7
    value, shrunk, b, o = score(f, prior, RatingPolicy(min_volume=20)) or (0, 0, 0, 0)
    n = 50
    expected_shrunk = (30 + 10 * prior) / (n + 10)
    expected = 100 * expected_shrunk * (1 - 0.25 * 15 / n) * (1 - 0.25 * 10 / n)
    assert shrunk == pytest.approx(expected_shrunk)
    assert b == pytest.approx(0.3) and o == pytest.approx(0.2)
    assert value == round(expected, 1)


def test_below_minimum_volume_there_is_no_score_and_no_rank() -> None:
    figures = {"a": fig("a", 5, 5), "b": fig("b", 30, 20)}
    entries = {e.authority_id: e for e in rate(figures, ["a", "b", "c"],
                                               RatingPolicy(min_volume=20))}
    assert entries["a"].score is None and entries["a"].rank is None
    assert entries["c"].volume == 0 and not entries["c"].rated  # listed, without figures
    assert entries["b"].rank == 1


def test_one_quick_answer_cannot_top_the_table() -> None:
    """Shrinkage: a perfect small record ranks below a large, very good one."""
    figures = {"small": fig("small", 20, 20), "big": fig("big", 500, 490),
               "mid": fig("mid", 300, 150)}  # the region's mean is about 0.8
    entries = {e.authority_id: e for e in rate(figures, figures, RatingPolicy(min_volume=20))}
    assert entries["big"].rank == 1 and entries["small"].rank == 2


def test_not_answering_never_pays() -> None:
    """An appeal left overdue costs more than the same appeal answered late."""
    late = fig("late", answered=50, on_time=40, overdue=0, breaches=10)
    silent = fig("silent", answered=40, on_time=40, overdue=10, breaches=10)
    prior = 0.8
    assert score(silent, prior)[0] < score(late, prior)[0]  # type: ignore[index]


def test_regional_mean_is_volume_weighted_and_defaults() -> None:
    assert regional_mean([fig("a", 10, 10), fig("b", 30, 0)]) == pytest.approx(0.25)
    assert regional_mean([]) == 0.5


def test_ties_share_a_rank_and_order_is_stable() -> None:
    figures = {"b": fig("b", 30, 30), "a": fig("a", 30, 30), "c": fig("c", 30, 10)}
    entries = rate_with_trend(figures, {}, ["a", "b", "c"], RatingPolicy(min_volume=20))
    assert [(e.authority_id, e.rank) for e in entries] == [("a", 1), ("b", 1), ("c", 3)]


def test_trend_compares_with_the_window_ending_a_week_ago() -> None:
    policy = RatingPolicy(min_volume=20)
    now = {"a": fig("a", 40, 36), "b": fig("b", 40, 20)}
    before = {"a": fig("a", 40, 20, breaches=20), "b": fig("b", 40, 36)}
    entries = {e.authority_id: e for e in rate_with_trend(now, before, ["a", "b"], policy)}
    assert entries["a"].trend is not None and entries["a"].trend > 0
    assert entries["a"].rank_change == 1 and entries["b"].rank_change == -1
    expected_prev = {e.authority_id: e.score for e in
                     rate({k: past_backlog_estimate(v) for k, v in before.items()},
                          ["a", "b"], policy)}
    assert entries["a"].previous_score == expected_prev["a"]


def test_past_backlog_is_estimated_from_unanswered_breaches() -> None:
    past = past_backlog_estimate(fig("a", answered=30, on_time=25, breaches=8))
    assert past.open_overdue == 3  # 8 breaches, 5 of them answered late in the window
    assert past_backlog_estimate(fig("a", 30, 20, breaches=4)).open_overdue == 0


def test_passing_an_overdue_appeal_on_counts_like_leaving_it_open() -> None:
    """An appeal redirected onwards past the body's deadline (``redirected_overdue``) is in
    the volume and the backlog term exactly like one left open or closed unanswered: before,
    a body that sat on appeals and then redirected them dropped out of its own share."""
    left = fig("left", answered=40, on_time=40, overdue=10, breaches=10)
    passed_on = AuthorityFigures("passed", received=50, answered=40, answered_on_time=40,
                                 breaches=10, redirected_overdue=10)
    closed = AuthorityFigures("closed", received=50, answered=40, answered_on_time=40,
                              breaches=10, closed_overdue=10)
    assert passed_on.on_time_share == closed.on_time_share == left.on_time_share == 0.8
    assert passed_on.to_dict()["redirected_overdue"] == 10
    prior = 0.8
    assert score(passed_on, prior) == score(closed, prior) == score(left, prior)
    # The past window's backlog: those breaches were settled by the redirect.
    assert past_backlog_estimate(passed_on).open_overdue == 0


def _day_maps(days: dict[str, list[tuple[str, str, str]]],
              backlog: dict[str, int]) -> list[dict[bytes, bytes]]:
    from workers.aggregates.partials import PartitionAggregates

    agg = PartitionAggregates()
    for contributions in days.values():
        agg.apply_delta([], contributions)
    for auth, n in backlog.items():
        agg.apply_delta([], [(auth, "", "open"), (auth, "", "open_overdue")] * n)
    counters, _ = agg.to_redis()
    return [{k.encode(): str(v).encode() for k, v in counters.items()}]


def _trends(maps: list[dict[bytes, bytes]], today: object, ids: list[str],
            window: str = "30d") -> dict[str, object]:
    import datetime as dt

    from workers.aggregates.readmodel import figures_from_maps
    from workers.api.service import TREND_DAYS, TREND_WINDOW

    assert isinstance(today, dt.date)
    now = figures_from_maps(maps, [], today, window)
    week_ago = figures_from_maps(maps, [], today - dt.timedelta(days=TREND_DAYS), window)
    since = figures_from_maps(maps, [], today, TREND_WINDOW)
    return {e.authority_id: e for e in rate_with_trend(now, week_ago, ids, RatingPolicy(),
                                                       since)}


def test_an_unchanged_old_backlog_gives_no_trend() -> None:
    """Two bodies answer ten appeals a day on time; one also carries the same 50 appeals
    overdue since two months ago. The past window counted only its own breaches, so that body
    had a previous score of 100, a trend of -17 and lost its rank with nothing changed
    (review of session 16)."""
    import datetime as dt

    today = dt.date(2026, 3, 31)
    days = {}
    for back in range(45):
        day = (today - dt.timedelta(days=back)).isoformat()
        days[day] = [(a, day, c) for a in ("22-a", "22-b")
                     for c in ("received", "answered", "answered_on_time")] * 10
    for window in ("1d", "7d", "30d"):
        entries = _trends(_day_maps(days, {"22-a": 50}), today, ["22-a", "22-b"], window)
        a = entries["22-a"]
        assert a.score is not None and a.score < 100  # type: ignore[attr-defined]
        assert a.trend == 0.0 and a.rank_change == 0, window  # type: ignore[attr-defined]


def test_the_past_backlog_walks_back_over_breaches_and_late_settlements() -> None:
    """Today 30 overdue: 20 of them breached this week, and this week 5 older overdue ones
    were answered late and 3 closed unanswered: a week ago the body had 30 - 20 + 5 + 3 = 18."""
    import datetime as dt

    from workers.aggregates.rating import past_backlog
    from workers.aggregates.readmodel import figures_from_maps

    today = dt.date(2026, 3, 31)
    recent = (today - dt.timedelta(days=2)).isoformat()
    days = {recent: [("22-a", recent, "breaches")] * 20
            + [("22-a", recent, "answered")] * 5 + [("22-a", recent, "closed_overdue")] * 3}
    maps = _day_maps(days, {"22-a": 30})
    since = figures_from_maps(maps, [], today, "7d")["22-a"]
    past = figures_from_maps(maps, [], today - dt.timedelta(days=7), "30d").get("22-a")
    assert past_backlog(past or AuthorityFigures("22-a"), since, 30).open_overdue == 18
    assert past_backlog(AuthorityFigures("22-a"), None, 4).open_overdue == 4
    entries = _trends(maps, today, ["22-a"])
    assert entries["22-a"].figures.open_overdue == 30  # type: ignore[attr-defined]


def test_the_trend_window_is_the_trend_days() -> None:
    from workers.aggregates.readmodel import WINDOWS
    from workers.api.service import TREND_DAYS, TREND_WINDOW

    assert WINDOWS[TREND_WINDOW] == TREND_DAYS


def test_the_readme_formula_states_the_breach_rate_cap() -> None:
    """README wrote the breach term as ``(1 − 0.25·breaches/n)`` while the score caps the
    rate at 1: a window holding more breaches than n (breaches count on the deadline's day, n
    on the answer's) scored 0.75 of the share, where README's formula gave less."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    formula = next(line for line in readme.splitlines() if line.startswith("`score = 100"))
    assert "(1 − 0.25·min(1, breaches/n))" in formula
    f = fig("a", answered=20, on_time=20, breaches=60)
    value, shrunk, b, _o = score(f, 1.0, RatingPolicy(min_volume=20)) or (0, 0, 0, 0)
    assert b == 1.0 and value == pytest.approx(round(100 * shrunk * 0.75, 1))
