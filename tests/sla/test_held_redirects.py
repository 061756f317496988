"""A redirect that overtook its appeal's routing gets the same check as one that came after."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from tests.sla.sla_support import DAY, fixed_clock, stand_in_runtime, ten_day_rules
from workers.routing import Router, load_rules
from workers.routing.loader import PACKAGED_DATA
from workers.sla import agent as sla_agent

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)
ROUTED = {"appeal_id": "a" * 24, "regime": "fz59", "region": "22",
          "registered_at": T0.isoformat(), "authority_id": "22-government",
          "parent_authority_id": None, "category": "housing_utilities", "urgent": False,
          "complaint_about": "22-minzhkh", "timezone": "Asia/Barnaul"}


def _runtime() -> Any:
    return stand_in_runtime(clock=fixed_clock(T0.timestamp() + 2 * DAY), rules=ten_day_rules(),
                            router=Router(load_rules(PACKAGED_DATA)),
                            region_tz=lambda region, hint: hint or "Asia/Barnaul")


def _redirect(to: str) -> dict[str, Any]:
    return {"event_id": "e1", "appeal_id": ROUTED["appeal_id"], "event": "redirected",
            "at": (T0 + dt.timedelta(days=1)).isoformat(), "to_authority_id": to}


# 22-government: the body the routing gives it, so no redirect at all (it restarted the clock).
@pytest.mark.parametrize("target", ["22-minzhkh", "22-no-such-body", "22-government"])
def test_a_held_redirect_to_a_refused_body_is_handed_back(target: str) -> None:
    rt = _runtime()
    held, _ = sla_agent._on_lifecycle(rt, None, _redirect(target))  # overtakes the routing
    refused: list[tuple[dict[str, Any], str, str]] = []
    state, _ = sla_agent._on_routed(rt, held, ROUTED, 0, refused)
    assert state is not None and state["auth"] == "22-government"
    assert [(event["event_id"], reason) for event, reason, _why in refused] == [
        ("e1", "redirect_refused")]


def test_a_held_redirect_to_an_allowed_body_is_applied() -> None:
    rt = _runtime()
    held, _ = sla_agent._on_lifecycle(rt, None, _redirect("22-mintrans"))
    refused: list[tuple[dict[str, Any], str, str]] = []
    state, _ = sla_agent._on_routed(rt, held, ROUTED, 0, refused)
    assert state is not None and state["auth"] == "22-mintrans" and refused == []


async def _dead_letter_of(value: bytes) -> dict[str, Any]:
    import asyncio
    import base64

    import orjson

    from workers.runtime import Outbox

    sent: list[tuple[str, bytes | None, bytes]] = []

    class Producer:
        async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> Any:
            sent.append((topic, key, value))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    topology = SimpleNamespace(app=SimpleNamespace(producer=Producer()),
                               name=lambda base: f"p.{base}")
    outbox = Outbox(topology, "sla")  # type: ignore[arg-type]
    await outbox.dead_letter_raw(value, b"k", topic="p.appeals.sla.lifecycle", partition=-1,
                                 offset=-1, stage="sla", reason="redirect_refused",
                                 detail="the body complained about")
    await outbox.flush()
    [(topic, key, raw)] = sent
    record: dict[str, Any] = orjson.loads(raw)
    assert topic.endswith("deadletter") and key == b"k"
    assert base64.b64decode(record["value_b64"]) == value
    return record


def test_a_refused_held_event_is_dead_lettered_with_its_reason() -> None:
    import asyncio

    record = asyncio.run(_dead_letter_of(b'{"event": "redirected"}'))
    assert record["reason"] == "redirect_refused" and record["offset"] == -1
    assert record["detail"] == "the body complained about"


def test_states_of_partitions_revoked_during_the_batch_are_not_written() -> None:
    """A state that only holds events waiting for their routed record has no "p": it was
    written whatever its partition (review of session 15); its key tells the partition."""
    from workers.sla.lifecycle_routing import PartitionCheck

    table: dict[bytes, Any] = {}
    owns = PartitionCheck(3)
    rt: Any = SimpleNamespace(table=table, owns=owns)
    keys = [f"pending-{i}".encode() for i in range(40)]
    mine = next(k for k in keys if owns.partition_of(k) in (0, 2))
    theirs = next(k for k in keys if owns.partition_of(k) == 1)
    changed: dict[bytes, dict[str, Any]] = {
        b"a": {"id": "a", "p": 0}, b"b": {"id": "b", "p": 1},
        mine: {"pending": [{"event_id": "e"}]}, theirs: {"pending": [{"event_id": "f"}]}}
    written = sla_agent._store(rt, changed, {0, 2})
    # b's partition and the second pending key's moved to another worker
    assert set(written) == set(table) == {b"a", mine}
    assert table[b"a"]["v"] == 1  # versioned for the read model, as before
