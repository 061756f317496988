"""Who may read the API: bearer tokens (APPEALS_API_TOKENS), and what an open API says.

Appeal ids are UUIDv5 of channel and source id (59-FZ registration numbers, sequential POS
ids), so anyone could guess them and read an appeal's category, body, dates and the earlier
appeal of the same author it repeats; /v1/breaches and the page list ids. With tokens set,
every path but /healthz, /metrics and /openapi.json answers 401 without one.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.settings import ConfigError, Settings
from tests.api.api_support import api_settings, run_api

TOKEN_A, TOKEN_B = "a" * 16 + "-first-token", "b" * 20 + "_second~token"
PROTECTED = ("/v1/appeals/pos-abc", "/v1/breaches", "/v1/ratings", "/v1/authorities",
             "/v1/authorities/22-minzdrav/stats", "/v1/categories/healthcare/stats", "/",
             "/supervisor", "/no-such-path")


def test_with_tokens_every_read_needs_one(redis_server: Any) -> None:
    settings = api_settings(redis_server.url, api_tokens=f"{TOKEN_A}, {TOKEN_B}")
    seen: dict[str, Any] = {}

    async def body(http: TestClient, settings: Settings, redis: Any) -> None:
        await redis.hset(f"{settings.app_id}:appeal:pos-abc", "duplicate_of", "pos-abb")
        for path in PROTECTED:
            r = await http.get(path)
            seen[path] = (r.status, r.headers.get("WWW-Authenticate"),
                          (await r.json())["error"]["code"])
        for header in (f"Bearer {TOKEN_A}x", f"Basic {TOKEN_A}", f"Bearer {TOKEN_A[:-1]}",
                       "Bearer", TOKEN_A):
            r = await http.get("/v1/appeals/pos-abc", headers={"Authorization": header})
            seen["header " + header] = (r.status, r.headers.get("WWW-Authenticate"))
        for token in (TOKEN_A, TOKEN_B):
            r = await http.get("/v1/appeals/pos-abc",
                               headers={"Authorization": f"bearer {token}"})
            seen[token] = (r.status, await r.json())
        for path in ("/healthz", "/metrics", "/openapi.json"):
            seen[path] = (await http.get(path)).status

    run_api(settings, body)
    for path in PROTECTED:
        assert seen[path] == (401, 'Bearer realm="appeals-api"', "missing_token"), path
    assert seen[f"header Bearer {TOKEN_A}x"] == seen[f"header Bearer {TOKEN_A[:-1]}"] == (
        401, 'Bearer realm="appeals-api", error="invalid_token"')
    for header in (f"Basic {TOKEN_A}", "Bearer", TOKEN_A):
        assert seen["header " + header] == (401, 'Bearer realm="appeals-api"'), header
    for token in (TOKEN_A, TOKEN_B):
        status, appeal = seen[token]
        assert status == 200 and appeal["appeal_id"] == "pos-abc"
        assert appeal["duplicate_of"] == "pos-abb"  # kept behind the token
    assert [seen[p] for p in ("/healthz", "/metrics", "/openapi.json")] == [200, 200, 200]


def test_without_tokens_the_api_is_open_and_says_so(redis_server: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workers.api.app")
    statuses: list[int] = []

    async def body(http: TestClient, settings: Settings, redis: Any) -> None:
        statuses.append((await http.get("/v1/appeals/pos-abc")).status)

    run_api(api_settings(redis_server.url), body)
    assert statuses == [200]
    assert any(r.levelno == logging.WARNING and "the API is open" in r.getMessage()
               and "authenticating proxy" in r.getMessage() for r in caplog.records)


def test_with_tokens_no_open_api_warning(redis_server: Any,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workers.api.app")

    async def body(http: TestClient, settings: Settings, redis: Any) -> None:
        pass

    run_api(api_settings(redis_server.url, api_tokens=TOKEN_A), body)
    assert not [r for r in caplog.records if "the API is open" in r.getMessage()]


@pytest.mark.parametrize("value", ["short", ",", f"{TOKEN_A},", f"{TOKEN_A},,{TOKEN_B}",
                                   "a" * 15, "a" * 257, "token with spaces 12345",
                                   "тайный-токен-для-апи"])
def test_bad_token_settings_stop_the_start(value: str) -> None:
    with pytest.raises(ConfigError, match="APPEALS_API_TOKENS") as err:
        Settings.load({"APPEALS_API_TOKENS": value})
    assert value.strip(",") == "" or value.split(",")[0] not in str(err.value)


def test_tokens_are_not_in_the_settings_repr() -> None:
    settings = Settings.load({"APPEALS_API_TOKENS": f"{TOKEN_A},{TOKEN_B}"})
    assert TOKEN_A not in repr(settings) and TOKEN_B not in repr(settings)
