"""The intake agent in a real worker on the real broker and Redis.

- every channel's native sample payloads come out as correct registered appeals;
- a batch of 10,000 mixed valid and invalid events yields exactly the valid ones registered,
  once each, and every invalid one in the dead-letter topic with its reason, counted;
- a citizen's resend with slightly different words is registered but marked ``duplicate_of``;
- none of the test appeals' personal data appears in the worker's log.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas.records import CHANNELS
from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker
from workers.intake.core import appeal_id_for

pytestmark = pytest.mark.integration
#: APPEALS_INTAKE_MAX_AGE of these tests: the longest allowed (3660 days).
SAMPLES_MAX_AGE = 3660 * 86400.0

DATA = Path(__file__).resolve().parents[1] / "data" / "intake"
N_MIXED = 10_000


def _samples() -> list[tuple[str, dict]]:
    out = []
    for channel in CHANNELS:
        for line in (DATA / f"{channel}.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append((channel, orjson.loads(line)))
    return out


def _personal_strings(payload: object) -> set[str]:
    """Names, phones, e-mails and addresses found anywhere in a native payload."""
    found: set[str] = set()

    def walk(node: object, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and len(node) >= 5 and any(
            part in key.lower()
            for part in ("name", "phone", "email", "mail", "address", "from", "caller", "fio")
        ) and key.lower() not in ("network", "file_name", "name_of_file"):
            found.add(node)

    walk(payload)
    return found


def test_intake_agent_end_to_end(broker, redis_server, tmp_path: Path) -> None:
    # The sample payloads are dated (January 2025) and the worker reads them on the wall
    # clock: they must not age out of APPEALS_INTAKE_MAX_AGE (a year by default).
    settings = isolated_settings(broker.url, redis_server.url,
                                 intake_max_age=SAMPLES_MAX_AGE)
    t.ensure_topics(settings)
    rng = random.Random(3)
    samples = _samples()
    assert len(samples) >= 5 * len(CHANNELS)

    valid: list[tuple[str, bytes, str]] = []  # (channel, bytes, appeal id)
    for i in range(N_MIXED // 2):
        channel = rng.choice(CHANNELS)
        doc = {"schema_version": 1, "channel": channel, "external_id": f"mix-{i}",
               "submitted_at": "2026-11-20T10:00:00+07:00", "region": "22",
               "text": f"Обращение номер {i}: {rng.choice(['яма', 'мусор', 'нет воды'])}",
               "author": {"name": "Тестов Тест Тестович", "phone": "+79130000000"}}
        valid.append((channel, orjson.dumps(doc), appeal_id_for(channel, f"mix-{i}")))
    invalid: list[tuple[str, bytes, str]] = []
    kinds = ["not_json", "wrong_type", "missing_field", "unknown_channel", "oversize_text",
             "empty", "not_object"]
    for i in range(N_MIXED - len(valid)):
        kind = kinds[i % len(kinds)]
        channel = rng.choice(CHANNELS)
        base = {"schema_version": 1, "channel": channel, "external_id": f"bad-{i}",
                "submitted_at": "2026-11-20T10:00:00+07:00", "region": "22", "text": "Текст"}
        value = {
            "not_json": b"\xff\xfe not json",
            "wrong_type": orjson.dumps({**base, "external_id": 5}),
            "missing_field": orjson.dumps({k: v for k, v in base.items() if k != "region"}),
            "unknown_channel": orjson.dumps({**base, "channel": "fax"}),
            "oversize_text": orjson.dumps({**base, "text": "x" * (settings.max_text_length + 5)}),
            "empty": b"",
            "not_object": b"\"just a string\"",
        }[kind]
        invalid.append((channel, value, kind))

    # A near-duplicate: the same author and address, the same complaint reworded slightly.
    original = {"schema_version": 1, "channel": "web", "external_id": "nd-1",
                "submitted_at": "2026-11-20T10:00:00+07:00", "region": "22",
                "text": "Во дворе дома по улице Мира второй месяц не вывозят мусор, контейнеры "
                        "переполнены, крысы бегают по детской площадке. Примите меры!",
                "address": "г. Барнаул, ул. Мира, д. 7",
                "author": {"name": "Повторова Анна", "phone": "+79135550011"}}
    resend = {**original, "external_id": "nd-2", "submitted_at": "2026-11-20T12:00:00+07:00",
              "text": original["text"].replace("Примите меры!", "Примите меры!!!")}

    messages = [(t.intake_topic(ch), None, orjson.dumps(p)) for ch, p in samples]
    mixed = [(t.intake_topic(ch), None, v) for ch, v, _ in valid + invalid]
    rng.shuffle(mixed)
    messages += mixed
    messages += [(t.intake_topic("web"), None, orjson.dumps(original))]

    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, messages)
        expected_registered = len(samples) + len(valid) + 2
        # The resend comes after the original has been registered, as it does in life.
        read_topic(settings, t.REGISTERED, until=expected_registered - 1, timeout=240)
        produce(settings, [(t.intake_topic("web"), None, orjson.dumps(resend))])
        registered = read_topic(settings, t.REGISTERED, until=expected_registered, timeout=240)
        dead = read_topic(settings, t.DEADLETTER, until=len(invalid), timeout=120)
        metrics_text = worker.metrics_text()
    log_text = worker.log_text()

    docs = [orjson.loads(r.value) for r in registered]
    ids = Counter(d["appeal_id"] for d in docs)
    assert max(ids.values()) == 1, "each appeal registered once"
    assert len(ids) == expected_registered
    assert {a for _, _, a in valid} <= set(ids)

    # Native samples: one registered appeal per sample, with the adapter's fields filled.
    by_channel = Counter(d["channel"] for d in docs if not d["external_id"].startswith(
        ("mix-", "nd-")))
    assert by_channel == Counter(ch for ch, _ in samples)
    for d in docs:
        assert d["text"].strip() and d["region"] and d["registered_at"]
        assert d["regime"] in ("fz59", "pos", "incident", "hotline")
        if d["channel"] == "email":
            assert d["regime"] == "pos", "e-mail is not a 59-FZ channel since 30 March 2025"

    # Every invalid event dead-lettered with its reason and the original bytes; counted.
    reasons = Counter(orjson.loads(r.value)["reason"] for r in dead)
    assert reasons == Counter(kind for _, _, kind in invalid)
    originals = Counter(v for _, v, _ in invalid)
    assert Counter(base64.b64decode(orjson.loads(r.value)["value_b64"]) for r in dead) == originals
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
                  if line.startswith("appeals_deadletter_total{"))
    assert counted == len(invalid)

    # The reworded resend is registered and points at the original.
    nd = {d["external_id"]: d for d in docs if d["external_id"].startswith("nd-")}
    assert nd["nd-1"]["duplicate_of"] is None
    assert nd["nd-2"]["duplicate_of"] == nd["nd-1"]["appeal_id"]

    # Personal data never reaches the log.
    personal = set().union(*(_personal_strings(p) for _, p in samples))
    personal |= {"Тестов Тест Тестович", "+79130000000", "Повторова Анна", "+79135550011",
                 "г. Барнаул, ул. Мира, д. 7"}
    assert len(personal) > 20
    leaked = sorted(p for p in personal if p in log_text)
    assert not leaked, f"personal data in the worker log: {leaked[:5]}"
