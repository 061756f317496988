"""The API against a real Redis holding a hand-made read model: routes, errors, page, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api import page
from workers.api.app import create_app
from workers.api.openapi import document
from workers.api.service import rating_key


def _run(redis_url: str, body: Callable[[TestClient, Settings, Any], Awaitable[None]]) -> None:
    run_api(api_settings(redis_url), body,
            client_factory=lambda: aioredis.Redis.from_url(redis_url))


def test_routes_figures_ratings_and_errors(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        r = await client.get("/v1/authorities/22-minzdrav/stats?window=1d")
        assert r.status == 200
        stats = await r.json()
        assert stats["figures"]["answered"] == 10
        assert stats["figures"]["on_time_share"] == 0.9
        assert stats["rating"]["rank"] == 1
        r = await client.get("/v1/ratings?region=22&window=7d")
        ratings = (await r.json())["entries"]
        rated = [e["authority_id"] for e in ratings if e["rated"]]
        assert rated == ["22-minzdrav", "22-minsoc"]  # 22-mincifry: below minimum volume
        zset = await redis.zrange(rating_key(settings.app_id, "22", "7d"), 0, -1,
                                  withscores=True)
        assert {m.decode(): s for m, s in zset} == {
            e["authority_id"]: e["score"] for e in ratings if e["rated"]}
        r = await client.get("/v1/categories/healthcare/stats?window=30d")
        assert (await r.json())["figures"]["answered"] == 20
        r = await client.get("/v1/municipalities/barnaul/stats")
        assert (await r.json())["figures"]["answered"] == 20
        r = await client.get("/v1/appeals/pos-abc")
        appeal = await r.json()
        assert appeal["open_breach"] and appeal["authority"]["name"].startswith("Министерство")
        assert appeal["overdue_s"] > 0
        r = await client.get("/v1/breaches?authority=22-minzdrav")
        assert (await r.json())["total"] == 1
        r = await client.get("/v1/breaches?authority=22-minsoc")
        assert (await r.json())["total"] == 0
        r = await client.get("/v1/authorities?region=22&window=1d")
        auths = {a["id"]: a for a in (await r.json())["authorities"]}
        assert auths["22-minsoc"]["figures"]["answered"] == 8
        assert all("email" not in str(a) and "webhook" not in str(a) for a in auths.values())
        for path, status, code in (
            ("/v1/appeals/nope", 404, "unknown_appeal"),
            ("/v1/appeals/bad%09id", 400, "bad_appeal_id"),
            ("/v1/authorities/22-nobody/stats", 404, "unknown_authority"),
            ("/v1/authorities/22-minzdrav/stats?window=2d", 400, "bad_window"),
            ("/v1/ratings?region=99", 404, "unknown_region"),
            ("/v1/categories/nope/stats", 404, "unknown_category"),
            ("/v1/municipalities/atlantis/stats", 404, "unknown_municipality"),
            ("/v1/breaches?limit=0", 400, "bad_limit"),
            ("/v1/nothing", 404, "not_found"),
        ):
            r = await client.get(path)
            assert r.status == status, path
            assert r.content_type == "application/json"
            assert (await r.json())["error"]["code"] == code, path
        r = await client.get("/healthz")
        assert r.status == 200
        r = await client.get("/metrics")
        text = await r.text()
        assert 'appeals_on_time_ratio{authority="22-minzdrav",window="1d"} 0.9' in text
        assert "appeals_worker_up" not in text
        r = await client.get("/?region=22&window=7d")
        html = await r.text()
        assert r.status == 200 and 'data-authority="22-minzdrav"' in html
        assert 'http-equiv="refresh"' in html and 'data-appeal="pos-abc"' in html

    _run(redis_server.url, body)


def test_openapi_documents_exactly_the_served_routes(redis_server: Any) -> None:
    settings = api_settings(redis_server.url)
    app = create_app(settings, aioredis.Redis.from_url(redis_server.url))
    served = {re.sub(r"\{[^}]+\}", "{}", r.resource.canonical) for r in app.router.routes()
              if r.method == "GET" and r.resource is not None}
    doc = document()
    documented = {re.sub(r"\{[^}]+\}", "{}", p) for p in doc["paths"]}
    assert served - {"/supervisor"} == documented
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for ref in re.findall(r"#/components/schemas/(\w+)", str(doc)):
        assert ref in schemas


def test_page_escapes_everything() -> None:
    from workers.aggregates.rating import rate
    from workers.aggregates.readmodel import AuthorityFigures

    evil = '<script>alert("x")</script>'
    figs = {"a": AuthorityFigures("a", answered=30, answered_on_time=30)}
    html = page.render(region="22", region_name=evil, window="30d", windows=["30d"],
                       computed_at="now", min_volume=20, entries=rate(figs, ["a"]),
                       names={"a": evil}, breaches=[], breach_total=0)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert page.duration(3600 * 5) == "5.0 ч" and page.duration(86400 * 3) == "3.0 дн"


def test_page_names_every_part_of_the_rating_volume() -> None:
    """The page said the volume was "answers + open overdue"; rating.volume also counts the
    appeals closed and redirected unanswered past the deadline: a body with 10 answers and
    10 such appeals is rated at the minimum of 20, which the page's own definition denied."""
    from workers.aggregates.rating import RatingPolicy, rate, volume
    from workers.aggregates.readmodel import AuthorityFigures

    fig = AuthorityFigures("a", answered=10, answered_on_time=10, closed_overdue=6,
                           redirected_overdue=4)
    assert volume(fig) == 20
    html = page.render(region="22", region_name="Алтайский край", window="30d",
                       windows=["30d"], computed_at="now", min_volume=20,
                       entries=rate({"a": fig}, ["a"], RatingPolicy(min_volume=20)),
                       names={}, breaches=[], breach_total=0)
    text = " ".join(html.split())
    assert ("(ответы + просроченные без ответа: открытые, закрытые и перенаправленные)"
            in text)
