"""Which SLA alerts an appeal's transition ended: the supervisors are told the alert is over.

Why by comparing states: an alert stays *live* while the deadline it is about still stands
and its period runs; the engine's handlers (answer, close, redirect, reopen, extension, pause,
a breach taken back) each end periods or move deadlines in their own way, and reading what is
live before and after a transition gives one rule for all of them without a hook in each.

What is live (:func:`live_alerts`):

- the answer period's warning, breach and escalation of the running cycle while the appeal is
  open (running or paused); the breach and its escalation only while the state still holds
  them (``breached``/``escalated``: a breach taken back by an event stamped in time ends);
- a tracked stage's warning and breach while the stage is armed (open, not settled) and the
  appeal not closed.

A deadline that moves keeps its alerts live when the alert's moment has passed under the new
deadline too: the engine carries the alert into the new cycle (``alerts`` gets the new cycle's
key, nothing is sent again), so an alert carried on is not ended. One the move puts ahead
(an extension or resume curing a warning) ends.

An ended alert is named by the id notify delivered it with, ``<appeal>:[<stage>.]<level>:<n>``,
where ``n`` is the cycle it was sent in; a carried alert's current key names a later cycle.
Every cycle of the unbroken run of keys back from the current one is ended (a run may reach
into an earlier period whose alert was never ended, which is right to end too): notify sends
an end only to the receivers that took that very id, so an id never delivered costs nothing.

Alerts raised by the transition that ends their period (a late answer reporting its breach, a
redirect past the deadline reporting the handing-on body's) are not ended: they report a
breach that happened, and end with ``APPEALS_ALERT_TTL`` at Alertmanager. Ending them at once
would let Alertmanager drop the firing one before its group's first notification.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from schemas.records import SlaAlert
from workers.sla.engine import OPEN_STATUSES, State

LEVELS = ("warning", "breach", "escalation")
#: The alert's severity by level, as the SLA agent sends it (the same Alertmanager labels).
SEVERITY = {"warning": "warning", "breach": "critical", "escalation": "page"}
#: Ids one ended alert is ended under at most (its run of carried cycles): a deadline moves a
#: handful of times (one extension per body, pauses), and an appeal at ``MAX_HISTORY`` must
#: not send hundreds of end records per event.
MAX_IDS = 16
#: State key: the cycle the running answer period began in (:func:`note_period`), where the
#: walk back over carried cycles stops: an earlier cycle's alert belongs to an earlier period,
#: ended when that period ended. A state without it (written before, or by a recompute) walks
#: back to cycle 0, at most ``MAX_IDS`` ids.
PERIOD_CYCLE = "pc"


@dataclass(frozen=True, slots=True)
class Ended:
    """An alert a transition ended, as the end record needs it (from the state before)."""

    level: str
    cycle: int  # the cycle (or a stage's run ``k``) of the id it was delivered with
    due_ts: float
    notify_authority_id: str
    authority_id: str
    stage: str = ""

    @property
    def what(self) -> str:
        return f"{self.stage}.{self.level}" if self.stage else self.level


def live_alerts(state: State | None) -> dict[tuple[str, str], tuple[int, Ended]]:
    """(stage, level) → (current cycle, the alert) of every alert live in ``state``."""
    if not state or "id" not in state:
        return {}
    fired = set(state.get("alerts") or ())
    auth = state["auth"]
    out: dict[tuple[str, str], tuple[int, Ended]] = {}
    if state.get("status") in OPEN_STATUSES:
        cycle = int(state["cycle"])
        holds = {"warning": True, "breach": bool(state.get("breached")),
                 "escalation": bool(state.get("breached")) and bool(state.get("escalated"))}
        for level in LEVELS:
            if holds[level] and f"{level}:{cycle}" in fired:
                notify = auth
                due = state["warn"] if level == "warning" else state["due"]
                if level == "escalation":
                    notify = state.get("parent") or auth
                    due = float(state.get("escalated") or due)
                out[("", level)] = (cycle, Ended(level, cycle, float(due), notify, auth))
    if state.get("status") != "closed":
        for entry in state.get("stg") or ():
            name, _start, due, warn, k = entry[:5]
            if entry[5] is not None or entry[7] is not None:
                continue  # ended or settled: its deadline is no longer watched
            for level in ("warning", "breach"):
                if f"{name}.{level}:{k}" in fired:
                    moment = due if level == "breach" else warn
                    out[(name, level)] = (int(k), Ended(level, int(k), float(moment), auth,
                                                        auth, stage=name))
    return out


def ended_alerts(before: State | None, after: State | None,
                 raised: list[Any] | None = None) -> list[Ended]:
    """The alerts live in ``before`` that ``after`` no longer holds, each under every id it may
    have been delivered with (module docstring). ``raised``: the transition's own alerts
    (``Effects.alerts``), never ended by it."""
    was = live_alerts(before)
    if not was:
        return []
    now = live_alerts(after)
    fired_after = set((after or {}).get("alerts") or ())
    fired_before = set((before or {}).get("alerts") or ())
    just_raised = {(getattr(a, "stage", "") or "", a.level, int(a.cycle)) for a in raised or ()}
    out: list[Ended] = []
    for (stage, level), (cycle, alert) in was.items():
        prefix = f"{stage}." if stage else ""
        still = now.get((stage, level))
        if still is not None and still[0] >= cycle and all(
                f"{prefix}{level}:{c}" in fired_after for c in range(cycle, still[0] + 1)):
            continue  # the same alert, carried into the deadline's new cycle
        if (stage, level, cycle) in just_raised:
            continue
        first = 0 if stage else int((before or {}).get(PERIOD_CYCLE, 0))
        c = cycle
        while c >= first and cycle - c < MAX_IDS and f"{prefix}{level}:{c}" in fired_before:
            out.append(Ended(alert.level, c, alert.due_ts, alert.notify_authority_id,
                             alert.authority_id, stage))
            c -= 1
    return out


def end_records(before: State | None, after: State, raised: list[Any],
                resolved_at: str) -> list[SlaAlert]:
    """The end records of the alerts ``after`` ended, for ``appeals.sla.alerts``.

    Each is the ended alert as it was sent (same ``alert_id``, level, stage, authorities,
    severity: the same labels at Alertmanager), with ``resolved_at``; ``fired_at`` is that
    moment too (the record's own, not the alert's). A consumer that does not know
    ``resolved_at`` sees an alert id it already had: dropped as a repeat.
    """
    out = []
    for ended in ended_alerts(before, after, raised):
        out.append(SlaAlert(
            alert_id=f"{after['id']}:{ended.what}:{ended.cycle}",
            appeal_id=after["id"],
            level=ended.level,
            regime=(before or after)["regime"],
            region=(before or after)["region"],
            authority_id=ended.authority_id,
            notify_authority_id=ended.notify_authority_id,
            due_at=dt.datetime.fromtimestamp(ended.due_ts, dt.UTC).isoformat(
                timespec="seconds"),
            fired_at=resolved_at,
            severity=SEVERITY[ended.level],
            category=(before or after).get("cat"),
            urgent=bool((before or after).get("urgent")),
            stage=ended.stage or None,
            resolved_at=resolved_at,
        ))
    return out


def note_period(before: State | None, after: State) -> None:
    """Record in ``after`` the cycle its answer period began in, when the transition began one
    (registration, redirect, reopen: a new ``start``)."""
    if "id" not in after:
        return
    if not before or "id" not in before or before.get("start") != after.get("start"):
        after[PERIOD_CYCLE] = after["cycle"]
