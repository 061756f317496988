"""A query parameter a ``/v1`` path does not take is 400 ``unknown_parameter``, not ignored.

``/v1/breaches?authorty=22-minzdrav`` (a misspelt filter) listed every body's breaches, with
200, and ``?offset=5`` the first page: a client could not tell its filter was not applied.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.api.api_support import api_settings, run_api
from workers.api.app import encode_cursor
from workers.api.openapi import document

#: A valid value of every documented query parameter, and of every path parameter.
VALID = {"window": "7d", "region": "22", "authority": "22-minzdrav", "limit": "5",
         "cursor": encode_cursor(-1.0e308, "a"), "appeal_id": "pos-abc",
         "authority_id": "22-minzdrav", "municipality_id": "barnaul", "category": "healthcare"}


def test_unknown_parameters_are_refused_by_name(redis_server: Any) -> None:
    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        for path, name in (("/v1/breaches?authorty=22-minzdrav", "authorty"),
                           ("/v1/breaches?limit=5&offset=5", "offset"),
                           ("/v1/appeals/pos-abc?window=7d", "window"),
                           ("/v1/ratings?region=22&Window=7d", "Window"),
                           ("/v1/authorities/22-minzdrav/stats?region=22", "region")):
            r = await client.get(path)
            assert r.status == 400, path
            error = (await r.json())["error"]
            assert error["code"] == "unknown_parameter", path
            assert repr(name) in error["message"], path
        # What the probes, the scrape and the page do not know is still ignored.
        for path in ("/healthz?probe=1", "/metrics?x=1", "/?region=22&utm_source=mail",
                     "/openapi.json?v=2"):
            assert (await client.get(path)).status == 200, path

    run_api(api_settings(redis_server.url), body)


def test_every_documented_parameter_is_taken(redis_server: Any) -> None:
    """The list of parameters is the OpenAPI document's: each of them, on each /v1 path,
    answers 200 (documented and served agree)."""
    from workers.api.app import query_parameters

    paths = query_parameters()
    assert set(paths) == {p for p in document()["paths"] if p.startswith("/v1/")}
    assert paths["/v1/breaches"] == {"authority", "region", "limit", "cursor"}

    async def body(client: TestClient, settings: Settings, redis: Any) -> None:
        for template, names in paths.items():
            path = re.sub(r"\{(\w+)\}", lambda m: VALID[m.group(1)], template)
            r = await client.get(path, params={name: VALID[name] for name in names})
            assert r.status == 200, (path, names, await r.text())

    run_api(api_settings(redis_server.url), body)
