"""The gateway's own ``GET /metrics``: answers counted by endpoint and code, appeals by outcome,
latency, the last Kafka acknowledgement, and nothing personal in the exposition.

Real gateway on a real port, real broker and Redis. The metrics are process-wide (one registry
per process, as in production), so each test compares a scrape after with a scrape before.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from streams import topics as t
from streams.settings import Settings
from streams.testing import isolated_settings
from tests.intake.conftest import create_topics
from tests.intake.gateway_support import TOKENS, auth, canon_appeal, gateway_client, gateway_config

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(broker: Any, redis_server: Any) -> Settings:
    """A unique app id too (not only a topic prefix): the Open311 posts here leave retry keys
    in the shared Redis that other modules' tests count under the default app id."""
    settings = isolated_settings(broker.url, redis_server.url, partitions=1)
    create_topics(settings)
    return settings

ENDPOINTS = {"v1_appeals", "open311_requests", "open311_request", "open311_services", "healthz",
             "metrics", "other"}
OUTCOMES = {"accepted", "duplicate", "rejected", "not_stored", "outcome_unknown", "in_progress"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(c: TestClient) -> tuple[str, Samples]:
    r = await c.get("/metrics")  # no Authorization header: Prometheus has no client token
    assert r.status == 200, await r.text()
    assert r.content_type == "text/plain"
    text = await r.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def requests(before: Samples, after: Samples, endpoint: str, code: int) -> float:
    return delta(before, after, "appeals_gateway_requests_total",
                 endpoint=endpoint, code=str(code))


def appeals(before: Samples, after: Samples, outcome: str) -> float:
    return delta(before, after, "appeals_gateway_appeals_total", outcome=outcome)




def test_metrics_count_2xx_4xx_by_endpoint_and_code(gw_settings: Settings) -> None:
    sent_at: list[float] = []

    async def go() -> tuple[Samples, Samples]:
        async with gateway_client(gw_settings) as c:
            _, before = await scrape(c)
            sent_at.append(time.time())
            ok = await c.post("/v1/appeals", json=canon_appeal("m-ok"), headers=auth())
            assert ok.status == 202
            bad = await c.post("/v1/appeals", json=[canon_appeal("m-b1"), {"channel": "nowhere"}],
                               headers=auth())
            assert bad.status == 400
            assert (await c.post("/v1/appeals", data=b"[1, 2", headers=auth())).status == 400
            assert (await c.post("/v1/appeals", json=canon_appeal("m-x"))).status == 401
            assert (await c.get("/v1/appeals")).status == 405
            assert (await c.get("/v1/appeals/m-ok")).status == 404
            assert (await c.get("/open311/v2/services.json")).status == 200
            assert (await c.get("/healthz")).status == 200
            _, after = await scrape(c)
        return before, after

    before, after = asyncio.run(go())
    assert requests(before, after, "v1_appeals", 202) == 1
    assert requests(before, after, "v1_appeals", 400) == 2
    assert requests(before, after, "v1_appeals", 401) == 1
    assert requests(before, after, "v1_appeals", 405) == 1
    assert requests(before, after, "other", 404) == 1  # never the raw path
    assert requests(before, after, "open311_services", 200) == 1
    assert requests(before, after, "healthz", 200) == 1
    assert requests(before, after, "metrics", 200) == 1  # the first scrape
    assert appeals(before, after, "accepted") == 1
    assert appeals(before, after, "rejected") == 2  # the whole invalid batch
    assert delta(before, after, "appeals_gateway_request_duration_seconds_count",
                 endpoint="v1_appeals") == 5
    assert delta(before, after, "appeals_gateway_request_duration_seconds_sum",
                 endpoint="v1_appeals") > 0
    # This test's own send (the gauge is process-wide: earlier tests' sends set it too).
    assert after[("appeals_gateway_kafka_last_ack_timestamp_seconds", frozenset())] >= (
        sent_at[0] - 1)


def test_metrics_count_429_rate_limited(gw_settings: Settings) -> None:
    async def go() -> tuple[list[int], Samples, Samples]:
        async with gateway_client(gw_settings, gateway_config(rate=0.2, burst=1)) as c:
            _, before = await scrape(c)
            statuses = []
            for i in range(3):
                r = await c.post("/v1/appeals", json=canon_appeal(f"m-r{i}"), headers=auth())
                statuses.append(r.status)
            form = {"api_key": TOKENS["pos-platform"], "service_code": "roads",
                    "lat": "53.3", "long": "83.7", "description": "Яма"}
            r = await c.post("/open311/v2/requests.json", data=form)
            statuses.append(r.status)
            _, after = await scrape(c)
        return statuses, before, after

    statuses, before, after = asyncio.run(go())
    assert statuses == [202, 429, 429, 429]
    assert requests(before, after, "v1_appeals", 202) == 1
    assert requests(before, after, "v1_appeals", 429) == 2
    assert requests(before, after, "open311_requests", 429) == 1


def test_metrics_exposition_holds_no_personal_data(gw_settings: Settings) -> None:
    phone, name, text = "+79137775533", "Перепелицына", "Протекает крыша у Перепелицыной"
    secret_id, key = "ext-Perepelitsyna-42", "idem-Perepelitsyna"

    async def go() -> tuple[str, Samples, list[str]]:
        async with gateway_client(gw_settings) as c:
            r = await c.post("/v1/appeals", json=canon_appeal(
                secret_id, text=text, author={"name": name, "phone": phone}),
                headers={**auth("city-app"), "Idempotency-Key": key})
            assert r.status == 202
            appeal_id = (await r.json())["appeal_id"]
            r = await c.post("/v1/appeals", json=canon_appeal(
                "bad-" + secret_id, region=name, author={"phone": phone * 5}), headers=auth())
            assert r.status == 400
            form = {"api_key": TOKENS["city-app"], "service_code": "roads", "lat": "53.31",
                    "long": "83.71", "description": text, "phone": phone, "last_name": name}
            r = await c.post("/open311/v2/requests.json", data=form)
            assert r.status == 201
            open311_id = (await r.json())[0]["service_request_id"]
            assert (await c.get(f"/open311/v2/requests/{open311_id}.json")).status == 200
            assert (await c.get(f"/v1/{name}/{phone}?phone={phone}")).status == 404
            body, samples = await scrape(c)
        return body, samples, [appeal_id, open311_id]

    body, samples, ids = asyncio.run(go())
    for secret in (phone, phone[2:], name, text, secret_id, key, *ids, *TOKENS.values(),
                   *TOKENS, "Bearer"):
        assert secret not in body, secret
    for (metric, labels) in samples:
        if not metric.startswith("appeals_gateway_"):
            continue
        for label, value in labels:
            if label == "endpoint":
                assert value in ENDPOINTS, (metric, value)
            elif label == "code":
                assert re.fullmatch(r"[1-5][0-9][0-9]", value), (metric, value)
            elif label == "outcome":
                assert value in OUTCOMES, (metric, value)
            else:
                assert label == "le", (metric, label)


def test_kafka_stall_counts_504_outcome_unknown_and_keeps_the_last_ack(
    broker: Any, redis_server: Any
) -> None:
    settings = isolated_settings(broker.url, redis_server.url, partitions=1)
    t.ensure_topics(settings)

    async def go() -> tuple[int, dict[str, Any], Samples, Samples, dict[str, Any]]:
        async with gateway_client(settings, gateway_config(send_timeout=2.0)) as c:
            warm = await c.post("/v1/appeals", json=canon_appeal("m-warm"), headers=auth())
            assert warm.status == 202
            _, before = await scrape(c)
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                r = await c.post("/v1/appeals", json=canon_appeal("m-stall"), headers=auth())
                status = r.status
                health = await (await c.get("/healthz")).json()
                _, during = await scrape(c)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await asyncio.sleep(2)
            return status, health, before, during, await (await c.get("/healthz")).json()

    status, health, before, during, _ = asyncio.run(go())
    assert status == 504
    assert requests(before, during, "v1_appeals", 504) == 1
    assert appeals(before, during, "outcome_unknown") == 1
    last_ack = ("appeals_gateway_kafka_last_ack_timestamp_seconds", frozenset())
    assert during[last_ack] == before[last_ack] > 0  # nothing confirmed while frozen
    # /healthz keeps its verdict (cached metadata) but says when Kafka last confirmed a send
    assert health["kafka_last_ack_at"] is not None
