"""The moment intake reads a record is the record's Kafka timestamp on the SLA clock.

It was the SLA clock's now when the batch was processed: a batch replayed after a crash (the
worker killed before its commit) registered a 59-FZ web appeal without a register date a
second time, 40 s later, the same appeal at the same offset with two ``registered_at``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.validation import parse_datetime
from streams.clock import SlaClock
from streams.settings import Settings
from tests.intake.fakes import AgentHarness, Msg
from workers.intake.agent import read_moment

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
#: The intake record's Kafka timestamp: 30 s before the agent first reads it.
WRITTEN = NOW - timedelta(seconds=30)
FORM = {"schema_version": 1, "channel": "web", "external_id": "form-77",
        "submitted_at": "2026-11-27T08:59:00Z", "region": "22",
        "text": "Прошу отремонтировать крышу дома"}


def _registered_at(h: AgentHarness) -> list[datetime]:
    return [parse_datetime(orjson.loads(v)["registered_at"]) for _, _, v in h.registered()]


def _batch(h: AgentHarness, doc: dict[str, object], timestamp: float) -> list[Msg]:
    return [Msg(h.topic(str(doc["channel"])), 0, 7, orjson.dumps(doc), timestamp=timestamp)]


def test_a_replayed_record_is_registered_at_the_same_moment() -> None:
    h = AgentHarness(settings=Settings(), now=NOW)
    batch = _batch(h, FORM, WRITTEN.timestamp())
    h.run(batch)  # outputs sent, then the worker is killed before its commit
    h.now = NOW + timedelta(seconds=40)  # the restarted worker replays the batch
    h.run(batch)
    first, second = _registered_at(h)
    assert first == second == WRITTEN + timedelta(milliseconds=1)
    assert orjson.loads(h.registered()[0][2])["regime"] == "fz59"


def test_the_timestamp_is_read_on_a_sped_up_sla_clock() -> None:
    """APPEALS_TIME_SCALE 86400: the wall moment is mapped as the clock maps it, not taken as
    an SLA-clock moment."""
    epoch = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    clock = SlaClock(86400.0, epoch)
    wall = epoch + 20.0  # 20 wall seconds after the epoch: 20 days on the SLA clock
    h = AgentHarness(settings=Settings(), now=datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    h.clock = clock
    written = datetime.fromtimestamp(clock.sla_time_of(wall + 0.001), UTC)
    assert written.date() == datetime(2026, 11, 21).date()
    doc = {**FORM, "submitted_at": "2026-11-20T23:00:00Z"}
    h.run(_batch(h, doc, wall))
    assert _registered_at(h) == [written.replace(microsecond=written.microsecond // 1000 * 1000)]


def test_a_platform_appeal_is_still_registered_at_submission() -> None:
    h = AgentHarness(settings=Settings(), now=NOW)
    doc = {**FORM, "channel": "pos", "external_id": "pos-1"}
    h.run(_batch(h, doc, WRITTEN.timestamp()))
    assert _registered_at(h) == [parse_datetime(FORM["submitted_at"])]


@pytest.mark.parametrize("timestamp", [0.0, -0.001, None, math.nan, math.inf])
def test_without_a_usable_timestamp_the_record_is_read_now(timestamp: float | None) -> None:
    assert read_moment(SlaClock(), timestamp, NOW) == NOW


def test_a_timestamp_ahead_of_the_sla_clock_is_read_now() -> None:
    assert read_moment(SlaClock(), (NOW + timedelta(hours=1)).timestamp(), NOW) == NOW


def test_a_timestamp_before_1970_on_a_sped_up_clock_is_read_now() -> None:
    clock = SlaClock(86400.0, datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    assert read_moment(clock, 1.0, NOW) == NOW


def test_sla_time_of_is_the_inverse_of_wall_time_of() -> None:
    clock = SlaClock(86400.0, 1_780_000_000.0)
    assert clock.sla_time_of(clock.wall_time_of(1_790_000_000.0)) == pytest.approx(
        1_790_000_000.0)
    assert SlaClock().sla_time_of(1_790_000_000.5) == 1_790_000_000.5
