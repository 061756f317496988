"""Exactly-once in effect of a bench run, appeal by appeal, against truth from its own input.

Why per appeal: a check of counts (records received, read-model keys) passed outputs that were
not exactly once at all (every alert twice, each appeal answered twice in the figures), since a
doubled lifecycle event changes no count of appeals. The chaos tests compare per appeal with
truth computed from their input (``tests/chaos/support.py``); their truth is for their own
workload (answers on time or 400 days late), so the bench's equivalent is here, for the
bench's workload (``workers.demo.generator`` fates: redirects, reopens, extensions ...).

What the workload allows to be known without re-running the SLA engine: which appeals are
answered (an ``answered`` event in their plan), how many answers each has (a reopened appeal is
answered twice, and both periods count), and who holds each at the end (the routed authority,
or the last redirect's target). Whether an answer was on time depends on the deadline rules, so
``answered_on_time`` and ``breaches`` are checked against each other and against the alerts
topic (one breach alert per breached appeal), not against a truth of their own.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from streams import topics as t
from streams.settings import Settings

#: The per-category counters compared with the truth.
TRUTH_FIELDS = ("received", "answered", "open")
#: Seconds the comparison is repeated while it differs: the aggregates are published every 2 s,
#: so the last publication can trail the outputs the rest was read from.
FIGURES_WAIT_S = 15.0


class WorkloadLike(Protocol):
    lifecycle: list[tuple[str, bytes | None, bytes]]
    by_id: dict[str, str]

    @property
    def n(self) -> int: ...


@dataclass
class AppealTruth:
    answers: int = 0  # ``answered`` events in its plan: each ends a period that counts
    redirected_to: str | None = None  # the last redirect's target: who holds it at the end

    @property
    def status(self) -> str:
        return "answered" if self.answers else "running"


def appeal_truth(work: WorkloadLike) -> dict[str, AppealTruth]:
    """Per appeal, from the lifecycle events the bench produced for it."""
    out: dict[str, AppealTruth] = {a: AppealTruth() for a in work.by_id}
    for _, _, value in work.lifecycle:
        event = orjson.loads(value)
        truth = out.get(event["appeal_id"])
        if truth is None:
            continue
        if event["event"] == "answered":
            truth.answers += 1
        elif event["event"] == "redirected":
            truth.redirected_to = event["to_authority_id"]
    return out


@dataclass
class Comparison:
    """What differed, by kind, with a few appeal ids each (for a person to look up)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < 3:
            self.examples[kind].append(example)

    def report(self) -> dict[str, Any]:
        return {kind: {"count": n, "e.g.": self.examples[kind]}
                for kind, n in sorted(self.counts.items())}


def read_model_entries(client: Any, prefix: str, ids: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        pipe = client.pipeline(transaction=False)
        for appeal_id in chunk:
            pipe.hgetall(f"{prefix}appeal:{appeal_id}")
        for appeal_id, raw in zip(chunk, pipe.execute(), strict=True):
            if raw:
                out[appeal_id] = {k.decode(): v.decode() for k, v in raw.items()}
    return out


def compare(work: WorkloadLike, routed: list[dict[str, Any]], triaged: set[str],
            model: dict[str, dict[str, str]], figures: dict[str, Any],
            alerts: list[dict[str, Any]]) -> tuple[dict[str, Any], Comparison]:
    """The per-appeal comparison; pure, so it is tested without a broker or Redis."""
    diff = Comparison()
    truth = appeal_truth(work)
    by_id: dict[str, dict[str, Any]] = {}
    copies = Counter(r["appeal_id"] for r in routed)
    for r in routed:
        by_id.setdefault(r["appeal_id"], r)
        if r["authority_id"] != by_id[r["appeal_id"]]["authority_id"]:
            diff.add("routed_twice_differently", r["appeal_id"])
    for appeal_id in set(work.by_id) - set(by_id) - triaged:
        diff.add("neither_routed_nor_triaged", appeal_id)
    for appeal_id in set(by_id) - set(work.by_id):
        diff.add("routed_not_sent", appeal_id)
    for appeal_id in set(by_id) & triaged:
        diff.add("routed_and_triaged", appeal_id)

    want: dict[str, Counter[str]] = defaultdict(Counter)
    for appeal_id, rec in by_id.items():
        if appeal_id not in truth:
            continue
        tr = truth[appeal_id]
        c = want[f"cat:{rec['category']}"]
        c["received"] += 1
        c["answered"] += tr.answers
        c["open"] += tr.answers == 0
        entry = model.get(appeal_id)
        if entry is None:
            diff.add("no_read_model_entry", appeal_id)
            continue
        authority = tr.redirected_to or rec["authority_id"]
        if entry.get("authority_id") != authority:
            diff.add("read_model_wrong_authority", appeal_id)
        if entry.get("status") != tr.status:
            diff.add("read_model_wrong_status", appeal_id)
    for appeal_id in set(model) - set(by_id):
        diff.add("read_model_entry_not_routed", appeal_id)

    # Alerts: a copy of an alert the consumers absorb (same id: the notify agent dedupes on
    # it) is fine; per id the firing must be one, and every alert must be a routed appeal's.
    firing: dict[str, dict[str, Any]] = {}
    for a in alerts:
        if a["appeal_id"] not in by_id:
            diff.add("alert_for_unrouted_appeal", a["alert_id"])
        if a.get("resolved_at") is None:
            if a["alert_id"] in firing and firing[a["alert_id"]].get("due_at") != a.get("due_at"):
                diff.add("alert_fired_twice_differently", a["alert_id"])
            firing.setdefault(a["alert_id"], a)
    per_cycle = Counter((a["appeal_id"], a.get("stage"), a["level"],
                         a["alert_id"].rsplit(":", 1)[-1]) for a in firing.values())
    for (appeal_id, _, _, _), n in per_cycle.items():
        if n > 1:
            diff.add("alert_not_unique_per_stage_level_cycle", appeal_id)
    breached: Counter[str] = Counter()
    for appeal_id in {a["appeal_id"] for a in firing.values()
                      if a["level"] == "breach" and a.get("stage") is None}:
        if appeal_id in by_id:
            breached[f"cat:{by_id[appeal_id]['category']}"] += 1

    for key in sorted(set(want) | {k for k in figures if k.startswith("cat:")}):
        got = figures.get(key)
        w = want.get(key, Counter())
        for name in TRUTH_FIELDS:
            value = getattr(got, name, 0) if got is not None else 0
            if value != w[name]:
                diff.add(f"figures_{name}", f"{key}: {value} != {w[name]}")
        on_time = getattr(got, "answered_on_time", 0) if got is not None else 0
        breaches = getattr(got, "breaches", 0) if got is not None else 0
        if on_time + breaches != w["answered"]:
            diff.add("figures_on_time_plus_breaches", f"{key}: {on_time} + {breaches} != "
                                                      f"{w['answered']}")
        if breaches != breached[key]:
            diff.add("figures_breaches_vs_alerts", f"{key}: {breaches} != {breached[key]}")

    summary = {
        "routed_records": len(routed),
        "routed_distinct": len(by_id),
        "routed_repeats": sum(n - 1 for n in copies.values()),
        "triaged_distinct": len(triaged),
        "read_model_checked": len(model),
        "alert_records": len(alerts),
        "alerts_firing_distinct": len(firing),
    }
    return summary, diff


def verify(settings: Settings, work: WorkloadLike) -> dict[str, Any]:
    """Read the run's outputs and compare them appeal by appeal (:func:`compare`)."""
    import redis

    from streams import testing
    from workers.aggregates import readmodel

    client = redis.Redis.from_url(settings.redis)
    prefix = f"{settings.app_id}:"
    registered = testing.read_topic(settings, t.REGISTERED, until=work.n, timeout=120, idle=1.5)
    routed = [orjson.loads(r.value) for r in
              testing.read_topic(settings, t.ROUTED, until=1, timeout=120, idle=1.5)]
    triaged = {orjson.loads(r.value)["appeal_id"]
               for r in testing.read_topic(settings, t.TRIAGE, timeout=60, idle=1.0)}
    alerts = [orjson.loads(r.value) for r in
              testing.read_topic(settings, t.SLA_ALERTS, timeout=60, idle=1.0)]
    reg_ids = Counter(orjson.loads(r.value)["appeal_id"] for r in registered)
    ids = sorted({r["appeal_id"] for r in routed} | set(work.by_id))
    model = read_model_entries(client, prefix, ids)
    extra = sum(1 for _ in client.scan_iter(match=f"{prefix}appeal:*", count=10_000)) - len(model)
    # Aggregates are published every 2 s: compare again until they agree, or the wait ends.
    deadline = time.monotonic() + FIGURES_WAIT_S
    while True:
        figures = readmodel.read_figures(client, prefix, settings.partitions, kind="cat")
        summary, diff = compare(work, routed, triaged, model, figures, alerts)
        if not diff.counts or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if extra:
        diff.add("read_model_entries_not_in_workload", f"{extra} keys")
    if set(reg_ids) != set(work.by_id):
        diff.add("registered_ids_differ_from_input", f"{len(set(reg_ids) ^ set(work.by_id))}")
    return {
        "registered_records": len(registered),
        "registered_distinct": len(reg_ids),
        **summary,
        "read_model_entries": len(model) + extra,
        "aggregate_received": sum(f.received for f in figures.values()),
        "effect_differences": diff.report(),
        "exactly_once_in_effect": not diff.counts,
    }
