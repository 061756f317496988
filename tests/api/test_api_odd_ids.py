"""Appeal ids the pipeline stores are readable and pageable through the API.

The routed-appeal schema let the SLA agent store any string as an appeal id, while the API took
only ``[A-Za-z0-9._:-]{1,128}``: ``/v1/appeals/ПОС-2026%2F000123`` answered 400
``bad_appeal_id``, and a ``/v1/breaches`` page ending on such an appeal carried a
``next_cursor`` the API itself then refused (400 ``bad_cursor``), so the listing could never
be paged past it. Both now take what the schema lets the agent store (1..128 characters, no
control characters), and the schema refuses what the API could not read.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from schemas.validation import InvalidEvent, validate
from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api.app import APPEAL_ID_MAX, encode_cursor, readable_appeal_id

#: Ids a routed record may carry: a 59-FZ registration number with a slash, spaces,
#: braces, 128 characters of 4-byte UTF-8, characters JSON escapes.
ODD_IDS = ["ПОС-2026/000123", "59fz 2026 17", "{x}", "😀" * APPEAL_ID_MAX, 'a"b\\c',
           "%41?#&=+"]


def _routed(appeal_id: str) -> dict[str, Any]:
    return {"schema_version": 1, "appeal_id": appeal_id, "regime": "fz59", "region": "22",
            "registered_at": "2026-11-25T03:00:00Z", "category": "roads", "urgent": False,
            "confidence": 0.9, "authority_id": "22-mintrans", "routing_level": "region",
            "rule_version": "v1", "routed_at": "2026-11-25T03:00:00Z"}


async def _store(redis: Any, settings: Settings, appeal_id: str, due: float) -> None:
    """As the SLA writer keeps an open breach: the record and both indexes."""
    await redis.hset(f"{settings.app_id}:appeal:{appeal_id}", mapping={
        "status": "running", "sla": "breached", "authority_id": "22-minzdrav",
        "regime": "fz59", "category": "healthcare", "municipality": "barnaul",
        "registered_at": "2026-01-01T00:00:00+00:00", "due_at": "2026-01-05T00:00:00+00:00",
        "answered_at": "", "updated_at": "2026-01-06T00:00:00+00:00"})
    for index in ("breaches:open", "breaches:open:22-minzdrav"):
        await redis.zadd(f"{settings.app_id}:{index}", {appeal_id: due})


def test_every_stored_id_is_read_and_paged_past(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        due = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()  # before pos-abc's
        for i, appeal_id in enumerate(ODD_IDS):
            await _store(redis, settings, appeal_id, due + i)
        expected = [*ODD_IDS, "pos-abc"]
        for query in ("/v1/breaches?limit=1", "/v1/breaches?authority=22-minzdrav&limit=1"):
            listed: list[str] = []
            url = query
            while True:
                r = await client.get(url)
                assert r.status == 200, (url, await r.text())
                page = await r.json()
                listed += [b["appeal_id"] for b in page["breaches"]]
                if page["next_cursor"] is None:
                    break
                url = f"{query}&cursor={page['next_cursor']}"
            assert listed == expected, query
        for appeal_id in ODD_IDS:
            r = await client.get("/v1/appeals/" + urllib.parse.quote(appeal_id, safe=""))
            assert r.status == 200, (appeal_id, await r.text())
            appeal = await r.json()
            assert appeal["appeal_id"] == appeal_id and appeal["open_breach"]
        for path, code in (
            ("/v1/appeals/" + "x" * (APPEAL_ID_MAX + 1), "bad_appeal_id"),
            ("/v1/appeals/a%0Ab", "bad_appeal_id"),
            ("/v1/appeals/a%C2%85", "bad_appeal_id"),  # U+0085, a C1 control
            ("/v1/appeals/59fz%202026%2099", "unknown_appeal"),
        ):
            r = await client.get(path)
            assert (await r.json())["error"]["code"] == code, path

    run_api(api_settings(redis_server.url), body)


@pytest.mark.parametrize("appeal_id", [*ODD_IDS, "x" * APPEAL_ID_MAX, "\x85" * APPEAL_ID_MAX])
def test_the_cursor_of_any_id_is_taken_back(redis_server: Any, appeal_id: str) -> None:
    """Whatever id a page ends on, its cursor is accepted: the id is only a position."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        cursor = encode_cursor(-1.7976931348623157e308, appeal_id)
        r = await client.get("/v1/breaches", params={"cursor": cursor})
        assert r.status == 200, await r.text()
        assert [b["appeal_id"] for b in (await r.json())["breaches"]] == ["pos-abc"]

    run_api(api_settings(redis_server.url), body)


@pytest.mark.parametrize("appeal_id", [
    *ODD_IDS, "x" * APPEAL_ID_MAX, "x" * (APPEAL_ID_MAX + 1), "", "a\nb", "a\x00", "a\x7f",
    "a\x9f", "a\u00a0b", "\ufffd", ".", "..", "...", "./."])
def test_the_api_reads_exactly_the_ids_the_routed_schema_lets_be_stored(appeal_id: str) -> None:
    """The SLA agent stores what ``routed-appeal`` allows and dead-letters the rest; the API
    must read every id it stores, and the two checks must not drift apart."""
    try:
        validate("routed-appeal", _routed(appeal_id))
        stored = True
    except InvalidEvent:
        stored = False
    assert stored == readable_appeal_id(appeal_id)
