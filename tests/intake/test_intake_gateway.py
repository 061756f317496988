"""HTTP intake gateway on a real port, publishing to the real broker, idempotency in real Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from tests.intake.conftest import consume_all, load_samples
from tests.intake.fakes import HARNESS_NOW
from tests.intake.gateway_support import auth, canon_appeal, gateway_client, gateway_config
from workers.intake.core import appeal_id_for
from workers.intake.gateway import GatewayConfig, client_external_id, scoped_external_id

pytestmark = pytest.mark.integration




def test_accepts_one_appeal_and_it_is_in_kafka(intake_settings: Settings) -> None:
    async def go() -> tuple[int, dict]:
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", json=canon_appeal(), headers=auth())
            return r.status, await r.json()

    status, body = asyncio.run(go())
    assert status == 202
    expected = appeal_id_for("pos", "gw-1")
    assert body["appeal_id"] == expected and body["appeal_ids"] == [expected]
    events = consume_all(intake_settings, "pos", expect=1)
    assert len(events) == 1
    key, value = events[0]
    assert key == expected.encode()
    event = orjson.loads(value)
    assert event["external_id"] == "gw-1"
    assert event["author"]["phone"] == "+79130007701"  # normalised before publishing


def test_batch_of_native_payloads_from_every_channel(intake_settings: Settings) -> None:
    batch = [s for ch in ("pos", "incident", "fz59", "hotline", "email", "web")
             for s in load_samples(ch)]

    async def go() -> tuple[int, dict]:
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", data=json.dumps(batch), headers=auth())
            return r.status, await r.json()

    status, body = asyncio.run(go())
    assert status == 202, body
    assert len(body["appeal_ids"]) == len(batch) == len(set(body["appeal_ids"]))
    pos_events = consume_all(intake_settings, "pos", expect=5)
    assert len(pos_events) == 5
    assert {orjson.loads(v)["external_id"] for _, v in pos_events} == {
        s["id"] for s in load_samples("pos")}


def test_invalid_input_gets_400_with_field_errors(intake_settings: Settings) -> None:
    bad = canon_appeal("gw-bad", region="Алтай", text="", author={"phone": "1" * 210})
    del bad["submitted_at"]

    async def go() -> list[tuple[int, Any]]:
        out = []
        async with gateway_client(intake_settings) as c:
            for body in (bad, [canon_appeal("gw-ok"), {"channel": "nowhere"}], "[1, 2", []):
                data = body if isinstance(body, str) else json.dumps(body)
                r = await c.post("/v1/appeals", data=data, headers=auth())
                out.append((r.status, await r.json()))
            native = {**load_samples("pos")[0], "region_code": "00"}
            r = await c.post("/v1/appeals", json=native, headers=auth())
            out.append((r.status, await r.json()))
        return out

    (s1, b1), (s2, b2), (s3, b3), (s4, b4), (s5, b5) = asyncio.run(go())
    assert s1 == 400 and b1["error"] == "invalid"
    fields = {(e["field"], e["reason"]) for e in b1["errors"]}
    assert ("submitted_at", "missing_field") in fields
    assert ("region", "invalid_value") in fields  # the intake agent's codes (reason_for)
    assert ("text", "empty_text") in fields
    assert ("author.phone", "too_long") in fields
    assert "1111" not in json.dumps(b1)  # messages name the rule, not the value
    assert s2 == 400 and b2["errors"] == [
        {"index": 1, "field": "channel", "reason": "unknown_channel",
         "message": "must be one of fz59, pos, incident, hotline, email, web"}]
    assert (s3, b3["error"]) == (400, "not_json")
    assert (s4, b4["error"]) == (400, "empty_batch")
    assert s5 == 400 and b5["errors"][0]["field"] == "region"
    assert b5["errors"][0]["reason"] == "unknown_region"
    # nothing of a rejected batch was published
    assert consume_all(intake_settings, "pos", timeout=3) == []


def test_auth_401_403(intake_settings: Settings) -> None:
    async def go() -> list[int]:
        async with gateway_client(intake_settings) as c:
            statuses = []
            for headers in ({}, {"Authorization": "Basic eDp5"},
                            {"Authorization": "Bearer nope"},
                            {"Authorization": "Bearer tok-pos-1x"}):
                r = await c.post("/v1/appeals", json=canon_appeal(), headers=headers)
                statuses.append(r.status)
            # a client limited to the hotline channel
            r = await c.post("/v1/appeals", json=canon_appeal(), headers=auth("hotline"))
            statuses.append(r.status)
            return statuses

    assert asyncio.run(go()) == [401, 401, 403, 403, 403]


def test_413_over_the_size_limits(intake_settings: Settings) -> None:
    cfg = gateway_config(max_body_bytes=4096, max_batch=3)

    async def go() -> list[tuple[int, str]]:
        async with gateway_client(intake_settings, cfg) as c:
            out = []
            big = canon_appeal(text="х" * 5000)
            r = await c.post("/v1/appeals", data=json.dumps(big, ensure_ascii=False),
                             headers=auth())
            out.append((r.status, (await r.json())["error"]))
            r = await c.post("/v1/appeals", json=[canon_appeal(f"b{i}") for i in range(4)],
                             headers=auth())
            out.append((r.status, (await r.json())["error"]))
            return out

    assert asyncio.run(go()) == [(413, "too_large"), (413, "batch_too_large")]


def test_413_for_a_message_over_the_kafka_limit(broker: Any, redis_server: Any,
                                                intake_settings: Settings) -> None:
    settings = intake_settings.replace(max_message_bytes=600)

    async def go() -> tuple[int, dict]:
        async with gateway_client(settings) as c:
            r = await c.post("/v1/appeals", json=canon_appeal(text="слово " * 100), headers=auth())
            return r.status, await r.json()

    status, body = asyncio.run(go())
    assert (status, body["error"]) == (413, "message_too_large")


def test_429_when_a_client_exceeds_its_rate(intake_settings: Settings) -> None:
    cfg = gateway_config(rate=0.5, burst=2)

    async def go() -> tuple[list[int], str | None, int]:
        async with gateway_client(intake_settings, cfg) as c:
            statuses = []
            retry_after = None
            for i in range(4):
                r = await c.post("/v1/appeals", json=canon_appeal(f"r{i}"), headers=auth())
                statuses.append(r.status)
                retry_after = r.headers.get("Retry-After") or retry_after
            # another client has its own bucket
            other = await c.post("/v1/appeals", json=canon_appeal("r-other"),
                                 headers=auth("city-app"))
            return statuses, retry_after, other.status

    statuses, retry_after, other = asyncio.run(go())
    assert statuses == [202, 202, 429, 429]
    assert retry_after is not None and int(retry_after) >= 1
    assert other == 202


def test_idempotent_retry_yields_same_id_and_one_event(intake_settings: Settings) -> None:
    # no external id in the payload: the Idempotency-Key, scoped to the client, names the appeal
    native = dict(load_samples("hotline")[1])
    del native["call_id"]

    async def go() -> list[dict]:
        async with gateway_client(intake_settings) as c:
            headers = {**auth(), "Idempotency-Key": "retry-key-0001"}
            bodies = []
            for _ in range(3):
                r = await c.post("/v1/appeals", json=native, headers=headers)
                assert r.status == 202
                bodies.append(await r.json())
            # concurrent retries: only one publishes, the other may see it in flight (409)
            rs = await asyncio.gather(*(
                c.post("/v1/appeals", json=native,
                       headers={**auth(), "Idempotency-Key": "retry-key-0002"})
                for _ in range(4)))
            statuses = sorted(r.status for r in rs)
            bodies.append({"concurrent": statuses})
            # the same key from another client is another appeal
            r = await c.post("/v1/appeals", json=native,
                             headers={**auth("city-app"), "Idempotency-Key": "retry-key-0001"})
            bodies.append(await r.json())
            return bodies

    b = asyncio.run(go())
    assert b[0]["appeal_id"] == b[1]["appeal_id"] == b[2]["appeal_id"]
    mine = appeal_id_for("hotline", scoped_external_id("pos-platform", "retry-key-0001"))
    theirs = appeal_id_for("hotline", scoped_external_id("city-app", "retry-key-0001"))
    assert b[0]["appeal_id"] == mine
    assert [x["status"] for x in b[:3]] == ["accepted", "duplicate", "duplicate"]
    assert set(b[3]["concurrent"]) <= {202, 409} and 202 in b[3]["concurrent"]
    assert b[4]["status"] == "accepted" and b[4]["appeal_id"] == theirs != mine
    events = consume_all(intake_settings, "hotline", expect=3)
    ids = [k.decode() for k, _ in events if k]
    assert ids.count(mine) == 1 and ids.count(theirs) == 1  # two clients, two appeals
    assert ids.count(appeal_id_for(
        "hotline", scoped_external_id("pos-platform", "retry-key-0002"))) == 1
    first = orjson.loads(events[0][1])
    assert first["idempotency_key"] == "retry-key-0001"


def test_failed_publish_releases_the_key(intake_settings: Settings) -> None:
    class Broken:
        async def send(self, *a: Any, **k: Any) -> Any:
            raise ConnectionError("broker gone")

    async def go() -> list[int]:
        from aiohttp.test_utils import TestClient, TestServer

        from workers.intake.gateway import create_app

        out = []
        app = create_app(intake_settings, gateway_config(), producer=Broken(),
                         now=lambda: HARNESS_NOW)
        async with TestClient(TestServer(app)) as c:
            headers = {**auth(), "Idempotency-Key": "fail-then-ok"}
            r = await c.post("/v1/appeals", json=canon_appeal("f-1"), headers=headers)
            out.append(r.status)
        async with gateway_client(intake_settings) as c:
            r = await c.post("/v1/appeals", json=canon_appeal("f-1"), headers=headers)
            out.append(r.status)
            out.append((await r.json())["status"] == "accepted")
        return out

    assert asyncio.run(go()) == [503, 202, True]


def test_healthz(intake_settings: Settings) -> None:
    async def go() -> tuple[int, dict]:
        async with gateway_client(intake_settings) as c:
            r = await c.get("/healthz")
            return r.status, await r.json()

    # kafka_last_ack_at: no send confirmed yet by this gateway (a 202 sets it, see
    # test_intake_gateway_metrics.py)
    assert asyncio.run(go()) == (200, {"status": "ok", "kafka": True, "redis": True,
                                       "kafka_last_ack_at": None})


def test_config_from_env_and_toml(tmp_path: Any) -> None:
    toml = tmp_path / "tokens.toml"
    toml.write_text('[clients.pos-platform]\ntoken = "t1"\nrate = 5\nburst = 7\n'
                    'channels = ["pos"]\n[clients.app]\ntoken = "t2"\nregion = "77"\n')
    env = {"APPEALS_GATEWAY_TOKENS": "cli:t3", "APPEALS_GATEWAY_TOKENS_FILE": str(toml),
           "APPEALS_GATEWAY_RATE": "12.5", "APPEALS_GATEWAY_PORT": "9001"}
    cfg = GatewayConfig.load(Settings.load({}), env)
    by_id = {c.id: c for c in cfg.clients}
    assert set(by_id) == {"pos-platform", "app", "cli"}
    assert by_id["pos-platform"].channels == frozenset({"pos"})
    assert (by_id["pos-platform"].rate, by_id["pos-platform"].burst) == (5.0, 7)
    assert by_id["app"].region == "77"
    assert (cfg.rate, cfg.port) == (12.5, 9001)
    assert "t1" not in repr(by_id["pos-platform"])  # tokens stay out of reprs and logs


def test_client_id_with_a_colon_is_refused(tmp_path: Any) -> None:
    """``<client id>:<submission id>`` is the external id of a web form without a site:
    client ``mfc`` with submission ``22:1001`` and client ``mfc:22`` with ``1001`` would share
    an appeal id."""
    from streams.settings import ConfigError

    toml = tmp_path / "tokens.toml"
    toml.write_text('[clients.mfc]\ntoken = "t1"\n[clients."mfc:22"]\ntoken = "secret-token-2"\n')
    env = {"APPEALS_GATEWAY_TOKENS_FILE": str(toml)}
    with pytest.raises(ConfigError) as err:
        GatewayConfig.load(Settings.load({}), env)
    message = str(err.value)
    assert str(toml) in message and "mfc:22" in message and "':'" in message
    assert "secret-token-2" not in message  # the token is not echoed


def test_sources_own_ids_name_the_appeal(intake_settings: Settings) -> None:
    """Review of session 15. Two sites' submission ``1001`` were one appeal id: intake kept the
    first citizen's appeal and dropped the second as a duplicate. And an Idempotency-Key took
    precedence over an incident's post URL, so one post sent with two keys was two appeals."""
    def web(site: str | None, text: str) -> dict[str, Any]:
        form = {"channel": "web", "submission_id": "1001", "submitted": "2025-01-14 10:21:00",
                "region": "22", "fields": {"message": text}}
        return {**form, "site": site} if site else form

    post = {"channel": "incident", "post_url": "https://vk.com/wall-1234_5678", "network": "vk",
            "published_at": "2025-01-14T07:55:00+07:00", "region": "22",
            "text": "Прорыв трубы на ул. Советской, вода заливает подвал"}

    async def go() -> tuple[list[str], list[str]]:
        async with gateway_client(intake_settings) as c:
            sites = []
            for client, payload in (("pos-platform", web("minstroy.example.ru", "Яма у школы")),
                                    ("pos-platform", web("minzdrav.example.ru", "Нет талонов")),
                                    ("city-app", web(None, "Не вывезли мусор"))):
                r = await c.post("/v1/appeals", json=payload, headers=auth(client))
                assert r.status == 202, await r.text()
                sites.append((await r.json())["appeal_id"])
            posts = []
            for key in ("inc-42", None, "inc-43"):
                headers = {**auth(), **({"Idempotency-Key": key} if key else {})}
                r = await c.post("/v1/appeals", json=post, headers=headers)
                assert r.status == 202, await r.text()
                posts.append((await r.json())["appeal_id"])
            return sites, posts

    sites, posts = asyncio.run(go())
    assert len(set(sites)) == 3
    # Neither client owns web ids: the site's scoped id is scoped by the client too.
    assert sites[0] == appeal_id_for("web", "pos-platform:ext:minstroy.example.ru:1001")
    assert sites[2] == appeal_id_for("web", "city-app:ext:1001")  # no site: the client's
    assert posts == [appeal_id_for("incident",
                                   client_external_id("pos-platform", post["post_url"]))] * 3
    web_events = consume_all(intake_settings, "web", expect=3)
    assert sorted(k.decode() for k, _ in web_events) == sorted(sites)


def test_an_explicit_id_and_a_site_that_is_no_text_are_left_as_sent(
        intake_settings: Settings) -> None:
    """A web form's explicit external id is not scoped by its site (the gateway's key-made one
    is not scoped at all), only by the client, which owns no web ids; a ``site`` that is no
    text stays in ``extra`` instead of refusing the form (review of this session's diff)."""
    form = {"channel": "web", "submitted": "2025-01-14 10:21:00", "region": "22",
            "fields": {"message": "Не горит фонарь во дворе"}}

    async def go() -> list[str]:
        async with gateway_client(intake_settings) as c:
            ids = []
            for payload, headers in ((form, {"Idempotency-Key": "k-1"}),
                                     ({**form, "submission_id": "77", "site": {"x": 1}}, {}),
                                     ({**form, "external_id": "own-5", "site": "a.ru"}, {})):
                r = await c.post("/v1/appeals", json=payload, headers={**auth(), **headers})
                assert r.status == 202, await r.text()
                ids.append((await r.json())["appeal_id"])
            return ids

    assert asyncio.run(go()) == [appeal_id_for("web", scoped_external_id("pos-platform", "k-1")),
                                 appeal_id_for("web", "pos-platform:ext:77"),
                                 appeal_id_for("web", "pos-platform:ext:own-5")]


@pytest.mark.parametrize(("env", "named"), [
    ({"APPEALS_GATEWAY_CREATE_TOPICS": "ture"}, "APPEALS_GATEWAY_CREATE_TOPICS='ture'"),
    ({"APPEALS_GATEWAY_SEND_TIMEOUT": "0"}, "APPEALS_GATEWAY_SEND_TIMEOUT must be"),
    ({"APPEALS_GATEWAY_SEND_TIMEOUT": "-5"}, "APPEALS_GATEWAY_SEND_TIMEOUT must be"),
    ({"APPEALS_GATEWAY_SEND_TIMEOUT": "nan"}, "APPEALS_GATEWAY_SEND_TIMEOUT must be"),
    ({"APPEALS_GATEWAY_RATE": "nan"}, "APPEALS_GATEWAY_RATE must be"),
    ({"APPEALS_GATEWAY_RATE": "inf"}, "APPEALS_GATEWAY_RATE must be"),
])
def test_config_refuses_values_the_gateway_cannot_run_with(env: dict[str, str],
                                                           named: str) -> None:
    """A send timeout of 0 or less passed (and start-up then said "cannot reach Kafka"),
    ``nan`` was a traceback or switched rate limiting off, ``ture`` was silently false."""
    from streams.settings import ConfigError

    with pytest.raises(ConfigError) as err:
        GatewayConfig.load(Settings.load({}), env)
    assert named in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("table", "named"), [
    ("send_timout = 5", "[gateway] send_timout: not a gateway setting (did you mean "
                        "send_timeout?)"),
    ('create_topics = "ture"', "[gateway] create_topics = 'ture' is not a valid bool"),
    ("rate = nan", "[gateway] rate must be a finite number"),
    ("max_batch = 2.5", "[gateway] max_batch = 2.5: expected a whole number"),
    ('[gateway.clients.app]\ntoken = "t"\nchanels = ["pos"]',
     "clients.app.chanels: not a client setting"),
    ('[gateway.clients.app]\ntoken = "t"\nrate = 0', "clients.app.rate = 0: must be"),
])
def test_config_file_gateway_table_is_checked(tmp_path: Any, table: str, named: str) -> None:
    """Unknown keys of [gateway] were ignored, so a typo silently kept the default."""
    from streams.settings import ConfigError

    path = tmp_path / "appeals.toml"
    path.write_text(f"[gateway]\n{table}\n", encoding="utf-8")
    env = {"APPEALS_CONFIG": str(path)}
    with pytest.raises(ConfigError) as err:
        GatewayConfig.load(Settings.load(env), env)
    assert f"APPEALS_CONFIG={path}:" in str(err.value) and named in str(err.value)


def test_config_file_gateway_table_takes_its_values(tmp_path: Any) -> None:
    path = tmp_path / "appeals.toml"
    path.write_text('[gateway]\nsend_timeout = 5\ncreate_topics = "off"\nrate = 7\n'
                    '[gateway.clients.app]\ntoken = "t"\nrate = 2.5\nburst = 3\n',
                    encoding="utf-8")
    env = {"APPEALS_CONFIG": str(path), "APPEALS_GATEWAY_RATE": "9.5"}
    cfg = GatewayConfig.load(Settings.load(env), env)
    assert (cfg.send_timeout, cfg.create_topics, cfg.rate) == (5.0, False, 9.5)
    assert [(c.id, c.rate, c.burst) for c in cfg.clients] == [("app", 2.5, 3)]


def test_gateway_command_refuses_a_bad_send_timeout_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from workers import cli as main_cli

    monkeypatch.setenv("APPEALS_GATEWAY_SEND_TIMEOUT", "0")
    monkeypatch.delenv("APPEALS_CONFIG", raising=False)
    assert main_cli.main(["gateway", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("appeals: configuration error: APPEALS_GATEWAY_SEND_TIMEOUT must be a "
                   "finite number of seconds above 0")


def test_without_clients_a_post_is_401_without_a_token_and_403_with_one() -> None:
    """`appeals config` and the start-up warning said "every POST gets 403"; a POST without
    a token gets 401. The text now says what the gateway does."""
    from aiohttp.test_utils import TestClient, TestServer

    from streams.settings import OTHER_VARIABLES
    from tests.intake.fakes import FakeProducer, FakeRedis
    from workers.intake.gateway import create_app

    async def go() -> list[int]:
        app = create_app(Settings(), GatewayConfig(create_topics=False),
                         producer=FakeProducer(), redis=FakeRedis())
        out = []
        async with TestClient(TestServer(app)) as c:
            for headers in ({}, {"Authorization": "Bearer some-token"}):
                r = await c.post("/v1/appeals", json=canon_appeal(), headers=headers)
                out.append(r.status)
            for form in ({"service_code": "roads"}, {"api_key": "some-token"}):
                r = await c.post("/open311/v2/requests.json", data=form)
                out.append(r.status)
        return out

    assert asyncio.run(go()) == [401, 403, 401, 403]
    meaning = dict((v, m) for v, _d, m in OTHER_VARIABLES)["APPEALS_GATEWAY_TOKENS"]
    assert "401 without a token, 403 with one" in meaning
