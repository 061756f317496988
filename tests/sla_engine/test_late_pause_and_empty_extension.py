"""Two ways a late or lopsided lifecycle event used to hide a deadline's state (session 10).

* A pause that arrives after the deadline, before the breach tick was processed (a backlog, a
  replay), cancelled the breach timer: the appeal showed neither a breach nor an open-overdue
  item, and no supervisor heard of it, for as long as the pause lasted.
* An extension whose result the ``previous`` shift walks back onto the current deadline moved
  nothing but used up the one extension 59-FZ allows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from tests.sla_engine.engine_support import DAY, ev, routed, thirty_day_rules
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    EXTENSION_REFUSED,
    SlaRules,
    apply_lifecycle,
    apply_tick,
    contributions,
    new_state,
)

T0 = 1_790_000_000.0


def _rules() -> SlaRules:
    return thirty_day_rules(warning_share=0.75, escalation_after=3 * DAY)


def _counts(state: dict[str, Any]) -> Counter[str]:
    return Counter(counter for _auth, _day, counter in contributions(state))


def test_pause_after_the_deadline_reports_the_breach_once() -> None:
    rules = _rules()
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", rules)
    eff = apply_lifecycle(state, ev("paused", T0 + 31 * DAY, 1), rules)
    assert [(a.level, a.due_ts) for a in eff.alerts] == [("breach", T0 + 30 * DAY)]
    assert state["status"] == "paused" and state["breached"] == T0 + 30 * DAY
    counts = _counts(state)
    assert counts["open_overdue"] == 1 and counts["breaches"] == 1
    # The breach tick that comes afterwards changes nothing (the appeal is paused).
    assert not apply_tick(state, "breach", state["cycle"], rules).alerts
    # Resumed: the pause began after the deadline, so it cures nothing and the breach is not
    # sent again; the answer is late.
    eff = apply_lifecycle(state, ev("resumed", T0 + 33 * DAY, 2), rules)
    assert not eff.alerts and state["breached"]
    eff = apply_lifecycle(state, ev("answered", T0 + 34 * DAY, 3), rules)
    assert not eff.alerts and state["on_time"] is False
    assert _counts(state)["breaches"] == 1


def test_pause_before_the_deadline_reports_nothing() -> None:
    rules = _rules()
    state, _ = new_state(routed(), 0, T0, "Asia/Barnaul", rules)
    eff = apply_lifecycle(state, ev("paused", T0 + 29 * DAY, 1), rules)
    assert not eff.alerts and state["breached"] is None
    assert _counts(state)["open_overdue"] == 0


def test_extension_that_moves_nothing_is_refused_and_keeps_the_one_extension() -> None:
    rules = DeadlineService().rules(0.75, 3 * DAY)
    # Registered Wed 11 Mar 2026 (Moscow): the 30th day is Fri 10 Apr, 23:59:59. +1 day is
    # Sat 11 Apr, walked back to Fri 10 Apr by fz59's `previous` shift: it moves nothing.
    reg = dt.datetime(2026, 3, 11, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    state, _ = new_state(routed(), 0, reg.timestamp(), "Europe/Moscow", rules)
    due = state["due"]
    assert dt.datetime.fromtimestamp(due, dt.UTC).date() == dt.date(2026, 4, 10)
    eff = apply_lifecycle(state, ev("extended", reg.timestamp() + 5 * DAY, 1,
                                    extension_days=1), rules)
    assert eff.outcome == EXTENSION_REFUSED and state["due"] == due and state["ext"] == 0
    # The real extension still goes through: +30 from Fri 10 Apr is Sun 10 May, walked back
    # to Fri 8 May.
    eff = apply_lifecycle(state, ev("extended", reg.timestamp() + 6 * DAY, 2,
                                    extension_days=30), rules)
    assert eff.outcome == "applied" and state["ext"] == 1
    assert dt.datetime.fromtimestamp(state["due"], dt.UTC).date() == dt.date(2026, 5, 8)
