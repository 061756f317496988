"""``/v1/breaches`` pages through every open breach with a cursor.

It had ``limit`` (1..1000) only: beyond the first 1,000 open breaches the rest could not be
fetched. ``next_cursor`` is the position (due, appeal id) of a page's last item; the next page is
read from that position, so a breach that stays open is listed exactly once over the pages
whatever opens or closes between them.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api.openapi import document

pytestmark = pytest.mark.integration

DAY = 86400.0
BODIES = ("22-minzdrav", "22-minsoc", "22-mincifry")


def _due0() -> float:
    return float(int(time.time() - 60 * DAY))


async def _add(redis: Any, settings: Settings, items: dict[str, tuple[float, str]]) -> None:
    """Open breaches as the SLA writer stores them: the record and both indexes."""
    pipe = redis.pipeline(transaction=False)
    for appeal_id, (due, authority) in items.items():
        pipe.hset(f"{settings.app_id}:appeal:{appeal_id}", mapping={
            "status": "running", "sla": "breached", "authority_id": authority,
            "regime": "fz59", "category": "roads", "municipality": "barnaul",
            "registered_at": "", "due_at": "", "answered_at": "", "updated_at": ""})
        pipe.zadd(f"{settings.app_id}:breaches:open", {appeal_id: due})
        pipe.zadd(f"{settings.app_id}:breaches:open:{authority}", {appeal_id: due})
    await pipe.execute()


async def _close(redis: Any, settings: Settings, appeal_ids: list[str]) -> None:
    """Answered: the writer sets the record and takes the appeal out of both indexes."""
    pipe = redis.pipeline(transaction=False)
    for appeal_id in appeal_ids:
        authority = (await redis.hget(f"{settings.app_id}:appeal:{appeal_id}",
                                      "authority_id")).decode()
        pipe.hset(f"{settings.app_id}:appeal:{appeal_id}", "status", "answered")
        pipe.zrem(f"{settings.app_id}:breaches:open", appeal_id)
        pipe.zrem(f"{settings.app_id}:breaches:open:{authority}", appeal_id)
    await pipe.execute()


def _seeded(n: int) -> dict[str, tuple[float, str]]:
    """``n`` breaches in runs of 50 sharing one due (day-counted deadlines end at 23:59:59,
    so many appeals share a score), spread over the three bodies."""
    due0 = _due0()
    return {f"cur-{i:05d}": (due0 + (i // 50) * 60.0, BODIES[i % 3]) for i in range(n)}


async def _page(client: TestClient, query: str, cursor: str | None) -> dict[str, Any]:
    path = f"/v1/breaches?{query}" + (f"&cursor={cursor}" if cursor else "")
    r = await client.get(path)
    assert r.status == 200, (path, await r.text())
    data: dict[str, Any] = await r.json()
    return data


def test_pages_list_every_open_breach_once_in_order(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        items = _seeded(2_345)
        await _add(redis, settings, items)
        for query, wanted in (("limit=1000", {*items, "pos-abc"}),
                              ("limit=333&authority=22-minsoc",
                               {k for k, v in items.items() if v[1] == "22-minsoc"}),
                              ("limit=1000&region=22", {*items, "pos-abc"})):
            listed: list[str] = []
            dues: list[str] = []
            cursor = None
            while True:
                data = await _page(client, query, cursor)
                listed += [b["appeal_id"] for b in data["breaches"]]
                dues += [b["due_at"] for b in data["breaches"]]
                assert data["total"] == len(wanted)
                cursor = data["next_cursor"]
                if cursor is None:
                    break
                assert len(data["breaches"]) == int(query.split("&")[0][6:])
            assert sorted(listed) == sorted(wanted) and len(listed) == len(set(listed)), query
            assert dues == sorted(dues), query

    run_api(api_settings(redis_server.url), body)


def test_breaches_that_come_and_go_between_pages_skip_and_repeat_nothing(
        redis_server: Any) -> None:
    """Between pages: the page's last item (the cursor's own appeal) is answered, breaches
    before and after the cursor are answered, new ones open before and after it, some of
    them in the cursor's run of equal deadlines. Every breach open throughout is listed once;
    those added after the cursor are listed too."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        items = _seeded(1_000)
        await _add(redis, settings, items)
        for query in ("limit=120", "limit=120&region=22", "limit=40&authority=22-minzdrav"):
            listed: list[str] = []
            closed: set[str] = set()
            added_after: set[str] = set()
            cursor = None
            rounds = 0
            known = dict(items)
            while True:
                data = await _page(client, query, cursor)
                page = [b["appeal_id"] for b in data["breaches"]]
                listed += page
                cursor = data["next_cursor"]
                if cursor is None:
                    break
                rounds += 1
                last = page[-1]
                last_due = known[last][0]
                ours = [a for a in page if a in items]
                ahead = [a for a, (d, _b) in items.items() if d > last_due + 600
                         and a not in closed][:3]
                gone = [last, *ours[:5], *ahead[:1]]
                await _close(redis, settings, gone)
                closed |= set(gone)
                new = {f"new-{query[-8:]}-{rounds}-{k}": (d, "22-minzdrav") for k, d in
                       enumerate((last_due, last_due - DAY, last_due + 120.0))}
                # Same due as the cursor, and a member after it: belongs after the cursor.
                new[f"zzz-{query[-8:]}-{rounds}"] = (last_due, "22-minzdrav")
                await _add(redis, settings, new)
                known.update(new)
                added_after |= {a for a, (d, _b) in new.items()
                                if d > last_due or (d == last_due and a > last)}
            assert len(listed) == len(set(listed)), query
            throughout = {a for a in items if a not in closed}
            if "authority" in query:
                throughout = {a for a in throughout if items[a][1] == "22-minzdrav"}
            assert throughout <= set(listed), (query, sorted(throughout - set(listed))[:5])
            assert added_after <= set(listed), query
            await _add(redis, settings, {a: items[a] for a in closed if a in items})
            await _close(redis, settings, [a for a in listed if a.startswith(("new-", "zzz-"))])

    run_api(api_settings(redis_server.url), body)


@pytest.mark.parametrize("cursor", [
    "x", "!!!!", "%20", base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(b'{"due": 1}').decode(),
    base64.urlsafe_b64encode(b"[1.0]").decode(),
    base64.urlsafe_b64encode(b'[true, "a"]').decode(),
    base64.urlsafe_b64encode(b'["1", "a"]').decode(),
    base64.urlsafe_b64encode(b'[1e999, "a"]').decode(),
    # A "/" is an appeal id's character (test_api_odd_ids): no id at all is not.
    base64.urlsafe_b64encode(b'[1.0, ""]').decode(),
    base64.urlsafe_b64encode(b'[1.0, 5]').decode(),
    base64.urlsafe_b64encode(b'[1.0, "a", 3]').decode(),
    "A" * 2049, "",
])
def test_a_malformed_cursor_is_400(redis_server: Any, cursor: str) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        r = await client.get("/v1/breaches", params={"cursor": cursor})
        assert r.status == 400, cursor
        assert (await r.json())["error"]["code"] == "bad_cursor"

    run_api(api_settings(redis_server.url), body)


def test_the_cursor_is_documented() -> None:
    get = document()["paths"]["/v1/breaches"]["get"]
    assert "cursor" in {p["name"] for p in get["parameters"]}
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["next_cursor"]["type"] == ["string", "null"]
    assert "next_cursor" in schema["required"]


def test_a_page_read_while_the_index_shrinks_before_the_cursor_skips_nothing(
        redis_scenario: Any) -> None:
    """The cursor's rank is estimated, then the page read by rank: 300 breaches before the
    cursor answered in between moved every entry 300 ranks down, and a read from the
    estimated rank would have passed over the 236 right after the cursor. The read must
    start at or before the cursor, or be tried again."""
    from workers.api.service import ApiService
    from workers.routing import load_rules

    key = "cursor-race:breaches:open"

    class Shrinking:
        """The real client; after the first pipeline (the estimate) 300 entries before the
        cursor are removed, as the SLA writer would between two round trips."""

        def __init__(self, client: Any) -> None:
            self.client, self.calls = client, 0

        def pipeline(self, transaction: bool = True) -> Any:
            pipe = self.client.pipeline(transaction=transaction)
            execute = pipe.execute

            async def hooked(*args: Any, **kwargs: Any) -> Any:
                result = await execute(*args, **kwargs)
                self.calls += 1
                if self.calls == 1:
                    await self.client.zremrangebyrank(key, 0, 299)
                return result

            pipe.execute = hooked
            return pipe

    async def scenario(client: Any) -> Any:
        await client.delete(key)
        await client.zadd(key, {f"a{i:05d}": 1000.0 + i for i in range(1000)})
        svc = ApiService(Settings.load({}), Shrinking(client), load_rules())
        [(entries, more, _last)] = await svc._after([key], (1500.0, b"a00500"), 50)
        return entries, more

    entries, more = redis_scenario(scenario)
    assert [m for _d, m in entries][:3] == [b"a00501", b"a00502", b"a00503"]
    assert more
