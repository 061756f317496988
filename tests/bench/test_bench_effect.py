"""The scale-out's exactly-once verdict must catch outputs that are not exactly once.

It compared counts only (records received, read-model keys): with every appeal answered twice
in the figures it still said exactly once. Here the run's outputs are made by hand from a real
bench workload (what a correct run leaves), then spoiled one way at a time; the topics and
Redis are stand-ins, as in the review's script, so no broker or worker runs.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings
from workers.aggregates.readmodel import AuthorityFigures
from workers.bench import runner

CATEGORIES = ("roads", "housing_utilities", "ecology")


class FakeRedis:
    """hgetall / scan_iter / pipeline over a dict of hashes."""

    def __init__(self, hashes: dict[str, dict[str, str]]) -> None:
        self.hashes = hashes
        self.queued: list[str] = []

    def pipeline(self, transaction: bool = True) -> FakeRedis:
        self.queued = []
        return self

    def hgetall(self, key: str) -> None:
        self.queued.append(key)

    def execute(self) -> list[dict[bytes, bytes]]:
        return [{k.encode(): v.encode() for k, v in self.hashes.get(key, {}).items()}
                for key in self.queued]

    def scan_iter(self, match: str, count: int = 0) -> Any:
        prefix = match.rstrip("*")
        return iter([k.encode() for k in self.hashes if k.startswith(prefix)])


def correct_run(tmp_path: Path) -> dict[str, Any]:
    """A workload and the outputs a correct run gives for it."""
    work = runner.Bench(runner.BenchOptions(events=300, log_dir=tmp_path)).make_workload()
    plans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, _, value in work.lifecycle:
        event = orjson.loads(value)
        plans[event["appeal_id"]].append(event)
    ids = list(work.by_id)
    triaged = set(ids[:5])
    routed, model, alerts = [], {}, []
    want: dict[str, Counter[str]] = defaultdict(Counter)
    for i, appeal_id in enumerate(ids[5:]):
        cat = CATEGORIES[i % 3]
        routed.append({"appeal_id": appeal_id, "category": cat, "authority_id": f"a{i % 7}"})
        answers = sum(e["event"] == "answered" for e in plans[appeal_id])
        holder = next((e["to_authority_id"] for e in reversed(plans[appeal_id])
                       if e["event"] == "redirected"), f"a{i % 7}")
        model[appeal_id] = {"status": "answered" if answers else "running",
                            "authority_id": holder}
        c = want[cat]
        c["received"] += 1
        c["answered"] += answers
        c["open"] += answers == 0
        if answers and i % 5 == 0:  # breached: one breach alert, counted as a breach
            c["breaches"] += 1
            alerts.append({"alert_id": f"{appeal_id}:breach:0", "appeal_id": appeal_id,
                           "level": "breach", "stage": None, "due_at": "d",
                           "resolved_at": None})
    # Every answer is on time or a breach (both periods of a reopened appeal count).
    for c in want.values():
        c["answered_on_time"] = c["answered"] - c["breaches"]
    figures = {f"cat:{cat}": AuthorityFigures(f"cat:{cat}", **{
        f: c[f] for f in ("received", "answered", "answered_on_time", "breaches", "open")})
        for cat, c in want.items()}
    return {"work": work, "routed": routed, "triaged": triaged, "model": model,
            "alerts": alerts, "figures": figures}


def verdict(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import redis

    settings = isolated_settings("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0")
    prefix = f"{settings.app_id}:"
    rec = lambda doc: SimpleNamespace(value=orjson.dumps(doc))  # noqa: E731
    topics = {
        t.REGISTERED: [rec({"appeal_id": a}) for a in run["work"].by_id],
        t.ROUTED: [rec(r) for r in run["routed"]],
        t.TRIAGE: [rec({"appeal_id": a}) for a in run["triaged"]],
        t.SLA_ALERTS: [rec(a) for a in run["alerts"]],
    }
    hashes = {f"{prefix}appeal:{a}": doc for a, doc in run["model"].items()}
    monkeypatch.setattr("streams.testing.read_topic", lambda settings, base, **k: topics[base])
    monkeypatch.setattr("workers.aggregates.readmodel.read_figures",
                        lambda *a, **k: run["figures"])
    monkeypatch.setattr(redis.Redis, "from_url", lambda url: FakeRedis(hashes))
    monkeypatch.setattr("workers.bench.effect.FIGURES_WAIT_S", 0.0, raising=False)
    monkeypatch.setattr("streams.testing.wait_for", lambda *a, **k: True)
    return runner.verify_effect(settings, run["work"])


@pytest.fixture
def run(tmp_path: Path) -> dict[str, Any]:
    return correct_run(tmp_path)


def test_a_correct_run_is_exactly_once(run: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = verdict(run, monkeypatch)
    assert out["exactly_once_in_effect"] is True, out.get("effect_differences")


def test_copies_of_an_alert_under_its_id_are_absorbed(run: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run["alerts"] = run["alerts"] * 2  # the notify agent dedupes on the alert id
    assert verdict(run, monkeypatch)["exactly_once_in_effect"] is True


def spoil_answered_twice(run: dict[str, Any]) -> None:
    # The review's case: a lifecycle event applied twice across a rebalance.
    for f in run["figures"].values():
        f.answered *= 2
        f.answered_on_time = f.answered - f.breaches


def spoil_lost_entry(run: dict[str, Any]) -> None:
    run["model"].pop(next(iter(run["model"])))


def spoil_wrong_holder(run: dict[str, Any]) -> None:
    first = next(iter(run["model"]))
    run["model"][first]["authority_id"] = "elsewhere"


def spoil_status(run: dict[str, Any]) -> None:
    for doc in run["model"].values():
        if doc["status"] == "running":
            doc["status"] = "answered"
            return


def spoil_alert_refired(run: dict[str, Any]) -> None:
    again = copy.deepcopy(run["alerts"][0])
    again["due_at"] = "another deadline"
    run["alerts"].append(again)


def spoil_breach_counted_twice(run: dict[str, Any]) -> None:
    f = next(iter(run["figures"].values()))
    f.breaches += 1
    f.answered_on_time -= 1


def spoil_lost_appeal(run: dict[str, Any]) -> None:
    run["routed"].pop()


def spoil_received_twice(run: dict[str, Any]) -> None:
    next(iter(run["figures"].values())).received += 1


@pytest.mark.parametrize("spoil", [
    spoil_answered_twice, spoil_lost_entry, spoil_wrong_holder, spoil_status,
    spoil_alert_refired, spoil_breach_counted_twice, spoil_lost_appeal, spoil_received_twice,
])
def test_outputs_that_are_not_exactly_once_are_caught(
        spoil: Any, run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    spoil(run)
    out = verdict(run, monkeypatch)
    assert out["exactly_once_in_effect"] is False
