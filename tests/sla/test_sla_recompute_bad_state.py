"""``appeals sla recompute`` with a stored state it cannot recompute (one an older version stored
half applied): the other appeals of the partition are recomputed, stored and re-armed, and the
request is not refused (found in session 9's review of its own change: the recompute mutated the
table's values in place and refused the whole partition on the first bad state)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

from monitoring import metrics
from streams import topics as t
from streams.settings import Settings
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import DAY, message, ten_day_rules
from workers.aggregates.partials import PartitionAggregates
from workers.sla import agent as sla_agent
from workers.sla import recompute as rc
from workers.sla.engine import SlaRules, new_state

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
OLD = ten_day_rules()
NEW = SlaRules(due=lambda regime, start, *_: start + 5 * DAY,   # the policy got shorter
               extend=lambda regime, due, days, *_: due + days * DAY)
YEAR_10000 = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def _state(appeal_id: str) -> dict[str, Any]:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    return new_state(routed, 0, T0, "Asia/Barnaul", OLD)[0]


def _event(topic: str, key: bytes, value: bytes) -> Any:
    return message(topic, value, 7, key=key)


def test_a_bad_state_does_not_stop_the_recompute_of_its_partition() -> None:
    good = _state("a" * 24)
    bad = _state("b" * 24)  # what the old agent stored when `answered` in year 10000 raised
    bad.update(status="answered", answered=YEAR_10000.timestamp(), on_time=False)
    table = {b"a" * 24: good, b"b" * 24: bad}
    settings = Settings.load({})
    aggs: dict[int, PartitionAggregates] = {}
    rt: Any = SimpleNamespace(
        table=table, rules=NEW, recompute_request="req-1",  # files "already reloaded"
        ctx=SimpleNamespace(settings=settings, clock=SimpleNamespace(now=lambda: T0 + DAY)),
        external_lifecycle_topic=t.topic_name(settings, t.LIFECYCLE),
        lifecycle_topic=t.topic_name(settings, t.SLA_LIFECYCLE),
        routed_topic=t.topic_name(settings, t.ROUTED),
        ticks_topic=t.topic_name(settings, t.SLA_TICKS),
        owns=None, router=None, resolve_parent=None,
        partition_aggregates=lambda p: aggs.setdefault(p, PartitionAggregates()))
    outbox = RecordingOutbox()
    batch = sla_agent.Batch(now=T0 + DAY)
    unprocessable = metrics.LIFECYCLE.labels("recompute", "unprocessable")._value.get()
    key, value = rc.control_message("req-1", 0)
    asyncio.run(sla_agent._handle(rt, outbox, _event(rt.lifecycle_topic, key, value), batch))

    assert outbox.dead == []  # the request is not refused
    assert list(batch.changed) == [b"a" * 24]  # stored, and its new timers scheduled
    assert batch.changed[b"a" * 24]["due"] == good["due"] - 5 * DAY
    assert batch.schedule[0] is not None
    assert table[b"a" * 24]["cycle"] == 0 and table[b"a" * 24]["due"] == T0 + 10 * DAY, (
        "the table's value is left as it was until the batch stores the new one")
    assert table[b"b" * 24] is bad
    assert metrics.LIFECYCLE.labels("recompute", "unprocessable")._value.get() == (
        unprocessable + 1)
