"""Poison messages interleaved at 1%: every one dead-lettered with its reason, the rest processed.

Poison goes into the intake topics (every kind the intake rejects) and into the authorities'
lifecycle topic. Each poison message must appear in the dead-letter topic once, with its
original bytes, its stage and the expected reason; every valid appeal must reach the outcome
its fate gives.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker, wait_for
from tests.chaos import support as s

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

N = 3000


def _intake_poison(i: int, max_text: int) -> tuple[bytes, str]:
    good = {"schema_version": 1, "channel": "pos", "external_id": f"poison-{i}", "region": "22",
            "submitted_at": "2026-11-25T10:00:00+07:00", "text": "Яма на дороге"}
    kind = i % 6
    if kind == 0:
        return b"{poison " + str(i).encode(), "not_json"
    if kind == 1:
        return orjson.dumps({**good, "region": 22}), "wrong_type"
    if kind == 2:
        return orjson.dumps({k: v for k, v in good.items() if k != "text"}), "missing_field"
    if kind == 3:
        return orjson.dumps({**good, "channel": "pigeon"}), "unknown_channel"
    if kind == 4:
        return orjson.dumps({**good, "text": "ж" * (max_text + 1)}), "oversize_text"
    return orjson.dumps([i, "not", "an", "object"]), "not_object"


def _lifecycle_poison(i: int, appeal_id: str) -> tuple[bytes, set[str]]:
    kind = i % 3
    if kind == 0:
        return b"<answer>" + str(i).encode(), {"not_json"}
    if kind == 1:
        return orjson.dumps({"schema_version": 1, "event_id": f"p{i}", "appeal_id": appeal_id,
                             "event": "answered"}), {"missing_field"}
    return orjson.dumps({"schema_version": 1, "event_id": f"p{i}", "appeal_id": appeal_id,
                         "event": "teleported", "at": "2026-11-25T10:00:00+00:00"}), {
        "invalid_value", "unknown_event", "wrong_type"}


def test_poison_one_percent(broker, redis_server, tmp_path: Path) -> None:
    rng = random.Random(5)
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=0.0,
                                 sla_future_tolerance=s.FUTURE_TOLERANCE)
    t.ensure_topics(settings)
    work = s.workload(N, 51)
    intake = work.intake_messages()
    expected: dict[bytes, tuple[str, set[str]]] = {}
    for i in range(N // 100):
        value, reason = _intake_poison(i, settings.max_text_length)
        intake.insert(rng.randrange(len(intake)), (t.intake_topic("pos"), None, value))
        expected[value] = ("intake", {reason})
    answers = work.answer_messages()
    for i in range(max(1, len(answers) // 100)):
        appeal_id = rng.choice(sorted(work.ids))
        value, reasons = _lifecycle_poison(i, appeal_id)
        answers.insert(rng.randrange(len(answers)), (t.LIFECYCLE, appeal_id.encode(), value))
        expected[value] = ("lifecycle", reasons)

    with running_worker(settings, s.log_path("poison")):
        produce(settings, intake)
        produce(settings, answers)
        wait_for(lambda: s.outcomes_settled(settings, work), timeout=240, interval=2,
                 what="every valid appeal with its outcome")
        dead = s.docs(read_topic(settings, t.DEADLETTER, until=len(expected), timeout=60,
                                 idle=1))
        routed = s.by_appeal(read_topic(settings, t.ROUTED, until=N, timeout=60, idle=1))

    got = {base64.b64decode(d["value_b64"]): d for d in dead}
    assert len(dead) == len(got) == len(expected), "each poison message dead-lettered once"
    assert set(got) == set(expected)
    for value, (stage, reasons) in expected.items():
        assert got[value]["stage"] == stage, value[:40]
        assert got[value]["reason"] in reasons, (value[:60], got[value]["reason"])
    assert set(routed) == work.ids and all(len(c) == 1 for c in routed.values())
    print("dead letters by reason:", dict(Counter(d["reason"] for d in dead)))
