"""What the API answers, on a real redis-server through real HTTP requests.

Each test is a defect a review reproduced against a running ``appeals api``:

* breach totals and per-authority breach lists stopped at the first 20,000 open breaches;
* a breached appeal that was then paused was listed in ``/v1/breaches`` while
  ``/v1/appeals/{id}`` said ``open_breach: false``;
* the API never reloaded the routing rules (README: they reload without a restart);
* 405 without ``Allow``, ids with a trailing newline or braces, ``limit=٥`` / ``1_0``, and
  ``region`` ignored next to ``authority`` on ``/v1/breaches``.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api.openapi import document
from workers.routing.loader import PACKAGED_DATA
from workers.sla import read_model
from workers.sla.engine import State

pytestmark = pytest.mark.integration

DAY = 86400.0


async def _seed_breaches(redis: Any, settings: Settings, count: int,
                         authority_of: Any) -> None:
    """``count`` open breaches, one a second overdue less than the one before, as the SLA
    writer stores them: a record per appeal and its id in the open-breach index."""
    due0 = time.time() - 30 * DAY
    pipe = redis.pipeline(transaction=False)
    for i in range(count):
        appeal_id = f"big-{i:06d}"
        pipe.hset(f"{settings.app_id}:appeal:{appeal_id}", mapping={
            "status": "running", "sla": "breached", "authority_id": authority_of(i),
            "regime": "fz59", "category": "roads", "municipality": "barnaul",
            "registered_at": "", "due_at": "", "answered_at": "", "updated_at": ""})
        pipe.zadd(f"{settings.app_id}:breaches:open", {appeal_id: due0 + i})
        pipe.zadd(f"{settings.app_id}:breaches:open:{authority_of(i)}", {appeal_id: due0 + i})
        if i % 2000 == 1999:
            await pipe.execute()
    await pipe.execute()


def test_breach_totals_and_lists_cover_the_whole_index(
        redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """20,050 open breaches (+ pos-abc): 20,000 of 22-minzdrav first, 50 of 22-mincifry after.
    The body whose breaches sort late is listed and counted; totals are complete."""
    def authority_of(i: int) -> str:
        return "22-minzdrav" if i < 20_000 else "22-mincifry"

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await _seed_breaches(redis, settings, 20_050, authority_of)

        async def get(path: str) -> dict[str, Any]:
            r = await client.get(path)
            assert r.status == 200, path
            data: dict[str, Any] = await r.json()
            return data

        everything = await get("/v1/breaches?limit=1")
        assert everything["total"] == 20_051
        cifry = await get("/v1/breaches?authority=22-mincifry&limit=3")
        assert cifry["total"] == 50
        assert [b["appeal_id"] for b in cifry["breaches"]] == [
            "big-020000", "big-020001", "big-020002"]
        assert everything["truncated"] is False and cifry["truncated"] is False
        assert (await get("/v1/breaches?authority=22-minzdrav&limit=1"))["total"] == 20_001
        region = await get("/v1/breaches?region=22&limit=5")
        assert (region["total"], len(region["breaches"])) == (20_051, 5)
        html = await (await client.get("/?region=22")).text()
        assert re.search(r'id="breach-total">(\d+)<', html).group(1) == "20051"  # type: ignore[union-attr]
        assert 'id="breach-truncated"' not in html

        # A filtered listing reads only the bodies' own sets: a small body's page costs
        # a few commands whatever the size of another body's backlog (it used to page
        # through the whole index, and past 100,000 entries answered total 0).
        calls: list[str] = []
        real = redis.__class__.zrange

        def counting(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
            # A client's call (a coroutine) or a pipeline's (queued): whatever it returns.
            calls.append(name if isinstance(name, str) else name.decode())
            return real(self, name, *args, **kwargs)

        monkeypatch.setattr(redis.__class__, "zrange", counting)
        small = await get("/v1/breaches?authority=22-mincifry&limit=3")
        assert (small["total"], small["truncated"]) == (50, False)
        assert any(c.endswith("breaches:open:22-mincifry") for c in calls), calls
        assert not any(c.endswith("breaches:open") for c in calls), calls
    run_api(api_settings(redis_server.url, rating_refresh=60.0), body)
    breaches = document()["paths"]["/v1/breaches"]["get"]["responses"]["200"]
    schema = breaches["content"]["application/json"]["schema"]
    assert schema["properties"]["truncated"]["type"] == "boolean"


def _state(appeal_id: str, status: str, due: float, **extra: Any) -> State:
    state: State = {"id": appeal_id, "p": 0, "status": status, "auth": "22-minzdrav",
                    "regime": "fz59", "cat": "healthcare", "muni": "barnaul",
                    "reg": due - 30 * DAY, "due": due, "answered": None, "alerts": [],
                    "cycle": 0, "ext": 0, "breached": None, "bdays": [], "v": 1}
    state.update(extra)
    return state


def test_open_breach_of_an_appeal_is_its_membership_of_the_breach_index(
        redis_server: Any) -> None:
    """A breached appeal that was then paused (the record says sla=paused) is an open breach in
    /v1/appeals/{id} exactly as /v1/breaches lists it; the real writer stores the states."""
    now = time.time()
    due = now - 10 * DAY
    breached = {"breached": due, "bdays": ["2026-01-01"]}
    states = [_state("paused-breached", "paused", due, **breached),
              _state("running-breached", "running", due, **breached),
              _state("paused-in-time", "paused", now + 10 * DAY),
              _state("answered-late", "answered", due, answered=now - DAY, **breached)]

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await read_model.write(redis, read_model.key_prefix(settings.app_id), states, now)
        r = await client.get("/v1/breaches?authority=22-minzdrav")
        listed = {b["appeal_id"] for b in (await r.json())["breaches"]}
        assert {"paused-breached", "running-breached"} <= listed
        for state in states:
            r = await client.get(f"/v1/appeals/{state['id']}")
            assert r.status == 200
            appeal = await r.json()
            assert appeal["open_breach"] is (state["id"] in listed), appeal
        r = await client.get("/v1/appeals/paused-breached")
        assert (await r.json())["sla_status"] == "paused"

    run_api(api_settings(redis_server.url), body)


def test_an_upper_case_hex_id_finds_its_appeal(redis_server: Any) -> None:
    """Hex ids are case-insensitive: the SLA worker stores them in lower case, and an id
    copied from a system printing them in upper case found no record (404)."""
    now = time.time()
    appeal_id = "0f3a9c2b7d4e5f6a1b2c3d4e"
    states = [_state(appeal_id, "running", now + 10 * DAY)]

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await read_model.write(redis, read_model.key_prefix(settings.app_id), states, now)
        r = await client.get(f"/v1/appeals/{appeal_id.upper()}")
        assert r.status == 200
        assert (await r.json())["appeal_id"] == appeal_id
        r = await client.get("/v1/appeals/PAUSED-BREACHED")  # not hex: kept as it is
        assert r.status == 404

    run_api(api_settings(redis_server.url), body)


def test_api_reloads_edited_routing_rules(redis_server: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit of APPEALS_ROUTING_RULES reaches the running API: a renamed body, a new body
    (listed, with stats, rated); an invalid edit after it keeps the rules in use."""
    source = next(PACKAGED_DATA.glob("22-*.yaml")).read_text(encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(source, encoding="utf-8")
    old_name = "    name: Министерство социальной защиты Алтайского края"
    assert old_name in source and "authorities:\n" in source
    edited = source.replace(old_name, "    name: Министерство труда и соцзащиты", 1).replace(
        "authorities:\n", "authorities:\n  - id: 22-newbody\n    name: Новый орган\n"
        "    kind: ministry\n    parent: 22-government\n", 1)

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        async def names() -> dict[str, str]:
            r = await client.get("/v1/authorities?region=22")
            return {a["id"]: a["name"] for a in (await r.json())["authorities"]}

        assert "22-newbody" not in await names()
        rules.write_text(edited, encoding="utf-8")
        deadline = time.monotonic() + 30
        while "22-newbody" not in await names():
            assert time.monotonic() < deadline, "the edited rules never reached the API"
            await asyncio.sleep(0.2)
        assert (await names())["22-minsoc"] == "Министерство труда и соцзащиты"
        r = await client.get("/v1/authorities/22-newbody/stats")
        assert r.status == 200
        r = await client.get("/v1/ratings?region=22")
        assert "22-newbody" in {e["authority_id"] for e in (await r.json())["entries"]}

        rules.write_text("authorities: [oops", encoding="utf-8")
        await asyncio.sleep(1.5)  # several polls
        assert "22-newbody" in await names()

    from workers.api import app as app_module

    monkeypatch.setattr(app_module, "RULES_POLL_S", 0.2, raising=False)  # workers poll every 5 s
    settings = api_settings(redis_server.url).replace(routing_rules=str(rules))
    run_api(settings, body)


def test_small_contract_gaps(redis_server: Any) -> None:
    """405 carries Allow; ids are checked whole (no trailing newline, braces reach the check);
    limit takes ASCII digits only; region is checked and applied next to authority."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        r = await client.post("/v1/ratings", data=b"{}")
        assert r.status == 405
        assert "GET" in r.headers["Allow"]
        assert (await r.json())["error"]["code"] == "method_not_allowed"
        for path, status, code in (
            ("/v1/appeals/pos-abc%0A", 400, "bad_appeal_id"),
            # The router's segment took no braces: its generic not_found, not the handler's
            # answer. Braces are a storable id's characters (test_api_odd_ids).
            ("/v1/appeals/%7Bpos-abc%7D", 404, "unknown_appeal"),
            ("/v1/appeals/%7B%7D", 404, "unknown_appeal"),
            ("/v1/breaches?limit=%D9%A5", 400, "bad_limit"),
            ("/v1/breaches?limit=1_0", 400, "bad_limit"),
            ("/v1/breaches?limit=%205", 400, "bad_limit"),
            ("/v1/breaches?limit=%2B5", 400, "bad_limit"),
            ("/v1/breaches?limit=1001", 400, "bad_limit"),
            ("/v1/breaches?authority=22-minzdrav&region=99", 404, "unknown_region"),
            ("/v1/breaches?authority=22-nobody&region=22", 404, "unknown_authority"),
        ):
            r = await client.get(path)
            assert r.content_type == "application/json", path
            assert (r.status, (await r.json())["error"]["code"]) == (status, code), path
        r = await client.get("/v1/breaches?authority=22-minzdrav&region=22&limit=1000")
        assert (r.status, (await r.json())["total"]) == (200, 1)
        r = await client.get("/v1/appeals/pos-abc")
        assert r.status == 200

    run_api(api_settings(redis_server.url), body)



def test_the_near_duplicate_flag_reaches_the_appeal_view(redis_server: Any) -> None:
    """Intake flags a resend ``duplicate_of`` the earlier appeal; the routed record carries it,
    and the body reading ``/v1/appeals/{id}`` sees it (a review found it stopped at intake)."""
    from workers.sla.engine import SlaRules, new_state

    rules = SlaRules(due=lambda regime, start, *_: start + 30 * DAY,
                     extend=lambda regime, due, days, *_: due + days * DAY)
    now = time.time()

    def routed(appeal_id: str, duplicate_of: str | None) -> dict[str, Any]:
        return {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
                "authority_id": "22-minzdrav", "category": "healthcare",
                "duplicate_of": duplicate_of}

    states = [new_state(routed("resend", "first"), 0, now, "Asia/Barnaul", rules)[0],
              new_state(routed("first", None), 0, now, "Asia/Barnaul", rules)[0]]
    for state in states:
        read_model.bump_version(state)

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        await read_model.write(redis, read_model.key_prefix(settings.app_id), states, now)
        got = {}
        for appeal_id in ("resend", "first"):
            r = await client.get(f"/v1/appeals/{appeal_id}")
            assert r.status == 200
            got[appeal_id] = (await r.json())["duplicate_of"]
        assert got == {"resend": "first", "first": None}

    run_api(api_settings(redis_server.url), body)
    appeal = document()["components"]["schemas"]["Appeal"]["properties"]
    assert appeal["duplicate_of"]["type"] == ["string", "null"]


def test_a_filtered_page_is_the_most_overdue_even_behind_stale_entries(
        redis_server: Any) -> None:
    """One body's set starts with 70 entries whose records are gone (Redis lost them), then
    its real breach, the most overdue of all; another body's breach is later. The page of one
    is the first body's, whatever the margin read past ``limit`` (review of session 13)."""
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        prefix = read_model.key_prefix(settings.app_id)
        due0 = time.time() - 30 * DAY
        sets = {a: read_model.authority_breaches_key(prefix, a)
                for a in ("22-minzhkh", "22-mintrans")}
        await redis.zadd(sets["22-minzhkh"], {f"gone-{i}": due0 + i for i in range(70)})
        for appeal_id, auth, due in (("late-zhkh", "22-minzhkh", due0 + 100),
                                     ("late-trans", "22-mintrans", due0 + 500)):
            await redis.hset(read_model.appeal_key(prefix, appeal_id), mapping={
                "status": "running", "sla": "breached", "authority_id": auth,
                "regime": "fz59", "category": "roads", "municipality": "barnaul"})
            await redis.zadd(sets[auth], {appeal_id: due})
        # Region 22: these two bodies and the seeded pos-abc (22-minzdrav, the most overdue).
        for limit, want in ((2, ["pos-abc", "late-zhkh"]),
                            (3, ["pos-abc", "late-zhkh", "late-trans"])):
            got = await (await client.get(f"/v1/breaches?region=22&limit={limit}")).json()
            assert [b["appeal_id"] for b in got["breaches"]] == want, got

    run_api(api_settings(redis_server.url), body)
