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
(an extension or resume curing a warning) ends. An escalation sent and then held by a pause
stamped before its moment (``esq``) stays live over the pause and the resume: the supervisor
was told, and the tick after the resume records it again without a second alert.

An ended alert is named by the id notify delivered it with, ``<appeal>:[<stage>.]<level>:<n>``,
where ``n`` is the cycle it was sent in; a carried key names a later cycle, and the state
records the id it was sent under (``engine.ALERTS_CARRIED``), which alone is ended: an id
never sent is never named in an end record (the ``sla-alert`` topic is a public contract, and
the end metric counts each alert once). A state written before carried keys were recorded
ends every cycle of the unbroken run of keys back from the current one, as before.

A breach that an event applied under the answer takes back (an extension stamped before a
late answer, processed after it) ends too, though the period is answered.

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
from workers.sla.engine import ALERTS_CARRIED, ESCALATION_SENT, OPEN_STATUSES, State, sent_key

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
#: State key: the answer period's alert keys raised by the transition that ended the period
#: (a late answer reporting its breach), left firing (:func:`note_period`). Only these are
#: ended when an extension applied under the answer takes the breach back: one raised before
#: was ended by the answer already. A state ended without it (written before) ends both.
KEPT = "rk"


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
    """(stage, level) → (current cycle, the alert) of every alert live in ``state``; the
    alert's ``cycle`` is the one it was sent in when the state records it (a carried key)."""
    if not state or "id" not in state:
        return {}
    fired = set(state.get("alerts") or ())
    auth = state["auth"]
    out: dict[tuple[str, str], tuple[int, Ended]] = {}
    if state.get("status") in OPEN_STATUSES:
        cycle = int(state["cycle"])
        breached = bool(state.get("breached"))
        for level in LEVELS:
            key = f"{level}:{cycle}"
            if level == "warning" or breached:
                sent = key if key in fired else None
                held = state.get(ESCALATION_SENT)
                if level == "escalation" and sent is None and isinstance(held, str):
                    sent = held  # held by a pause, re-armed by the resume: still told
                if sent is None:
                    continue
                notify = auth
                due = state["warn"] if level == "warning" else state["due"]
                if level == "escalation":
                    notify = state.get("parent") or auth
                    due = float(state.get("escalated") or due)
                out[("", level)] = (cycle, Ended(level, _sent_cycle(state, key, sent),
                                                 float(due), notify, auth))
    if state.get("status") != "closed":
        for entry in state.get("stg") or ():
            name, _start, due, warn, k = entry[:5]
            if entry[5] is not None or entry[7] is not None:
                continue  # ended or settled: its deadline is no longer watched
            for level in ("warning", "breach"):
                key = f"{name}.{level}:{k}"
                if key in fired:
                    moment = due if level == "breach" else warn
                    out[(name, level)] = (int(k), Ended(level, _sent_cycle(state, key, key),
                                                        float(moment), auth, auth, stage=name))
    return out


def _sent_cycle(state: State, key: str, sent: str) -> int:
    """The cycle of the id the alert of ``key`` was sent under (``sent``: the key itself or the
    held escalation's id), through the state's carried keys."""
    if sent == key:
        sent = sent_key(state, key)
    return int(sent.rsplit(":", 1)[1])


def ended_alerts(before: State | None, after: State | None,
                 raised: list[Any] | None = None) -> list[Ended]:
    """The alerts live in ``before`` that ``after`` no longer holds, each under the id it was
    delivered with (module docstring). ``raised``: the transition's own alerts
    (``Effects.alerts``), never ended by it."""
    was = live_alerts(before)
    just_raised = {(getattr(a, "stage", "") or "", a.level, int(a.cycle)) for a in raised or ()}
    out = _taken_back_under_the_answer(before, after)
    if not was:
        return out
    now = live_alerts(after)
    exact = before is not None and ALERTS_CARRIED in before
    fired_after = set((after or {}).get("alerts") or ())
    fired_before = set((before or {}).get("alerts") or ())
    for (stage, level), (cycle, alert) in was.items():
        prefix = f"{stage}." if stage else ""
        still = now.get((stage, level))
        if exact:
            if still is not None and still[1].cycle == alert.cycle:
                continue  # the same alert, carried into the deadline's new cycle
        elif still is not None and still[0] >= cycle and all(
                f"{prefix}{level}:{c}" in fired_after for c in range(cycle, still[0] + 1)):
            continue
        if (stage, level, cycle) in just_raised:
            continue
        if exact:
            out.append(alert)
            continue
        # A state written before carried keys were recorded: every id of the run may have
        # been the one sent.
        first = 0 if stage else int((before or {}).get(PERIOD_CYCLE, 0))
        c = cycle
        while c >= first and cycle - c < MAX_IDS and f"{prefix}{level}:{c}" in fired_before:
            out.append(Ended(alert.level, c, alert.due_ts, alert.notify_authority_id,
                             alert.authority_id, stage))
            c -= 1
    return out


def _taken_back_under_the_answer(before: State | None, after: State | None) -> list[Ended]:
    """The answer period's breach and escalation of an answered (or closed) period that the
    transition took back: an extension stamped before a late answer and processed after it
    (``engine._extension_under_the_answer``) holds the answer in time. Open periods are
    :func:`live_alerts`' part; a transition that began a new period ends nothing here (the
    late answer's breach happened)."""
    if (not before or not after or "id" not in before or "id" not in after
            or before.get("status") in OPEN_STATUSES or not before.get("breached")
            or after.get("breached") or before.get("start") != after.get("start")):
        return []
    fired = set(before.get("alerts") or ())
    kept = before.get(KEPT)
    cycle = int(before["cycle"])
    auth = before["auth"]
    out = []
    for level in ("breach", "escalation"):
        key = f"{level}:{cycle}"
        if key not in fired or (kept is not None and key not in kept):
            continue
        notify = (before.get("parent") or auth) if level == "escalation" else auth
        due = before["due"] if level == "breach" else (before.get("escalated") or before["due"])
        out.append(Ended(level, _sent_cycle(before, key, key), float(due), notify, auth))
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


def note_period(before: State | None, after: State, raised: list[Any] | None = None) -> None:
    """Record in ``after`` the cycle its answer period began in, when the transition began one
    (registration, redirect, reopen: a new ``start``), and the alerts left firing by the
    transition that ended it (:data:`KEPT`)."""
    if "id" not in after:
        return
    if not before or "id" not in before or before.get("start") != after.get("start"):
        after[PERIOD_CYCLE] = after["cycle"]
        after.pop(KEPT, None)
    if (before and before.get("status") in OPEN_STATUSES
            and after.get("status") not in OPEN_STATUSES):
        after[KEPT] = [f"{a.level}:{a.cycle}" for a in raised or ()
                       if not getattr(a, "stage", "") and a.level != "warning"]
    elif _taken_back_under_the_answer(before, after):
        after[KEPT] = []  # ended now
