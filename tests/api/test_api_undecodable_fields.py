"""A byte that is not UTF-8 in one appeal's read-model hash is served replaced, not a 500.

``v.decode()`` raised on it, so ``/v1/breaches``, the supervisor page and the appeal itself
answered 500 for every reader as long as that one record stayed (Redis holds what any writer,
or a corruption, put there).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api

VALUE = b"\xff\xfeHealth\xc3"  # no UTF-8; "Health" must not reach the log


def test_a_record_with_bytes_that_are_not_utf8_is_served_replaced(
        redis_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        key = f"{settings.app_id}:appeal:pos-abc"
        await redis.hset(key, "category", VALUE)
        await redis.hset(key, b"note\xff", b"x")  # a field name too
        for path in ("/v1/breaches", "/v1/breaches?region=22",
                     "/v1/breaches?authority=22-minzdrav"):
            r = await client.get(path)
            assert r.status == 200, (path, await r.text())
            [breach] = (await r.json())["breaches"]
            assert breach["appeal_id"] == "pos-abc"
            assert breach["category"] == "\ufffd\ufffdHealth\ufffd"
            assert breach["authority_id"] == "22-minzdrav"  # the rest as stored
        r = await client.get("/?region=22")
        assert r.status == 200 and 'data-appeal="pos-abc"' in await r.text()
        r = await client.get("/v1/appeals/pos-abc")
        assert r.status == 200, await r.text()
        appeal = await r.json()
        assert appeal["category"] == "\ufffd\ufffdHealth\ufffd"
        assert appeal["status"] == "running" and appeal["open_breach"]

        warnings = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
        # Once per record and process (the hash read whole and the breach fields read alone
        # name it alike), with the key and the field names, never a value.
        assert len(warnings) == 1, [w.getMessage() for w in warnings]
        message = warnings[0].getMessage()
        assert key in message and "category" in message
        assert "Health" not in message and "\ufffd\ufffdH" not in message

    with caplog.at_level(logging.WARNING, logger="workers.api.service"):
        run_api(api_settings(redis_server.url), body)


def test_an_index_member_that_is_not_utf8_is_listed_with_its_record(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        member = b"pos-\xff"
        await redis.hset(f"{settings.app_id}:appeal:".encode() + member, mapping={
            "status": "running", "sla": "breached", "authority_id": "22-minzdrav",
            "regime": "pos", "category": "healthcare"})
        for index in ("breaches:open", "breaches:open:22-minzdrav"):
            await redis.zadd(f"{settings.app_id}:{index}", {member: 1.0})
        for path in ("/v1/breaches", "/v1/breaches?authority=22-minzdrav"):
            r = await client.get(path)
            assert r.status == 200, (path, await r.text())
            listed = [(b["appeal_id"], b["category"]) for b in (await r.json())["breaches"]]
            assert listed == [("pos-\ufffd", "healthcare"), ("pos-abc", "healthcare")], path

    run_api(api_settings(redis_server.url), body)
