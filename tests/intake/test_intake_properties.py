"""Property tests: arbitrary bytes and JSON never crash intake or the gateway, never hang."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.records import CHANNELS, IntakeAppeal
from schemas.validation import InvalidEvent
from tests.intake.conftest import create_topics, load_samples, make_settings
from tests.intake.gateway_support import auth, gateway_client
from workers.intake.core import decode_intake

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=15), children, max_size=5),
    max_leaves=20,
)
FIELDS = ["schema_version", "channel", "external_id", "submitted_at", "region", "text",
          "author", "attachments", "address", "importance", "extra", "id", "created",
          "region_code", "fields", "caller", "call_started", "message_id", "received",
          "incident_id", "published_at", "reg_number", "applicant", "body", "summary"]
intake_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10) | st.builds(
        lambda ch, d: {"channel": ch, **d}, st.sampled_from(CHANNELS),
        st.dictionaries(st.sampled_from(FIELDS[2:]), json_values, max_size=8))
SAMPLES = [s for ch in CHANNELS for s in load_samples(ch)] + load_samples("canonical")


@st.composite
def mutated_samples(draw: st.DrawFn) -> dict[str, Any]:
    """A real sample with a few fields (top-level or nested) replaced by arbitrary JSON."""
    sample = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 3))):
        target = sample
        for _depth in range(3):
            keys = list(target)
            if not keys:
                break
            key = rnd.choice(keys)
            if isinstance(target[key], dict) and rnd.random() < 0.5:
                target = target[key]
                continue
            target[key] = draw(json_values)
            break
    return sample


def _check(raw: bytes, hint: str | None) -> None:
    try:
        appeal = decode_intake(raw, channel_hint=hint)
    except InvalidEvent as exc:
        assert exc.reason and " " not in exc.reason
    else:
        assert isinstance(appeal, IntakeAppeal)


@settings(max_examples=400, deadline=1000)
@given(st.binary(max_size=2000), st.none() | st.sampled_from(CHANNELS))
def test_arbitrary_bytes(raw: bytes, hint: str | None) -> None:
    _check(raw, hint)


@settings(max_examples=400, deadline=1000)
@given(json_values | intake_like | mutated_samples(), st.none() | st.sampled_from(CHANNELS))
def test_arbitrary_json(value: Any, hint: str | None) -> None:
    _check(json.dumps(value).encode(), hint)


@pytest.fixture(scope="module")
def live_gateway(broker: Any, redis_server: Any) -> Iterator[tuple[asyncio.AbstractEventLoop,
                                                                    Any]]:
    gw_settings = make_settings(broker, redis_server)
    create_topics(gw_settings)
    loop = asyncio.new_event_loop()
    cm = gateway_client(gw_settings)
    client = loop.run_until_complete(cm.__aenter__())
    try:
        yield loop, client
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()


@pytest.mark.integration
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(json_values | intake_like | mutated_samples() | st.lists(mutated_samples(), max_size=3),
       st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                           min_size=1, max_size=20))
def test_gateway_never_5xx(live_gateway: Any, value: Any, key: str | None) -> None:
    loop, client = live_gateway
    headers = auth()
    if key is not None:
        headers["Idempotency-Key"] = key

    async def post() -> int:
        r = await client.post("/v1/appeals", data=json.dumps(value), headers=headers)
        await r.read()
        return r.status

    status = loop.run_until_complete(asyncio.wait_for(post(), 30))
    assert status < 500
    # 422: a key the search already used with another body (idempotency_key_reused).
    assert status in (202, 400, 409, 413, 422)
