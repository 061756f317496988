"""Open311 GeoReport v2 subset: the three endpoints, field names and error format per the spec."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.records import CATEGORIES
from streams.settings import Settings
from tests.intake.conftest import consume_all
from tests.intake.gateway_support import TOKENS, gateway_client
from workers.intake import open311
from workers.intake.gateway import GATEWAY
from workers.sla import read_model
from workers.sla.engine import State

pytestmark = pytest.mark.integration

SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type",
                  "keywords", "group"}
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name",
                  "service_code", "description", "agency_responsible", "service_notice",
                  "requested_datetime", "updated_datetime", "expected_datetime", "address",
                  "address_id", "zipcode", "lat", "long", "media_url"}


DUE = 1739465999.0  # 2025-02-13T23:59:59+07:00
UPDATED = 1736900000.0  # 2025-01-15T00:13:20+00:00


async def _store_read_model(rds: Any, settings: Settings, appeal_id: str, status: str,
                            authority_id: str, **more: Any) -> None:
    """The appeal's read model, through the SLA agent's own writer and key prefix."""
    state: State = {"id": appeal_id, "p": 0, "status": status, "auth": authority_id,
                    "regime": "fz59", "cat": "roads", "muni": None, "reg": DUE - 30 * 86400,
                    "due": DUE, "answered": UPDATED if status == "answered" else None,
                    "on_time": True, "alerts": [], "cycle": 0, "ext": 0, "breached": None,
                    "bdays": [], "v": 1, **more}
    prefix = read_model.key_prefix(settings.app_id)
    assert await read_model.write(rds, prefix, [state], UPDATED) == 1


async def _mark_open311(rds: Any, settings: Settings, appeal_id: str) -> None:
    """The gateway's record of an Open311 submission (here without its time)."""
    await rds.hset(open311.OPEN311_KEY.format(prefix=read_model.key_prefix(settings.app_id),
                                              appeal_id=appeal_id),
                   mapping={"service_code": "roads"})


def test_status_is_read_from_the_sla_read_model(redis_server: Any) -> None:
    """GET finds what the SLA agent wrote under its app-id prefix (it once read an unprefixed
    key nobody writes, so every request stayed "open" with no agency or deadline)."""
    settings = Settings(redis=redis_server.url, app_id=f"o311-{uuid.uuid4().hex[:8]}")
    open_id, answered_id = uuid.uuid4().hex[:24], uuid.uuid4().hex[:24]

    async def go() -> list[tuple[int, Any]]:
        rds = aioredis.from_url(settings.redis)
        await _store_read_model(rds, settings, open_id, "running", "22-minzdrav")
        await _store_read_model(rds, settings, answered_id, "answered", "22-mintrans")
        for rid in (open_id, answered_id):
            await _mark_open311(rds, settings, rid)
        return await _get_requests(rds, settings, (open_id, answered_id))

    (s1, b1), (s2, b2) = asyncio.run(go())
    assert (s1, s2) == (200, 200)
    assert set(b1[0]) == REQUEST_FIELDS and set(b2[0]) == REQUEST_FIELDS
    assert (b1[0]["status"], b1[0]["agency_responsible"]) == ("open", "22-minzdrav")
    assert (b2[0]["status"], b2[0]["agency_responsible"]) == ("closed", "22-mintrans")
    for body in (b1, b2):
        assert body[0]["service_code"] == "roads" and body[0]["service_name"] == "Дороги"
        assert body[0]["expected_datetime"] == "2025-02-13T16:59:59+00:00"
        assert body[0]["updated_datetime"] == "2025-01-15T00:13:20+00:00"
        # no submission time kept here: the registration time comes from the read model
        assert body[0]["requested_datetime"] == "2025-01-14T16:59:59+00:00"


async def _get_requests(rds: Any, settings: Settings,
                        ids: tuple[str, ...]) -> list[tuple[int, Any]]:
    """(status, body) of the Open311 GET of each of ``ids`` on a gateway app over ``rds``,
    which is closed afterwards."""
    app = web.Application()
    app[GATEWAY] = SimpleNamespace(redis=rds, settings=settings)
    open311.setup(app)
    out = []
    try:
        async with TestClient(TestServer(app)) as c:
            for rid in ids:
                r = await c.get(f"/open311/v2/requests/{rid}.json")
                out.append((r.status, await r.json()))
    finally:
        await rds.aclose()
    return out


def test_get_answers_only_for_appeals_submitted_through_open311(redis_server: Any) -> None:
    """The route is public and appeal ids are guessable (UUIDv5 of channel and source id:
    59-FZ registration numbers, sequential POS ids): it answered for any appeal of any channel
    from the read model, telling anyone its category (healthcare, social), body and dates.
    An appeal the gateway did not take through Open311 now answers exactly as an unknown id,
    and no answer carries ``duplicate_of`` (it links two appeals of one author)."""
    settings = Settings(redis=redis_server.url, app_id=f"o311-{uuid.uuid4().hex[:8]}")
    fz59_id, open311_id, unknown_id = (uuid.uuid4().hex[:24] for _ in range(3))

    async def go() -> list[tuple[int, Any]]:
        rds = aioredis.from_url(settings.redis)
        await _store_read_model(rds, settings, fz59_id, "running", "22-minzdrav")
        await _store_read_model(rds, settings, open311_id, "running", "22-minzdrav",
                                dup=fz59_id)
        await _mark_open311(rds, settings, open311_id)
        return await _get_requests(rds, settings, (fz59_id, unknown_id, open311_id))

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(go())
    assert (s1, b1) == (s2, b2) == (404, [{"code": 404,
                                           "description": "service_request_id not found"}])
    assert s3 == 200 and set(b3[0]) == REQUEST_FIELDS
    assert fz59_id not in orjson.dumps(b3).decode()


def test_services(intake_settings: Settings) -> None:
    async def go() -> tuple[int, str, Any]:
        async with gateway_client(intake_settings) as c:
            r = await c.get("/open311/v2/services.json")
            return r.status, r.content_type, await r.json()

    status, ctype, services = asyncio.run(go())
    assert (status, ctype) == (200, "application/json")
    assert [s["service_code"] for s in services] == list(CATEGORIES)
    for s in services:
        assert set(s) == SERVICE_FIELDS
        assert s["metadata"] is False and s["type"] == "realtime"
        assert s["service_name"] and any("а" <= ch <= "я" for ch in s["service_name"].lower())
        assert isinstance(s["keywords"], str) and isinstance(s["group"], str)


def test_post_form_then_get_status(intake_settings: Settings) -> None:
    form = {
        "api_key": TOKENS["city-app"], "service_code": "roads", "lat": "53.3481",
        "long": "83.7798", "description": "Глубокая яма у остановки", "email": "Ya.Test@Example.ru",
        "first_name": "Яна", "last_name": "Тестова", "phone": "8 913 000 88 01",
        "jurisdiction_id": "22", "media_url": "https://img.example.ru/p.jpg",
    }

    async def go() -> tuple:
        async with gateway_client(intake_settings) as c:
            r = await c.post("/open311/v2/requests.json", data=form)
            created = (r.status, await r.json())
            rid = created[1][0]["service_request_id"]
            before = await c.get(f"/open311/v2/requests/{rid}.json")
            before_body = (before.status, await before.json())
            # the read model appears once the appeal is routed: written as the SLA agent does
            rds = aioredis.from_url(intake_settings.redis)
            await _store_read_model(rds, intake_settings, rid, "answered", "22-mintrans")
            await rds.aclose()
            after = await c.get(f"/open311/v2/requests/{rid}.json")
            # Hex ids are case-insensitive: one a client prints in upper case finds it too.
            upper = await c.get(f"/open311/v2/requests/{rid.upper()}.json")
            assert upper.status == 200 and await upper.json() == await after.json()
            return created, before_body, (after.status, await after.json())

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(go())
    assert s1 == 201
    assert set(b1[0]) == {"service_request_id", "service_notice", "account_id"}
    assert b1[0]["account_id"] is None
    rid = b1[0]["service_request_id"]
    assert s2 == 200 and len(b2) == 1 and set(b2[0]) == REQUEST_FIELDS
    assert b2[0]["service_request_id"] == rid
    assert b2[0]["status"] == "open" and b2[0]["service_code"] == "roads"
    assert b2[0]["service_name"] == "Дороги"
    assert (b2[0]["lat"], b2[0]["long"]) == (53.3481, 83.7798)
    assert b2[0]["requested_datetime"].endswith("+00:00")
    assert b2[0]["agency_responsible"] is None and b2[0]["expected_datetime"] is None
    assert "Тестова" not in orjson.dumps(b2).decode()  # public GET: no personal data
    assert s3 == 200
    assert set(b3[0]) == REQUEST_FIELDS
    assert b3[0]["status"] == "closed" and b3[0]["status_notes"] == "Дан ответ по существу"
    assert b3[0]["agency_responsible"] == "22-mintrans"
    assert b3[0]["expected_datetime"] == "2025-02-13T16:59:59+00:00"
    assert b3[0]["updated_datetime"] == "2025-01-15T00:13:20+00:00"
    assert b3[0]["requested_datetime"] == b2[0]["requested_datetime"]  # kept at submission
    assert b3[0]["description"] is None and b3[0]["address"] is None
    # the intake event is a web-channel appeal, normalised
    events = consume_all(intake_settings, "web", expect=1)
    assert len(events) == 1
    event = orjson.loads(events[0][1])
    assert event["channel"] == "web" and event["category_hint"] == "roads"
    assert event["author"] == {"name": "Тестова Яна", "phone": "+79130008801",
                               "email": "ya.test@example.ru", "handle": None}
    assert event["extra"]["open311"]["lat"] == 53.3481
    assert event["attachments"][0]["url"] == "https://img.example.ru/p.jpg"


def test_post_json_and_errors(intake_settings: Settings) -> None:
    ok = {"api_key": TOKENS["city-app"], "service_code": "landscaping",
          "address_string": "г. Барнаул, ул. Вымышленная, 1", "description": "Не горит фонарь"}

    async def go() -> list[tuple[int, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for body in (ok, {**ok, "api_key": None}, {**ok, "api_key": "wrong"},
                         {**ok, "service_code": "potholes"}, {**ok, "service_code": None},
                         {**ok, "address_string": None}, {**ok, "lat": "north"}):
                body = {k: v for k, v in body.items() if v is not None}
                r = await c.post("/open311/v2/requests.json", json=body)
                out.append((r.status, await r.json()))
            r = await c.get("/open311/v2/requests/0123456789abcdef01234567.json")
            out.append((r.status, await r.json()))
            r = await c.get("/open311/v2/requests/not-an-id.json")
            out.append((r.status, await r.json()))
        return out

    results = asyncio.run(go())
    assert results[0][0] == 201
    assert [s for s, _ in results[1:]] == [401, 403, 400, 400, 400, 400, 404, 404]
    for status, body in results[1:]:
        assert isinstance(body, list) and body
        for err in body:
            assert set(err) == {"code", "description"} and err["code"] == status


def test_a_json_body_that_is_not_an_object_is_a_400(intake_settings: Settings) -> None:
    """A body of `5`, `true` or `null` was a 500 in text/plain, before the api_key was
    checked: anyone could cause one (review of session 15)."""
    async def go() -> list[tuple[int, str, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for raw in (b"5", b"true", b"null", b'"text"', b"[1, 2]"):
                r = await c.post("/open311/v2/requests.json", data=raw,
                                 headers={"Content-Type": "application/json"})
                out.append((r.status, r.content_type, await r.json()))
        return out

    for status, ctype, body in asyncio.run(go()):
        assert (status, ctype) == (400, "application/json"), body
        assert body[0]["code"] == 400


_PART = b'--zz\r\nContent-Disposition: form-data; name="api_key"\r\n'
MALFORMED_BODIES = [
    ("application/x-www-form-urlencoded; charset=nonexistent", None, b"api_key=tok-a&x=1"),
    ("multipart/form-data; boundary=zz", None,
     _PART + b"Content-Type: text/plain; charset=nonexistent\r\n\r\ntok-a\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", None,
     _PART + b"Content-Transfer-Encoding: rot13\r\n\r\ntok-a\r\n--zz--\r\n"),
    ("application/x-www-form-urlencoded", "gzip", b"not gzip at all"),
    ("application/json", "gzip", b"not gzip at all"),
]


def test_a_body_that_cannot_be_decoded_is_a_400_not_a_500() -> None:
    """An unknown charset (urlencoded body or multipart part), an unknown
    Content-Transfer-Encoding or a Content-Encoding that does not decode: aiohttp raises
    LookupError, RuntimeError or RequestPayloadError, which were a text/plain 500 for anyone
    (no api_key needed), counted towards the critical AppealsGatewayErrors alert."""
    from monitoring import metrics
    from tests.intake.fakes import auth, gateway

    def count_5xx() -> float:
        return sum(s.value for m in metrics.GATEWAY_REQUESTS.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels["code"].startswith("5"))

    async def go() -> list[tuple[int, str, Any]]:
        out = []
        async with gateway() as (c, producer, _r):
            for ctype, encoding, body in MALFORMED_BODIES:
                headers = {"Content-Type": ctype, "Connection": "close"}
                if encoding:
                    headers["Content-Encoding"] = encoding
                r = await c.post("/open311/v2/requests.json", data=body, headers=headers)
                out.append((r.status, r.content_type, await r.json()))
            r = await c.post("/v1/appeals", data=b"not gzip at all", headers={
                **auth(), "Content-Type": "application/json", "Content-Encoding": "gzip",
                "Connection": "close"})
            out.append((r.status, r.content_type, await r.json()))
            assert producer.sent == []
        return out

    before = count_5xx()
    *open311_answers, v1 = asyncio.run(go())
    for status, ctype, body in open311_answers:
        assert (status, ctype) == (400, "application/json"), body
        assert body[0]["code"] == 400
    assert [b[0]["description"] for _, _, b in open311_answers[:3]] == [
        "the form could not be read"] * 3
    assert v1[:2] == (400, "application/json") and v1[2]["error"] == "bad_body"
    assert count_5xx() == before


@pytest.mark.parametrize("value", ["90d", "nan", "inf", "0", "-1", "1e-9"])
def test_open311_ttl_is_checked_at_start_up(value: str) -> None:
    """APPEALS_OPEN311_TTL_DAYS was read on every POST after the appeal was published: "90d"
    or "nan" answered 500 for a stored appeal, 0 expired the record at once (GET 404)."""
    from streams.settings import ConfigError
    from workers.intake.gateway import GatewayConfig

    with pytest.raises(ConfigError) as err:
        GatewayConfig.load(Settings.load({}), {"APPEALS_OPEN311_TTL_DAYS": value})
    assert str(err.value).startswith("APPEALS_OPEN311_TTL_DAYS")


def test_open311_record_lives_for_the_configured_ttl(intake_settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.intake.gateway_support import gateway_config
    from workers.intake.gateway import GatewayConfig

    cfg = GatewayConfig.load(intake_settings, {"APPEALS_OPEN311_TTL_DAYS": "0.5"})
    assert cfg.open311_ttl_s == 43_200
    # the environment is not read again per request (it was, after publishing)
    monkeypatch.setenv("APPEALS_OPEN311_TTL_DAYS", "nan")

    async def go() -> tuple[int, int, int]:
        async with gateway_client(intake_settings, gateway_config(open311_ttl_s=43_200)) as c:
            r = await c.post("/open311/v2/requests.json", data={
                "api_key": TOKENS["city-app"], "service_code": "roads", "lat": "53.3",
                "long": "83.7", "description": f"Яма {uuid.uuid4().hex[:6]}"})
            rid = (await r.json())[0]["service_request_id"]
            g = await c.get(f"/open311/v2/requests/{rid}.json")
            rds = aioredis.from_url(intake_settings.redis)
            try:
                ttl = await rds.ttl(f"{intake_settings.app_id}:open311:{rid}")
            finally:
                await rds.aclose()
            return r.status, g.status, ttl

    created, got, ttl = asyncio.run(go())
    assert (created, got) == (201, 200)
    assert 43_000 < ttl <= 43_200


def test_a_jurisdiction_that_is_no_region_is_404_not_the_default_region() -> None:
    """GeoReport v2: 404 "jurisdiction_id provided was not found". It was replaced by
    APPEALS_DEFAULT_REGION, so a Moscow request was routed and timed in Altai Krai. Region
    codes in every accepted form still work; without jurisdiction_id, the default applies."""
    from tests.intake.fakes import gateway

    form = {"api_key": "tok-a", "service_code": "roads", "lat": "55.75", "long": "37.61",
            "description": "Яма на Тверской"}

    async def go() -> tuple[list[tuple[int, Any, str | None]], list[int]]:
        out = []
        async with gateway(Settings(default_region="22")) as (c, producer, _r):
            for j in ("RU-MOW", "moscow.ru", "770", "Москва", "77", "077", "177", None):
                data = {**form, "description": f"{form['description']} ({j})"}
                if j is not None:
                    data["jurisdiction_id"] = j
                n = len(producer.sent)
                r = await c.post("/open311/v2/requests.json", data=data,  # (fake Redis:
                                 headers={"Idempotency-Key": f"j-{j}"})  # keyed requests)
                region = (orjson.loads(producer.sent[n][2])["region"]
                          if len(producer.sent) > n else None)
                out.append((r.status, await r.json(), region))
            services = []
            for j in ("RU-MOW", "22"):
                r = await c.get(f"/open311/v2/services.json?jurisdiction_id={j}")
                services.append(r.status)
        return out, services

    answers, services = asyncio.run(go())
    not_found = [{"code": 404, "description": "jurisdiction_id provided was not found"}]
    assert answers[:4] == [(404, not_found, None)] * 4  # nothing published
    assert [(s, region) for s, _, region in answers[4:]] == [
        (201, "77"), (201, "77"), (201, "77"), (201, "22")]
    assert services == [404, 200]


def test_a_client_region_that_is_no_region_is_refused_at_start_up(tmp_path: Any) -> None:
    from streams.settings import ConfigError
    from workers.intake.gateway import GatewayConfig

    toml = tmp_path / "tokens.toml"
    toml.write_text('[clients.app]\ntoken = "t"\nregion = "RU-MOW"\n'
                    '[clients.ok]\ntoken = "u"\nregion = "077"\n', encoding="utf-8")
    env = {"APPEALS_GATEWAY_TOKENS_FILE": str(toml)}
    with pytest.raises(ConfigError) as err:
        GatewayConfig.load(Settings.load({}), env)
    assert "clients.app.region = 'RU-MOW': not a region code" in str(err.value)
    toml.write_text('[clients.ok]\ntoken = "u"\nregion = "077"\n', encoding="utf-8")
    assert GatewayConfig.load(Settings.load({}), env).clients[0].region == "77"
