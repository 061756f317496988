"""The gateway's answers are true to what happened, and retries never make a second appeal.

Real broker and Redis throughout; the broker is frozen (SIGSTOP) to make Kafka miss the send
timeout the way a stalled broker does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import time
import uuid
from typing import Any

import orjson
import pytest
import redis

from schemas.validation import InvalidEvent
from streams import topics as t
from streams.settings import Settings
from streams.testing import isolated_settings
from tests.intake.conftest import consume_all
from tests.intake.gateway_support import TOKENS, auth, gateway_client, gateway_config
from workers.intake import cli
from workers.intake.core import appeal_id_for, decode_intake, intake_from_dict
from workers.intake.gateway import scoped_external_id

pytestmark = pytest.mark.integration


def _web(text: str, **fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "channel": "web", "submitted_at": "2026-11-20T10:00:00+07:00",
            "region": "22", "text": text, **fields}


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# --------------------------------------------------------------------------- 1: send timeout

def test_send_timeout_is_504_outcome_unknown_and_open311_retry_is_the_same_appeal(
    broker: Any, redis_server: Any
) -> None:
    """The broker stalls past the send timeout: the records were handed to the producer and do
    reach the topic once it resumes, so the answer must not say "not stored". A keyless Open311
    request resent as told names the same appeal (it once got a fresh uuid4 external id)."""
    settings = isolated_settings(broker.url, redis_server.url, partitions=1)
    t.ensure_topics(settings)
    form = {"api_key": TOKENS["city-app"], "service_code": "roads", "lat": "53.3",
            "long": "83.7", "description": "Яма у остановки (таймаут)"}

    async def go() -> tuple[Any, ...]:
        async with gateway_client(settings, gateway_config(send_timeout=3.0)) as c:
            warm = await c.post("/v1/appeals", headers=auth(),  # connect the producer first
                                json=_web("Прогрев", external_id="warm-up"))
            assert warm.status == 202
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                r1, r2 = await asyncio.gather(
                    c.post("/open311/v2/requests.json", data=form),
                    c.post("/v1/appeals", json=_web("Не горит фонарь (таймаут)"),
                           headers={**auth(), "Idempotency-Key": "stall-1"}))
                first = (r1.status, await r1.json(), r1.headers.get("Retry-After"))
                keyed = (r2.status, await r2.json())
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await asyncio.sleep(3)
            r3 = await c.post("/open311/v2/requests.json", data=form)  # the retry
            r4 = await c.post("/v1/appeals", json=_web("Не горит фонарь (таймаут)"),
                              headers={**auth(), "Idempotency-Key": "stall-1"})
            return first, keyed, (r3.status, await r3.json()), (r4.status, await r4.json())

    first, keyed, retry, keyed_retry = asyncio.run(go())
    status, body, retry_after = first
    assert status == 504 and retry_after == "5", first
    assert "unknown" in body[0]["description"] and "not stored" not in body[0]["description"]
    assert keyed[0] == 504 and keyed[1]["error"] == "outcome_unknown", keyed
    assert "Idempotency-Key" in keyed[1]["description"]
    assert retry[0] == 201 and keyed_retry[0] == 202
    rid = retry[1][0]["service_request_id"]
    assert keyed_retry[1]["appeal_id"] == appeal_id_for(
        "web", scoped_external_id("pos-platform", "stall-1"))
    time.sleep(2)
    events = [orjson.loads(v) | {"_key": k.decode()}
              for k, v in consume_all(settings, "web", expect=5) if k]
    open311 = [e for e in events if e["extra"].get("source") == "open311"]
    # the stalled send arrived after all; the retry names the same appeal, which the intake
    # agent's exact dedupe (channel, external id) registers once
    assert len(open311) == 2
    assert {e["_key"] for e in open311} == {rid}
    assert len({e["external_id"] for e in open311}) == 1
    assert len({e["submitted_at"] for e in open311}) == 1
    keyed_events = [e for e in events if e["text"] == "Не горит фонарь (таймаут)"]
    assert keyed_events and {e["_key"] for e in keyed_events} == {keyed_retry[1]["appeal_id"]}


class _FullBuffer:
    """A producer whose send() blocks after ``hand_over`` records, as aiokafka's does when a
    batch is full and the broker stalls (up to its request timeout); nothing is acked."""

    def __init__(self, hand_over: int) -> None:
        self.hand_over = hand_over
        self.sent = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        if self.sent >= self.hand_over:
            await asyncio.sleep(30)
        self.sent += 1
        return asyncio.get_running_loop().create_future()  # never acknowledged

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize(("hand_over", "status"), [(0, 503), (1, 504)])
def test_send_timeout_bounds_the_whole_send_not_only_the_wait_for_acks(
        hand_over: int, status: int) -> None:
    """send() could block up to the producer's request timeout before the wait for acks
    began: with a stalled broker a batch was answered after several send timeouts. Nothing
    handed over is still 503, something handed over and not acked 504, and the key is
    released either way."""
    from aiohttp.test_utils import TestClient, TestServer

    from tests.intake.fakes import FakeRedis
    from workers.intake.gateway import create_app

    async def go() -> list[tuple[int, float]]:
        producer = _FullBuffer(hand_over)
        app = create_app(Settings(), gateway_config(send_timeout=1.0),
                         producer=producer, redis=FakeRedis())
        out = []
        async with TestClient(TestServer(app)) as c:
            for _ in range(2):  # the retry is not refused as in flight (409)
                producer.sent = 0
                started = time.monotonic()
                r = await c.post("/v1/appeals", json=[_web("Яма"), _web("Фонарь")],
                                 headers={**auth(), "Idempotency-Key": "stalled"})
                out.append((r.status, time.monotonic() - started))
        return out

    for got, took in asyncio.run(go()):
        assert got == status and took < 3.0, (got, took)


def test_keyless_open311_repeat_is_a_retry_and_another_request_is_another_appeal(
    intake_settings: Settings,
) -> None:
    form = {"api_key": TOKENS["city-app"], "service_code": "roads",
            "address_string": "г. Барнаул, ул. Мира, 5", "description": "Яма во дворе"}

    async def go() -> list[str]:
        ids = []
        async with gateway_client(intake_settings) as c:
            for body, as_json in ((form, False), (form, True),  # form or JSON: one request
                                  ({**form, "description": "Яма во дворе дома 7"}, False),
                                  ({**form, "api_key": TOKENS["pos-platform"]}, False)):
                r = (await c.post("/open311/v2/requests.json", json=body) if as_json
                     else await c.post("/open311/v2/requests.json", data=body))
                assert r.status == 201, await r.text()
                ids.append((await r.json())[0]["service_request_id"])
        return ids

    # The Redis server and the app id are shared with the other gateway tests, whose keyless
    # Open311 requests of this client leave retry keys of their own: only this test's count.
    pattern = f"{intake_settings.app_id}:open311:retry:city-app:*"
    rds = redis.Redis.from_url(intake_settings.redis)
    before = set(rds.keys(pattern))
    first, repeat, other_text, other_client = asyncio.run(go())
    assert repeat == first
    assert len({first, other_text, other_client}) == 3
    try:
        keys = [k for k in rds.keys(pattern) if k not in before]
        assert len(keys) == 2
        ttl = rds.ttl(keys[0])
        assert 86_000 < ttl <= 86_400  # APPEALS_GATEWAY_OPEN311_RETRY_WINDOW
        assert b"\xd0\xaf\xd0\xbc\xd0\xb0" not in b"".join(keys)  # no request text in keys
    finally:
        rds.close()


# --------------------------------------------------------------------------- 2: key collisions

def test_single_key_and_batch_item_keys_never_name_the_same_appeal(
    intake_settings: Settings,
) -> None:
    """Single "K#0" vs batch "K" (item 0 once came back "duplicate" of the other appeal and was
    never published); "W  1" vs "W 1" (normalisation folded them into one external id)."""
    key = f"K{uuid.uuid4().hex[:6]}"

    async def go() -> list[dict[str, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for body, k in ((_web("Яма на дороге на улице Мира"), f"{key}#0"),
                            ([_web("Не горит фонарь в парке"), _web("Собаки во дворе")], key),
                            (_web("Сломана скамейка"), f"{key}  1"),
                            (_web("Нет воды в доме"), f"{key} 1"),
                            (_web("Яма на дороге на улице Мира"), f"{key}#0")):  # a retry
                r = await c.post("/v1/appeals", data=json.dumps(body),
                                 headers={**auth(), "Idempotency-Key": k})
                assert r.status == 202, await r.text()
                out.append(await r.json())
        return out

    single, batch, spaced, plain, retry = asyncio.run(go())
    assert single["status"] == "accepted"
    assert [r["status"] for r in batch["results"]] == ["accepted", "accepted"]
    assert spaced["status"] == plain["status"] == "accepted"
    ids = [single["appeal_id"], *batch["appeal_ids"], spaced["appeal_id"], plain["appeal_id"]]
    assert len(set(ids)) == 5
    assert retry["status"] == "duplicate" and retry["appeal_id"] == single["appeal_id"]
    # a batch item's id is its item key's, ``<key>#0``
    assert batch["appeal_ids"][0] == appeal_id_for("web", scoped_external_id("pos-platform",
                                                                             f"{key}#0"))
    texts = {orjson.loads(v)["text"] for _, v in consume_all(intake_settings, "web", expect=5)}
    assert {"Не горит фонарь в парке", "Собаки во дворе", "Сломана скамейка",
            "Нет воды в доме"} <= texts


def test_a_key_reused_with_another_request_is_422_on_either_endpoint(
    intake_settings: Settings,
) -> None:
    """The same Idempotency-Key with a different payload (on the same
    endpoint, or on /v1 and then Open311) was answered "duplicate" with the first appeal's id,
    and the second appeal was never published. Now: 422, and each endpoint has its own keys;
    a true retry (the same request, re-encoded) is still a duplicate, nothing re-sent."""
    key = f"K{uuid.uuid4().hex[:6]}"
    form = {"api_key": TOKENS["pos-platform"], "service_code": "roads", "lat": "53.3",
            "long": "83.7", "description": "Яма на дороге у школы"}

    async def go() -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        headers = {**auth(), "Idempotency-Key": key}
        first = _web("Прорвало трубу", author={"phone": "8 913 000 77 01"})
        async with gateway_client(intake_settings) as c:
            for body in (first,
                         dict(reversed(list(first.items()))),  # the same request re-encoded
                         {**first, "text": "Не горит фонарь"},
                         [first, _web("Собаки во дворе")],
                         [first, _web("Собаки во дворе")],
                         [first, _web("Сломана скамейка")]):
                r = await c.post("/v1/appeals", data=json.dumps(body, ensure_ascii=False),
                                 headers=headers)
                out.append((r.status, await r.json()))
            for params in (form, form, {**form, "description": "Нет воды"}):
                r = await c.post("/open311/v2/requests.json", data=params,
                                 headers={"Idempotency-Key": key})
                out.append((r.status, await r.json()))
        return out

    (single, retry, other, batch, batch_retry, batch_other,
     o311, o311_retry, o311_other) = asyncio.run(go())
    assert single[0] == 202 and single[1]["status"] == "accepted"
    assert retry[0] == 202 and retry[1]["status"] == "duplicate"
    assert retry[1]["appeal_id"] == single[1]["appeal_id"]
    assert other[0] == 422 and other[1]["error"] == "idempotency_key_reused", other
    assert "Idempotency-Key reused with a different request" in other[1]["description"]
    assert batch[0] == 202 and [r["status"] for r in batch[1]["results"]] == ["accepted"] * 2
    assert [r["status"] for r in batch_retry[1]["results"]] == ["duplicate"] * 2
    assert batch_other[0] == 422
    # Open311 with the client's /v1 key: another request, another appeal
    assert o311[0] == 201 and o311_retry[0] == 201
    rid = o311[1][0]["service_request_id"]
    assert o311_retry[1][0]["service_request_id"] == rid != single[1]["appeal_id"]
    assert o311_other == (422, [{"code": 422, "description": (
        "Idempotency-Key reused with a different request: the key names an earlier request "
        "with another payload; send this one with a new key")}])
    events = [orjson.loads(v) | {"_key": k.decode()}
              for k, v in consume_all(intake_settings, "web", expect=4) if k]
    texts = sorted(e["text"] for e in events)
    assert texts == sorted(["Прорвало трубу", "Прорвало трубу", "Собаки во дворе",
                            "Яма на дороге у школы"])  # single, batch (2), Open311
    assert len({e["_key"] for e in events}) == 4  # four appeals, none dropped as a repeat
    rds = redis.Redis.from_url(intake_settings.redis)
    try:
        for space, item_keys in (("intake:idem", (key, f"{key}#0", f"{key}#1")),
                                 ("open311:idem", (key,))):
            for k in item_keys:  # a digest of the request next to each marker, no content
                digest = hashlib.sha256(k.encode()).hexdigest()[:40]
                fp = rds.get(f"{intake_settings.app_id}:{space}:pos-platform:{digest}:fp")
                assert fp is not None and len(fp) == 64, (space, k)
    finally:
        rds.close()


def test_a_marker_of_an_older_gateway_without_a_fingerprint_still_names_the_appeal(
    intake_settings: Settings,
) -> None:
    """Upgrade: markers written before fingerprints have none; they are taken as matching."""
    key = f"old-{uuid.uuid4().hex[:6]}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    old_id = "0123456789abcdef01234567"
    rds = redis.Redis.from_url(intake_settings.redis)
    try:
        rds.set(f"{intake_settings.app_id}:intake:idem:pos-platform:{digest}", f"d:{old_id}",
                ex=600)
    finally:
        rds.close()

    async def go() -> tuple[int, Any]:
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", json=_web("Что угодно"),
                             headers={**auth(), "Idempotency-Key": key})
            return r.status, await r.json()

    status, body = asyncio.run(go())
    assert (status, body["status"], body["appeal_id"]) == (202, "duplicate", old_id)


# --------------------------------------------------------------------------- 3: native fields

def test_native_person_fields_without_a_canonical_place_are_kept_in_extra() -> None:
    fz59 = intake_from_dict({
        "channel": "fz59", "reg_number": "Ж-22-1/26", "received_at": "2026-11-20T10:00:00+07:00",
        "region": "22", "body": "Прошу отремонтировать дорогу",
        "incident_address": "г. Барнаул, ул. Мира, 5",
        "applicant": {"surname": "Иванов", "name": "Иван", "phone": "+79130000001",
                      "postal_address": "656000, г. Барнаул, ул. Ленина, д. 1, кв. 2",
                      "snils": "112-233-445 95", "phone2": "+79130000002"}})
    assert fz59.address == "г. Барнаул, ул. Мира, 5"
    assert fz59.extra["applicant"] == {
        "postal_address": "656000, г. Барнаул, ул. Ленина, д. 1, кв. 2",
        "snils": "112-233-445 95", "phone2": "+79130000002"}
    pos = intake_from_dict({
        "channel": "pos", "id": "99001", "created": "2026-11-20T10:00:00+07:00",
        "region_code": "22", "text": "Нет отопления",
        "author": {"last_name": "Петрова", "first_name": "Анна", "name": "Аня",
                   "phone": "+79130000003", "snils": "112-233-445 96"}})
    assert pos.author is not None and pos.author.name == "Петрова Анна"
    assert pos.extra["pos_author"] == {"name": "Аня", "snils": "112-233-445 96"}
    hotline = intake_from_dict({
        "channel": "hotline", "call_id": "122-22-1", "call_started": "2026-11-20 10:00:00",
        "region": "22", "summary": "Нет света в подъезде",
        "caller": {"name": "Сидоров", "phone": "+79130000004", "phone_alt": "+79130000005"}})
    assert hotline.extra["caller"] == {"phone_alt": "+79130000005"}


def test_kept_person_fields_never_reach_the_logs(intake_settings: Settings,
                                                 caplog: Any) -> None:
    item = {"channel": "fz59", "reg_number": f"Ж-{uuid.uuid4().hex[:6]}",
            "received_at": "2026-11-20T10:00:00+07:00", "region": "22",
            "body": "Прошу отремонтировать дорогу",
            "applicant": {"surname": "Иванов", "postal_address": "ул. Секретная, д. 9",
                          "snils": "999-888-777 66"}}

    async def go() -> None:
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", json=item, headers=auth())
            assert r.status == 202

    with caplog.at_level(logging.DEBUG):
        asyncio.run(go())
    assert "appeal_id=" in caplog.text
    assert "Секретная" not in caplog.text and "999-888-777" not in caplog.text
    event = orjson.loads(consume_all(intake_settings, "fz59", expect=1)[0][1])
    assert event["extra"]["applicant"]["snils"] == "999-888-777 66"


# --------------------------------------------------------------------------- 4: Redis prefix

def test_gateway_redis_keys_are_prefixed_with_the_app_id(broker: Any,
                                                         redis_server: Any) -> None:
    """Two regions (app ids) on one Redis, topic prefix alike: the same client and key once
    shared a Redis key, and the second region's appeal came back "duplicate"."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    a = isolated_settings(broker.url, redis_server.url, partitions=1, topic_prefix=prefix)
    b = a.replace(app_id=f"{a.app_id}-b")
    t.ensure_topics(a)

    async def go() -> list[Any]:
        out = []
        for settings, text in ((a, "Яма на дороге (регион А)"), (b, "Яма на дороге (регион Б)")):
            async with gateway_client(settings) as c:
                r = await c.post("/v1/appeals", json=_web(text),
                                 headers={**auth(), "Idempotency-Key": "shared-1"})
                out.append(await r.json())
                r = await c.post("/open311/v2/requests.json", data={
                    "api_key": TOKENS["city-app"], "service_code": "roads",
                    "address_string": "ул. Мира, 1", "description": text})
                out.append((await r.json())[0]["service_request_id"])
        return out

    first, o311_a, second, o311_b = asyncio.run(go())
    assert first["status"] == second["status"] == "accepted"
    rds = redis.Redis.from_url(a.redis)
    try:
        for settings, rid in ((a, o311_a), (b, o311_b)):
            assert rds.keys(f"{settings.app_id}:intake:idem:pos-platform:*")
            assert rds.exists(f"{settings.app_id}:open311:{rid}")
        assert not rds.keys(f"{prefix}intake:idem:*") and not rds.keys(f"{prefix}open311:*")
    finally:
        rds.close()


# --------------------------------------------------------------------------- 5: small ones

def test_404_and_405_are_json(intake_settings: Settings) -> None:
    async def go() -> list[tuple[int, str, Any, str | None]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for method, path in (("GET", "/v1/nowhere"), ("GET", "/v1/appeals"),
                                 ("GET", "/open311/v2/nowhere.json"),
                                 ("DELETE", "/open311/v2/services.json")):
                r = await c.request(method, path, headers=auth())
                out.append((r.status, r.content_type, await r.json(),
                            r.headers.get("Allow")))
        return out

    (s1, ct1, b1, _), (s2, ct2, b2, allow), (s3, ct3, b3, _), (s4, ct4, b4, _) = (
        asyncio.run(go()))
    assert (s1, ct1, b1["error"]) == (404, "application/json", "not_found")
    assert (s2, ct2, b2["error"]) == (405, "application/json", "method_not_allowed")
    assert allow is not None and "POST" in allow
    assert (s3, ct3, b3) == (404, "application/json", [{"code": 404,
                                                        "description": "no such resource"}])
    assert (s4, ct4, b4[0]["code"]) == (405, "application/json", 405)


def test_json_nested_past_the_parser_limit_is_too_deep(intake_settings: Settings) -> None:
    very_deep = _deep(2000)  # valid JSON; orjson refuses past 1024 levels
    for raw in (very_deep, b'{"channel": "pos", "x": ' + very_deep + b"}"):
        with pytest.raises(InvalidEvent) as info:
            decode_intake(raw, max_message_bytes=10**7)
        assert info.value.reason == "too_deep"
    assert cli.produce([very_deep], None)[1] == {"too_deep": [1]}

    async def go() -> list[tuple[int, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", data=very_deep,
                             headers={**auth(), "Content-Type": "application/json"})
            out.append((r.status, await r.json()))
            r = await c.post("/v1/appeals", data=b"[1, 2", headers=auth())
            out.append((r.status, await r.json()))
            r = await c.post("/open311/v2/requests.json", data=b'{"api_key": ' + very_deep
                             + b"}", headers={"Content-Type": "application/json"})
            out.append((r.status, await r.json()))
        return out

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(go())
    assert s1 == 400 and [e["reason"] for e in b1["errors"]] == ["too_deep"]
    assert (s2, b2["error"]) == (400, "not_json")  # broken JSON still says so
    assert s3 == 400 and "deep" in b3[0]["description"]


def test_open311_coordinates_must_be_plain_decimals(intake_settings: Settings) -> None:
    base = {"api_key": TOKENS["city-app"], "service_code": "roads", "long": "83.7",
            "description": "Яма"}

    async def go() -> list[tuple[int, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for lat in ("1_0", "١٠", "nan", "1e1", "-53.5", ".5"):
                r = await c.post("/open311/v2/requests.json", data={**base, "lat": lat})
                out.append((r.status, await r.json()))
        return out

    results = asyncio.run(go())
    assert [s for s, _ in results] == [400, 400, 400, 201, 201, 201]
    assert results[0][1] == [{"code": 400, "description": "lat is not a decimal number"}]
