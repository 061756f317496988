"""An authority system resending an appeal's whole log changes nothing, however long the log.

The state remembered only its last 64 event ids. An appeal reopened a couple of dozen times
has more events than that, and a resend of its whole log (an authority system's re-sync,
a replayed export) re-applied the oldest ones: its first answer, stamped years ago, answered
the period that is running now. The memory now holds every event an appeal can have within
its history cap (:data:`MAX_HISTORY` reopens, redirects and pauses, each period with its
acceptance, extension, answer and close).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from workers.sla.engine import (
    BEFORE_PERIOD,
    EXTENSION_REFUSED,
    MAX_EVENT_IDS,
    MAX_HISTORY,
    SlaRules,
    State,
    apply_lifecycle,
    new_state,
)

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
DAY = 86400.0
RULES = SlaRules(due=lambda r, s, *_: s + 30 * DAY, extend=lambda r, d, n, *_: d + n * DAY)


def _fresh() -> State:
    routed = {"appeal_id": "a1", "regime": "fz59", "region": "22", "authority_id": "A",
              "category": "roads", "urgent": False}
    state, _ = new_state(routed, 0, T0.timestamp(), "Asia/Barnaul", RULES)
    return state


def _log(periods: int) -> list[dict[str, Any]]:
    """Each period accepted, extended, answered and closed, then reopened; the last one open."""
    log: list[dict[str, Any]] = []
    hour = 0

    def add(kind: str, **extra: Any) -> None:
        nonlocal hour
        hour += 1
        log.append({"event_id": f"e{len(log)}", "appeal_id": "a1", "event": kind,
                    "at": (T0 + dt.timedelta(hours=hour)).isoformat(), **extra})

    for _ in range(periods):
        add("accepted")
        add("extended", extension_days=10)
        add("answered")
        add("closed")
        add("reopened")
    return log


def _replay(state: State, log: list[dict[str, Any]]) -> list[str]:
    return [apply_lifecycle(state, event, RULES).outcome for event in log]


def test_a_resent_log_longer_than_the_old_window_is_all_duplicates() -> None:
    state = _fresh()
    log = _log(20)  # 100 events, 20 reopens
    first = _replay(state, log)
    assert "duplicate" not in first and first.count("applied") > 80  # later extensions: rejected
    assert state["status"] == "running"
    before = copy.deepcopy(state)
    again = _replay(state, log)
    # Applied events are remembered; refused ones (the later periods' extensions beyond the
    # one allowed) are not, and are refused again, changing nothing.
    assert [o for o, f in zip(again, first, strict=True) if f == "applied"] == [
        "duplicate"] * first.count("applied")
    assert set(again) <= {"duplicate", EXTENSION_REFUSED, BEFORE_PERIOD}
    assert state == before


def test_the_longest_history_the_cap_allows_is_remembered_whole() -> None:
    state = _fresh()
    log = _log(MAX_HISTORY)  # every reopen the cap allows, each period with all its events
    assert len(log) <= MAX_EVENT_IDS
    first = _replay(state, log)
    assert "duplicate" not in first
    assert state["hist"] == MAX_HISTORY
    before = copy.deepcopy(state)
    again = _replay(state, log)
    assert {o for o, f in zip(again, first, strict=True) if f == "applied"} == {"duplicate"}
    assert set(again) <= {"duplicate", EXTENSION_REFUSED, BEFORE_PERIOD}
    assert state == before


def test_an_old_answer_pushed_out_by_repeated_acceptances_does_not_answer_a_later_period(
        ) -> None:
    """Acceptances apply without limit, so 512 of them push the first answer's id out (review
    of session 14); its resend is stamped before the reopen and is not this period's answer:
    it is the ended period's answer again (``repeated``, changing nothing)."""
    state = _fresh()
    log = _log(1)  # accepted, extended, answered, closed, reopened
    hour = T0 + dt.timedelta(hours=10)
    log += [{"event_id": f"acc{i}", "appeal_id": "a1", "event": "accepted",
             "at": (hour + dt.timedelta(minutes=i)).isoformat()} for i in range(MAX_EVENT_IDS)]
    _replay(state, log)
    before = copy.deepcopy(state)
    first_answer = log[2]
    assert first_answer["event"] == "answered" and first_answer["event_id"] not in state["events"]
    assert apply_lifecycle(state, first_answer, RULES).outcome == "repeated"
    assert state["status"] == "running" and state["answered"] is None
    assert {k: v for k, v in state.items() if k != "events"} == {
        k: v for k, v in before.items() if k != "events"}
