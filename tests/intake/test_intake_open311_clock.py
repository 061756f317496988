"""An Open311 request is stamped on the clock its age is checked on: the SLA clock.

It was stamped with the wall clock (``submitted_at``) and aged on the gateway's SLA clock: with
``APPEALS_TIME_SCALE`` other than 1 (the SLA clock running ahead of the wall) every request was
refused as older than ``APPEALS_INTAKE_MAX_AGE`` once the clocks were a year apart, and before
that registered as submitted long before the SLA clock's now.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.intake.fakes import gateway

FORM = {"api_key": "tok-a", "service_code": "roads", "lat": "53.35", "long": "83.78",
        "description": "Яма у остановки", "jurisdiction_id": "22"}


@pytest.mark.parametrize("keyed", [True, False])
def test_a_request_is_stamped_on_the_sla_clock(keyed: bool) -> None:
    # The SLA clock 400 days ahead of the wall: more than APPEALS_INTAKE_MAX_AGE (a year).
    now = (datetime.now(UTC) + timedelta(days=400)).replace(microsecond=0)

    async def go() -> tuple[int, list[bytes]]:
        async with gateway(now=now) as (c, producer, _redis):
            headers = {"Idempotency-Key": "clock-1"} if keyed else {}
            r = await c.post("/open311/v2/requests.json", data=FORM, headers=headers)
            return r.status, [value for _topic, _key, value in producer.sent]

    status, values = asyncio.run(go())
    assert status == 201
    [value] = values
    assert datetime.fromisoformat(orjson.loads(value)["submitted_at"]) == now
