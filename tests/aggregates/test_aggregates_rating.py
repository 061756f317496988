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
