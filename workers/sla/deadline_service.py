"""Bridges the SLA state machine (Unix seconds) and the deadline rules (aware datetimes).

Policy resolution is cached per (regime, region, authority, category, subcategory): an appeal
stream repeats a small set of such tuples, and resolving merges several override layers.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from workers.deadlines.compute import answer_due, extend
from workers.deadlines.policies import Policy, PolicyBook
from workers.sla.engine import SlaRules, zone


class DeadlineService:
    def __init__(self, book: PolicyBook | None = None) -> None:
        self.book = book or PolicyBook.load()
        self._policy = lru_cache(maxsize=4096)(self._resolve)

    def _resolve(self, regime: str, region: str, authority: str, category: str | None,
                 subcategory: str | None) -> Policy:
        return self.book.resolve(regime, region=region, authority=authority, category=category,
                                 subcategory=subcategory)

    def due(self, regime: str, start_ts: float, tz: str, urgent: bool, authority: str,
            category: str | None, subcategory: str | None, region: str) -> float:
        policy = self._policy(regime, region, authority, category, subcategory)
        start = dt.datetime.fromtimestamp(start_ts, zone(tz))
        return answer_due(regime, start, tz, policy, urgent=urgent).timestamp()

    def extend(self, regime: str, due_ts: float, days: int, tz: str, authority: str,
               category: str | None, subcategory: str | None, region: str) -> float:
        policy = self._policy(regime, region, authority, category, subcategory)
        due = dt.datetime.fromtimestamp(due_ts, zone(tz))
        return extend(due, days, policy).timestamp()

    def rules(self, warning_share: float, escalation_after: float) -> SlaRules:
        return SlaRules(
            due=self.due,
            extend=self.extend,
            warning_share=warning_share,
            escalation_after=escalation_after,
        )
