"""The whole pipeline on the real broker and Redis, checked appeal by appeal.

2,000 realistic appeals (plus exact resends and malformed messages) go in through the intake
topics; the test then answers some on time, some late and leaves the rest open, and checks:
each appeal registered once and routed once, to the authority the routing rules give; its
regime and region those the test sent, a high-importance incident routed urgent, and its
registration time within the test's run; its deadline equal to the one the (separately
unit-tested) deadline rules give for what the test sent; one breach alert per late answer and
no other alert; every malformed message dead-lettered with its reason and counted; the
per-authority figures equal to what the test computes from its own input.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
import redis

from schemas.records import CHANNELS
from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker, wait_for
from tests.chaos.support import expected_routing
from workers.aggregates.readmodel import read_figures
from workers.demo.generator import Generator
from workers.route.agent import route_input
from workers.routing import Router, load_rules

pytestmark = pytest.mark.integration

N_APPEALS = 2000
N_RESENT = 50


def _malformed(max_text: int) -> list[tuple[str, bytes, str]]:
    """(channel topic, bytes, expected reason) covering every kind of bad input."""
    good = {"schema_version": 1, "channel": "pos", "external_id": "bad", "region": "22",
            "submitted_at": "2026-11-25T10:00:00+07:00", "text": "Яма на дороге"}
    cases: list[tuple[str, bytes, str]] = []
    for i in range(10):
        cases.append(("pos", b"{this is not json" + bytes([i]), "not_json"))
        cases.append(("pos", orjson.dumps({**good, "external_id": f"b{i}", "region": 22}),
                      "wrong_type"))
        cases.append(("pos", orjson.dumps({k: v for k, v in good.items() if k != "text"}),
                      "missing_field"))
        cases.append(("pos", orjson.dumps({**good, "channel": "pigeon"}), "unknown_channel"))
        cases.append(("pos", orjson.dumps({**good, "text": "ж" * (max_text + 1)}),
                      "oversize_text"))
        cases.append(("incident", orjson.dumps([1, 2, 3]), "not_object"))
    return cases


def test_pipeline_end_to_end(broker, redis_server, tmp_path: Path) -> None:
    # The answers are stamped up to weeks after registration (late ones after their deadline),
    # ahead of the real clock the workers run on: the agent is told to accept events that far
    # ahead (tests/sla/test_sla_future_stamps.py checks the refusal of future stamps).
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=0.0,
                                 sla_future_tolerance=100 * 86400.0)
    t.ensure_topics(settings)
    rng = random.Random(2026)
    gen = Generator(seed=11, malformed_share=0.0, run_id="e2e")
    now = time.time()
    appeals = [gen.appeal(now) for _ in range(N_APPEALS)]
    by_id = {a.appeal_id: a for a in appeals}
    assert len(by_id) == N_APPEALS
    malformed = _malformed(settings.max_text_length)
    messages = [(t.intake_topic(a.channel), None, a.value) for a in appeals]
    messages += [(t.intake_topic(a.channel), None, a.value) for a in appeals[:N_RESENT]]
    messages += [(t.intake_topic(ch), None, value) for ch, value, _ in malformed]
    rng.shuffle(messages)

    with running_worker(settings, tmp_path / "worker.log") as worker:
        produced_from = time.time()
        produce(settings, messages)

        registered = read_topic(settings, t.REGISTERED, until=N_APPEALS, timeout=240)
        reg_ids = Counter(orjson.loads(r.value)["appeal_id"] for r in registered)
        assert set(reg_ids) == set(by_id), "every valid appeal is registered"
        assert max(reg_ids.values()) == 1, "and exactly once, resends included"

        routed_records = read_topic(settings, t.ROUTED, until=N_APPEALS, timeout=180)
        routed_ids = Counter(orjson.loads(r.value)["appeal_id"] for r in routed_records)
        assert set(routed_ids) == set(by_id)
        assert max(routed_ids.values()) == 1, "each appeal routed once"

        reg = {orjson.loads(r.value)["appeal_id"]: orjson.loads(r.value) for r in registered}
        routed = {orjson.loads(r.value)["appeal_id"]: orjson.loads(r.value)
                  for r in routed_records}

        # Routing: the authority is the one the rules give for the classified category.
        router = Router(load_rules())
        for appeal_id, rec in routed.items():
            src = reg[appeal_id]
            decision = router.route(route_input(src, rec["category"]))
            assert rec["authority_id"] == decision.authority_id, appeal_id
            assert rec["rule_version"] == decision.rule_version

        # Deadlines: computed here with the deadline rules from what the generator sent (its
        # regime, region, importance), the routed record checked against it on the way.
        expected = expected_routing(routed, reg, appeals, (produced_from, time.time()))
        due = {appeal_id: d for appeal_id, (_, d) in expected.items()}

        # Authorities answer: on time, late, or not yet.
        fates = {a: rng.choices(("on_time", "late", "open"), (60, 20, 20))[0] for a in by_id}
        lifecycle = []
        answered_at: dict[str, dt.datetime] = {}
        for appeal_id, fate in fates.items():
            start = dt.datetime.fromisoformat(routed[appeal_id]["registered_at"])
            if fate == "on_time":
                at = start + (due[appeal_id] - start) * rng.uniform(0.05, 0.95)
            elif fate == "late":
                at = due[appeal_id] + dt.timedelta(hours=rng.uniform(1, 240))
            else:
                continue
            answered_at[appeal_id] = at
            event = {"schema_version": 1, "event_id": f"{appeal_id}:answer",
                     "appeal_id": appeal_id, "event": "answered",
                     "at": at.isoformat(timespec="seconds")}
            lifecycle.append((t.LIFECYCLE, appeal_id.encode(), orjson.dumps(event)))
        # Authorities' systems retry too: a tenth of the answers arrive twice.
        lifecycle += rng.sample(lifecycle, len(lifecycle) // 10)
        produce(settings, lifecycle)

        late = {a for a, f in fates.items() if f == "late"}
        client = redis.Redis.from_url(settings.redis)
        prefix = f"{settings.app_id}:"

        def all_answers_applied() -> bool:
            pipe = client.pipeline(transaction=False)
            for appeal_id in answered_at:
                pipe.hget(f"{prefix}appeal:{appeal_id}", "status")
            return all(s == b"answered" for s in pipe.execute())

        wait_for(all_answers_applied, timeout=120, what="every answer applied")

        alerts = read_topic(settings, t.SLA_ALERTS, until=len(late), timeout=120)
        alert_docs = [orjson.loads(r.value) for r in alerts]
        breach_ids = Counter(a["appeal_id"] for a in alert_docs if a["level"] == "breach")
        assert set(breach_ids) == late, "a breach alert for every late answer and no other"
        assert max(breach_ids.values()) == 1, "exactly one each"
        assert {a["level"] for a in alert_docs} == {"breach"}, "no timer is due yet"

        # Deadlines and statuses in the read model.
        pipe = client.pipeline(transaction=False)
        for appeal_id in by_id:
            pipe.hgetall(f"{prefix}appeal:{appeal_id}")
        for appeal_id, doc in zip(by_id, pipe.execute(), strict=True):
            got_due = dt.datetime.fromisoformat(doc[b"due_at"].decode())
            assert got_due == due[appeal_id].replace(microsecond=0), appeal_id
            expected_sla = {"on_time": "met", "late": "breached_late", "open": "running"}
            assert doc[b"sla"].decode() == expected_sla[fates[appeal_id]], appeal_id

        # Dead letters: every malformed message, with its reason, counted in the metric.
        dead = read_topic(settings, t.DEADLETTER, until=len(malformed), timeout=60)
        reasons = Counter(orjson.loads(r.value)["reason"] for r in dead)
        assert reasons == Counter(reason for _, _, reason in malformed)
        for r in dead:
            doc = orjson.loads(r.value)
            assert doc["stage"] == "intake" and doc["value_b64"]
        scraped = worker.metrics_text()
        counted = sum(
            float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
            if line.startswith("appeals_deadletter_total{")
        )
        assert counted == len(malformed)

        # Per-authority figures against the truth computed from the test's own input.
        truth: dict[str, Counter[str]] = defaultdict(Counter)
        for appeal_id, fate in fates.items():
            auth = routed[appeal_id]["authority_id"]
            truth[auth]["received"] += 1
            if fate == "open":
                truth[auth]["open"] += 1
            else:
                truth[auth]["answered"] += 1
            if fate == "on_time":
                truth[auth]["answered_on_time"] += 1
            if fate == "late":
                truth[auth]["breaches"] += 1

        def figures_match() -> bool:
            figures = read_figures(client, prefix, settings.partitions)
            return {a: _pick(f) for a, f in figures.items()} == {a: _full(c) for a, c in
                                                                   truth.items()}

        wait_for(figures_match, timeout=30, what="aggregates equal to the truth")
        assert "Traceback" not in worker.log_text()

    assert set(CHANNELS) >= {a.channel for a in appeals}


_FIELDS = ("received", "answered", "answered_on_time", "breaches", "open", "open_overdue")


def _full(c: Counter[str]) -> dict[str, int]:
    return {f: c.get(f, 0) for f in _FIELDS}


def _pick(f: object) -> dict[str, int]:
    return {name: getattr(f, name) for name in _FIELDS}
