"""Personal data never reaches the logs while the gateway handles the sample appeals."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from schemas.records import CHANNELS
from streams.settings import Settings
from tests.intake.conftest import load_samples
from tests.intake.gateway_support import TOKENS, auth, gateway_client
from workers.intake.core import intake_from_dict

pytestmark = pytest.mark.integration


def _personal_data() -> set[str]:
    """Names, phones (as typed and E.164), e-mails and addresses of every sample appeal."""
    found: set[str] = set()
    for channel in (*CHANNELS, "canonical"):
        for sample in load_samples(channel):
            appeal = intake_from_dict(sample)
            if appeal.author:
                for value in (appeal.author.name, appeal.author.phone, appeal.author.email,
                              appeal.author.handle):
                    if value and len(value) > 3:
                        found.add(value)
            if appeal.address:
                found.add(appeal.address)
            for raw in _strings(sample):  # as typed, before normalisation
                if "@" in raw or raw.startswith(("+7", "8 ", "8-", "8(")):
                    found.add(raw)
    found.add("Тестова Яна")
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_no_personal_data_in_logs(intake_settings: Settings, caplog: Any) -> None:
    samples = {ch: load_samples(ch) for ch in (*CHANNELS, "canonical")}

    async def go() -> None:
        async with gateway_client(intake_settings) as c:
            for channel, items in samples.items():
                for item in items:  # one by one, with and without idempotency keys
                    r = await c.post("/v1/appeals", json=item, headers=auth())
                    assert r.status == 202, await r.text()
                r = await c.post("/v1/appeals", json=items,
                                 headers={**auth(), "Idempotency-Key": f"priv-{channel}"})
                assert r.status == 202
            # invalid ones: the errors must not echo personal data into the logs either
            bad = [{**s, "region": "Алтай"} for s in samples["canonical"]]
            r = await c.post("/v1/appeals", data=json.dumps(bad), headers=auth())
            assert r.status == 400
            for item in samples["pos"]:
                broken = {**item, "author": {"phone": item["author"].get("phone"), "x": 1}}
                await c.post("/v1/appeals", json=broken, headers=auth())
            r = await c.post("/open311/v2/requests.json?email=ya.test@example.ru", data={
                "api_key": TOKENS["city-app"], "service_code": "roads",
                "address_string": "г. Барнаул, ул. Вымышленная, 17", "description": "Яма",
                "first_name": "Яна", "last_name": "Тестова", "phone": "+79130008801"})
            assert r.status == 201

    with caplog.at_level(logging.DEBUG):
        asyncio.run(go())
    text = caplog.text
    assert "appeal_id=" in text  # the logs do say what happened
    leaks = sorted(pd for pd in _personal_data() if pd in text)
    assert leaks == []
    assert "ya.test@example.ru" not in text


def test_access_log_names_the_route_not_the_path_as_sent(caplog: Any) -> None:
    """The access log wrote the percent-decoded path: a phone number or a name put in a path
    (a mistaken GET, an Open311 client using a name as an id) was logged verbatim."""
    from tests.intake import fakes

    async def go() -> None:
        async with fakes.gateway() as (c, _p, _r):
            await c.get("/v1/appeals/+79130007701", headers=fakes.auth())
            await c.get("/open311/v2/requests/%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%20"
                        "%D0%98%D0%B2%D0%B0%D0%BD.json")
            await c.get("/open311/v2/requests/0123456789abcdef01234567.json")
            await c.get("/v1/appeals?phone=79130007701", headers=fakes.auth())
            await c.get("/metrics")

    with caplog.at_level(logging.INFO, logger="appeals.gateway.access"):
        asyncio.run(go())
    lines = [r.getMessage().rsplit(" ", 2)[0] for r in caplog.records
             if r.name == "appeals.gateway.access"]
    assert lines == ["GET <unmatched> 404",
                     "GET /open311/v2/requests/{service_request_id}.json 404",
                     "GET /open311/v2/requests/{service_request_id}.json 404",
                     "GET /v1/appeals 405", "GET /metrics 200"]
    assert "7913" not in caplog.text and "Иванов" not in caplog.text
    assert "0123456789abcdef" not in caplog.text
