"""End records of SLA alerts (``resolved_at``) through the SLA agent's handling of one event.

Before, the schema had only warning, breach and escalation: a warning of an appeal answered on
time kept firing at Alertmanager for ``APPEALS_ALERT_TTL`` (and was repeated every 4 h), a
parked warning of an appeal answered meanwhile was delivered late as firing, and webhooks never
learnt that an alert was over. Now the transition that ends an alert's period, or moves the
deadline it was about past it, emits the alert once more with ``resolved_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.validation import validate
from streams import topics as t
from tests.sla import sla_support as sla
from tests.sla.sla_support import DAY, INTERNAL, ROUTED, T0, TICKS

APPEAL = "e" * 24
KEY = APPEAL.encode()


def _runtime(parent: str | None = None) -> Any:
    """Ten-day deadlines escalated a day after the breach to ``parent``; the SLA clock reads
    two months after T0, so no event here is refused as stamped ahead of it."""
    return sla.stand_in_runtime(clock=sla.fixed_clock(T0.timestamp() + 60 * DAY),
                                rules=sla.ten_day_rules(escalation_after=DAY),
                                resolve_parent=lambda authority: parent)


def _event(topic: str, value: dict[str, Any]) -> Any:
    return sla.message(topic, value, key=KEY)


def _routed(parent: str | None = None) -> Any:
    return _event(ROUTED, sla.routed_record(appeal_id=APPEAL, authority_id="22-a",
                                            parent_authority_id=parent))


def _lifecycle(kind: str, n: int, days: float, **extra: Any) -> Any:
    at = T0 + dt.timedelta(days=days)
    return _event(INTERNAL, sla.lifecycle(kind, n, at, appeal_id=APPEAL, **extra))


def _tick(kind: str, rt: Any) -> Any:
    state = rt.table[KEY]
    due = {"warning": state["warn"], "breach": state["due"]}.get(kind, state["due"] + DAY)
    return _event(TICKS, {"schema_version": 1, "appeal_id": APPEAL, "kind": kind,
                          "due_ts": due, "cycle": state["cycle"]})


def _run(rt: Any, *events: Any) -> list[dict[str, Any]]:
    """Each event in its own batch; the SLA alert records sent."""
    outbox = sla.run_each(rt, *events)
    assert outbox.dead == []
    return outbox.of(t.SLA_ALERTS)


def _ends(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["alert_id"], r["level"]) for r in records if r.get("resolved_at")]


def _firing(records: list[dict[str, Any]]) -> list[str]:
    return [r["alert_id"] for r in records if not r.get("resolved_at")]


def test_an_answer_on_time_ends_the_warning_it_had() -> None:
    rt = _runtime()
    _run(rt, _routed())
    warned = _run(rt, _tick("warning", rt))
    assert _firing(warned) == [f"{APPEAL}:warning:0"]
    records = _run(rt, _lifecycle("answered", 1, 9))
    assert _ends(records) == [(f"{APPEAL}:warning:0", "warning")]
    (end,) = records
    validate("sla-alert", end)
    # The same alert as sent, so the same labels at Alertmanager.
    for name in ("appeal_id", "level", "regime", "region", "authority_id",
                 "notify_authority_id", "severity", "stage"):
        assert end[name] == warned[0][name], name
    assert end["resolved_at"] == end["fired_at"]


def test_closing_ends_the_breach_its_escalation_and_warning() -> None:
    rt = _runtime(parent="22-parent")
    _run(rt, _routed(parent="22-parent"))
    sent = _run(rt, _tick("warning", rt), _tick("breach", rt), _tick("escalation", rt))
    assert _firing(sent) == [f"{APPEAL}:{lvl}:0" for lvl in ("warning", "breach", "escalation")]
    records = _run(rt, _lifecycle("closed", 1, 12))
    assert sorted(_ends(records)) == sorted(
        (f"{APPEAL}:{lvl}:0", lvl) for lvl in ("warning", "breach", "escalation"))
    escalation = next(r for r in records if r["level"] == "escalation")
    assert escalation["notify_authority_id"] == "22-parent"
    # Nothing is ended twice: a later event of the closed appeal ends nothing.
    assert _ends(_run(rt, _lifecycle("answered", 2, 13))) == []


def test_an_extension_that_puts_the_warning_ahead_ends_it() -> None:
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("warning", rt))
    records = _run(rt, _lifecycle("extended", 1, 8, extension_days=20))
    assert _ends(records) == [(f"{APPEAL}:warning:0", "warning")]


def test_a_breach_taken_back_by_an_answer_stamped_in_time_is_ended() -> None:
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("breach", rt))
    records = _run(rt, _lifecycle("answered", 1, 9.5))
    assert _ends(records) == [(f"{APPEAL}:breach:0", "breach")]


def test_a_breach_the_late_answer_reports_is_not_ended_by_it() -> None:
    """The answer past the deadline raises the breach (its tick had not come): it reports a
    breach that happened; ended at once, Alertmanager could drop it unnotified."""
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("warning", rt))
    records = _run(rt, _lifecycle("answered", 1, 11))
    assert _firing(records) == [f"{APPEAL}:breach:0"]
    assert _ends(records) == [(f"{APPEAL}:warning:0", "warning")]


def test_a_breach_carried_over_a_pause_is_not_ended() -> None:
    """Paused past the deadline and resumed: the breach goes on (carried into the new cycle),
    the supervisor's alert is not ended."""
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("breach", rt))
    records = _run(rt, _lifecycle("paused", 1, 10.5), _lifecycle("resumed", 2, 11))
    assert _ends(records) == []
    # When it is answered at last, the breach is ended under the id it was sent with.
    records = _run(rt, _lifecycle("answered", 3, 12))
    assert (f"{APPEAL}:breach:0", "breach") in _ends(records)


def test_events_that_end_nothing_emit_no_end() -> None:
    rt = _runtime()
    _run(rt, _routed())
    assert _ends(_run(rt, _lifecycle("accepted", 1, 1), _lifecycle("answered", 2, 2))) == []


def test_a_reopened_period_ends_its_own_alerts_only() -> None:
    """The first period's warning was ended when it was answered; the reopened period's end
    ends its own warning, not the first one's again."""
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("warning", rt))
    assert _ends(_run(rt, _lifecycle("answered", 1, 9))) == [(f"{APPEAL}:warning:0", "warning")]
    _run(rt, _lifecycle("reopened", 2, 9.5))
    cycle = rt.table[KEY]["cycle"]
    assert _firing(_run(rt, _tick("warning", rt))) == [f"{APPEAL}:warning:{cycle}"]
    records = _run(rt, _lifecycle("answered", 3, 18))
    assert _ends(records) == [(f"{APPEAL}:warning:{cycle}", "warning")]


def _breach_escalation_pause_resume(rt: Any) -> list[dict[str, Any]]:
    """Deadline day 10, escalation due day 11: both ticks processed before a pause stamped
    day 10.5 (after the deadline, before the escalation moment), resumed day 12; then the
    escalation tick of the new cycle. The records sent from the pause on."""
    _run(rt, _routed(parent="22-parent"))
    sent = _run(rt, _tick("breach", rt), _tick("escalation", rt))
    assert _firing(sent) == [f"{APPEAL}:breach:0", f"{APPEAL}:escalation:0"]
    records = _run(rt, _lifecycle("paused", 1, 10.5), _lifecycle("resumed", 2, 12))
    return records + _run(rt, _tick("escalation", rt))


def test_an_escalation_held_by_a_pause_is_recorded_by_its_tick_and_stays_live() -> None:
    """Before, the tick after the resume recorded the escalation without an alert, and the
    agent dropped that state (it stored ticks only with alerts): the escalation was never
    recorded (no figures), and the pause had already ended the escalation as if cancelled."""
    rt = _runtime(parent="22-parent")
    records = _breach_escalation_pause_resume(rt)
    assert records == []  # no end at the pause, no second escalation at the tick
    state = rt.table[KEY]
    assert state["escalated"] is not None
    assert [e[2] for e in state["edays"]] == [state["cycle"]]
    assert "esq" not in state
    counters = rt.partition_aggregates(0).counters
    assert sum(v for k, v in counters.items() if k[0] == "22-a" and k[2] == "escalations") == 1
    # The answer ends the escalation under the id it was sent with, and the breach once.
    ends = _ends(_run(rt, _lifecycle("answered", 3, 14)))
    assert sorted(ends) == [(f"{APPEAL}:breach:0", "breach"),
                            (f"{APPEAL}:escalation:0", "escalation")]


def test_a_breach_carried_over_a_pause_ends_under_the_id_it_was_sent_with() -> None:
    """Before, every key of the run back from the current cycle was ended: ``breach:1`` (only
    carried, never sent) and ``breach:0`` for one breach."""
    rt = _runtime(parent="22-parent")
    _run(rt, _routed(parent="22-parent"))
    _run(rt, _tick("breach", rt))
    _run(rt, _lifecycle("paused", 1, 10.5), _lifecycle("resumed", 2, 12))
    assert _firing(_run(rt, _tick("escalation", rt))) == [f"{APPEAL}:escalation:1"]
    ends = _ends(_run(rt, _lifecycle("answered", 3, 14)))
    assert sorted(ends) == [(f"{APPEAL}:breach:0", "breach"),
                            (f"{APPEAL}:escalation:1", "escalation")]


def test_a_breach_taken_back_by_an_extension_under_the_answer_ends() -> None:
    """A late answer reports its breach (not ended: it happened); an extension stamped before
    the deadline, processed after the answer, shows the answer was in time: the breach is
    taken back and ends. Before, only open periods were looked at: nothing ended."""
    rt = _runtime()
    _run(rt, _routed())
    assert _firing(_run(rt, _lifecycle("answered", 1, 11))) == [f"{APPEAL}:breach:0"]
    records = _run(rt, _lifecycle("extended", 2, 9, extension_days=20))
    assert rt.table[KEY]["breached"] is None
    assert _ends(records) == [(f"{APPEAL}:breach:0", "breach")]


def test_a_breach_the_answer_ended_is_not_ended_again_by_the_extension_under_it() -> None:
    rt = _runtime()
    _run(rt, _routed())
    _run(rt, _tick("breach", rt))
    assert _ends(_run(rt, _lifecycle("answered", 1, 11))) == [(f"{APPEAL}:breach:0", "breach")]
    assert _ends(_run(rt, _lifecycle("extended", 2, 9, extension_days=20))) == []
