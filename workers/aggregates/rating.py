"""The rating of authorities: a score per authority and window, its rank and its weekly change.

The formula (documented in the README and served in ``/openapi.json``)::

    u      = open_overdue + closed_overdue               past due and never answered
             + redirected_overdue                         (left open, closed or passed on)
    n      = answered + u                                volume: what the on-time share counts
    share  = answered_on_time / n                         DESIGN.md §4 on-time share
    p0     = Σ answered_on_time / Σ n over the region's authorities in the window
    S      = (answered_on_time + M · p0) / (n + M)        Bayesian shrinkage toward the region
    B      = min(1, breaches / n)                         breach rate in the window
    O      = u / n                                        share never answered past due
    score  = 100 · S · (1 − β · B) · (1 − ω · O)          0..100, one decimal

with ``M = 10`` pseudo-appeals of prior weight, ``β = 0.25`` and ``ω = 0.25``.

Why this shape:
- **Shrinkage, not the raw share.** Three answers on time give a raw share of 100%; with
  ``M = 10`` they count as 3 of 13 real appeals plus 10 at the regional mean, so a small
  authority can't top the table by luck, and a large one is judged almost only on its own
  figures. Unlike a Wilson lower bound it does not punish small authorities below the region
  for being small: it pulls them *toward* the region, in both directions.
- **Minimum volume.** Below ``min_volume`` (APPEALS_RATING_MIN_VOLUME, default 20) an
  authority gets no score and no rank at all, only its figures (DESIGN.md §4).
- **Breaches and backlog as penalties.** A late answer already counts 0 in the share; the
  breach term additionally separates "late by a day" from "late and escalated" only through
  the breach count, so it is mild (β). The backlog term makes an appeal still unanswered past
  its deadline cost more than one answered late (ω): not answering must never pay. An appeal
  *closed* unanswered past its deadline, or *redirected* onwards past it, counts exactly like
  one left open (``u``), so clearing the backlog without answers cannot buy a better score.
- **Multiplicative.** Penalties scale the share, so the score stays in 0..100 and an authority
  with no breaches and no backlog scores exactly its shrunk share × 100.

Rank: 1 = best; ties (same score) share a rank (competition ranking "1, 2, 2, 4"); listing
order within a tie is by volume, then id, so it is stable.

Change since last week: the same computation on the window ending seven days ago (its own
regional mean). Day buckets give every counter of that past window except the backlog, which
is a current value with no history; for the past window it is estimated as the breaches of
that window not answered, closed or redirected within it,
``max(0, breaches − (answered − answered_on_time) − closed_overdue − redirected_overdue)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from workers.aggregates.readmodel import AuthorityFigures

PRIOR_WEIGHT = 10.0
BREACH_PENALTY = 0.25
OVERDUE_PENALTY = 0.25
DEFAULT_PRIOR = 0.5  # the regional mean when nobody in the region has any volume yet


@dataclass(frozen=True, slots=True)
class RatingPolicy:
    min_volume: int = 20
    prior_weight: float = PRIOR_WEIGHT
    breach_penalty: float = BREACH_PENALTY
    overdue_penalty: float = OVERDUE_PENALTY


@dataclass(slots=True)
class RatingEntry:
    authority_id: str
    volume: int
    figures: AuthorityFigures
    score: float | None = None  # None below the minimum volume
    rank: int | None = None
    shrunk_share: float | None = None
    breach_rate: float | None = None
    overdue_share: float | None = None
    previous_score: float | None = None
    previous_rank: int | None = None

    @property
    def rated(self) -> bool:
        return self.score is not None

    @property
    def trend(self) -> float | None:
        """Score change since the window ending a week ago; None unless both are rated."""
        if self.score is None or self.previous_score is None:
            return None
        return round(self.score - self.previous_score, 1)

    @property
    def rank_change(self) -> int | None:
        """Places gained since last week (positive = moved up)."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    def to_dict(self) -> dict[str, Any]:
        return {
            "authority_id": self.authority_id,
            "rated": self.rated,
            "score": self.score,
            "rank": self.rank,
            "volume": self.volume,
            "shrunk_share": _round(self.shrunk_share),
            "breach_rate": _round(self.breach_rate),
            "overdue_share": _round(self.overdue_share),
            "previous_score": self.previous_score,
            "previous_rank": self.previous_rank,
            "trend": self.trend,
            "rank_change": self.rank_change,
            "figures": self.figures.to_dict(),
        }


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def volume(fig: AuthorityFigures) -> int:
    """The denominator of the on-time share: answered + never answered past the deadline."""
    return fig.answered + fig.unanswered_overdue


def regional_mean(figures: Iterable[AuthorityFigures]) -> float:
    """Volume-weighted on-time share of a region (its authorities pooled)."""
    on_time = total = 0
    for fig in figures:
        on_time += fig.answered_on_time
        total += volume(fig)
    return on_time / total if total else DEFAULT_PRIOR


def score(fig: AuthorityFigures, prior: float, policy: RatingPolicy = RatingPolicy()
          ) -> tuple[float, float, float, float] | None:
    """(score, shrunk share, breach rate, overdue share), or None below the minimum volume."""
    n = volume(fig)
    if n < policy.min_volume or n <= 0:
        return None
    shrunk = (fig.answered_on_time + policy.prior_weight * prior) / (n + policy.prior_weight)
    breach_rate = min(1.0, fig.breaches / n)
    overdue_share = min(1.0, fig.unanswered_overdue / n)
    value = (100.0 * shrunk * (1.0 - policy.breach_penalty * breach_rate)
             * (1.0 - policy.overdue_penalty * overdue_share))
    value = round(min(100.0, max(0.0, value)), 1)
    if math.isnan(value):  # pragma: no cover - n > 0 makes this impossible; be explicit
        return None
    return value, shrunk, breach_rate, overdue_share


def past_backlog_estimate(fig: AuthorityFigures) -> AuthorityFigures:
    """The figures of a past window with its backlog estimated from its own day buckets: the
    window's breaches not settled in it. Items breached before the window and still overdue at
    its end are missing, so an authority with an old backlog looked better a week ago than it
    was; :func:`past_backlog` replaces this when the days after the window are known."""
    late = fig.answered - fig.answered_on_time
    settled = late + fig.closed_overdue + fig.redirected_overdue
    return replace(fig, open_overdue=max(0, fig.breaches - settled), open=0)


def past_backlog(fig: AuthorityFigures, since: AuthorityFigures | None,
                 open_overdue_now: int) -> AuthorityFigures:
    """The figures of a past window with the backlog it ended with: today's backlog, less the
    deadlines missed since the window ended, plus the overdue items settled since (answered
    late, closed unanswered or handed on past the deadline). ``since``: the figures of the days
    after the window up to today (None: none of them has any).

    Each missed deadline puts one item into the backlog on the day it is counted as a breach,
    and each late settlement takes one out, so walking back over those days gives the backlog
    as it was. Before, a past window counted only its own unsettled breaches: an authority
    carrying the same old backlog every day had a previous score far above its score and a
    falling trend although nothing changed (review of session 16).
    """
    if since is None:
        since = AuthorityFigures(fig.authority_id)
    settled = (since.answered - since.answered_on_time + since.closed_overdue
               + since.redirected_overdue)
    return replace(fig, open_overdue=max(0, open_overdue_now - since.breaches + settled),
                   open=0)


def _rank(entries: list[RatingEntry]) -> None:
    rated = [e for e in entries if e.score is not None]
    rated.sort(key=lambda e: (-(e.score or 0.0), -e.volume, e.authority_id))
    previous: float | None = None
    rank = 0
    for position, entry in enumerate(rated, start=1):
        if entry.score != previous:
            rank = position
            previous = entry.score
        entry.rank = rank


def rate(figures: Mapping[str, AuthorityFigures], authority_ids: Iterable[str],
         policy: RatingPolicy = RatingPolicy()) -> list[RatingEntry]:
    """Score and rank the given authorities (one region) from their figures in one window.

    Authorities without figures are listed with zero volume (unrated), so the table shows
    every body of the region, not only the busy ones.
    """
    ids = list(dict.fromkeys(authority_ids))
    figs = [figures.get(a) or AuthorityFigures(a) for a in ids]
    prior = regional_mean(figs)
    entries = []
    for fig in figs:
        entry = RatingEntry(fig.authority_id, volume(fig), fig)
        result = score(fig, prior, policy)
        if result is not None:
            entry.score, entry.shrunk_share, entry.breach_rate, entry.overdue_share = result
        entries.append(entry)
    _rank(entries)
    return entries


def rate_with_trend(current: Mapping[str, AuthorityFigures],
                    week_ago: Mapping[str, AuthorityFigures],
                    authority_ids: Iterable[str],
                    policy: RatingPolicy = RatingPolicy(),
                    since: Mapping[str, AuthorityFigures] | None = None) -> list[RatingEntry]:
    """:func:`rate` for now, with last week's score and rank filled in; sorted for display:
    rated by rank, then unrated by volume.

    ``since``: figures of the days from the end of ``week_ago``'s window up to today, by which
    the past backlog is walked back from today's (:func:`past_backlog`); None: estimated from
    the past window alone (:func:`past_backlog_estimate`)."""
    ids = list(dict.fromkeys(authority_ids))
    entries = rate(current, ids, policy)
    if since is None:
        past = {a: past_backlog_estimate(f) for a, f in week_ago.items()}
    else:
        past = {}
        for a in {*week_ago, *current}:
            now = current.get(a)
            past[a] = past_backlog(week_ago.get(a) or AuthorityFigures(a), since.get(a),
                                   now.open_overdue if now is not None else 0)
    before = {e.authority_id: e for e in rate(past, ids, policy)}
    for entry in entries:
        old = before.get(entry.authority_id)
        if old is not None:
            entry.previous_score, entry.previous_rank = old.score, old.rank
    entries.sort(key=lambda e: (e.rank is None, e.rank or 0, -e.volume, e.authority_id))
    return entries
