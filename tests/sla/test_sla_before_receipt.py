"""The past tolerance counts from the earlier of an appeal's receipt and its registration.

A review found valid events of backlogged 59-FZ letters dead-lettered as mistyped years: a
letter without a ``reg_date`` that intake reads late is registered at noon of the fz59
registration stage's last day (``workers.intake.core.registration_time``), more than three
days after its receipt (up to twelve over New Year), and the body's ``accepted`` stamped on
the morning it got the letter lay more than ``APPEALS_SLA_PAST_TOLERANCE`` before the
registration. The routed record now carries the receipt (``received_at``, only where it is
not ``registered_at``), the SLA state keeps it (``rcpt``, only where earlier), and the check
counts from the earlier. A mistyped year is still refused.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.records import RoutedAppeal, SourcePosition
from schemas.validation import validate
from tests.sla.sla_support import (
    EXTERNAL,
    ROUTED,
    fixed_clock,
    lifecycle,
    message,
    run_one_batch,
    stand_in_runtime,
)
from workers.deadlines.policies import PolicyBook
from workers.intake import core
from workers.intake.agent import route_view
from workers.route.agent import routed_record
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import BEFORE_PERIOD

BARNAUL = ZoneInfo("Asia/Barnaul")
DECISION = SimpleNamespace(authority_id="22-minzhkh", level="region", rule_version="v1",
                           parent_authority_id=None, municipality=None, complaint_about=None,
                           timezone=None)


def _routed(submitted: dt.datetime, read_at: dt.datetime, channel: str = "web",
            ) -> dict[str, Any]:
    """The routed record of an appeal submitted at ``submitted`` that intake reads at
    ``read_at``, built as the intake and route agents build it."""
    intake = core.intake_from_dict({
        "schema_version": 1, "channel": channel, "external_id": f"{channel}-1", "region": "22",
        "submitted_at": submitted.isoformat(), "text": "Прошу отремонтировать крышу"})
    regime = core.regime_for(channel, "pos", "fz59", open311=False, open311_regime="pos")
    registered_at = core.registration_time(intake, read_at, regime=regime,
                                           book=PolicyBook.load())
    registered = core.register(intake, registered_at=registered_at,
                               source=SourcePosition("t", 0, 0))
    record = routed_record(route_view(registered), DECISION, "housing_utilities", False, 0.9,
                           "test", read_at)
    value = orjson.loads(record.to_json())
    validate(RoutedAppeal.schema, value)
    return dict(value)


def _event(topic: str, value: dict[str, Any], offset: int) -> Any:
    return message(topic, value, offset, key=value["appeal_id"].encode())


def _lifecycle(appeal_id: str, kind: str, at: dt.datetime, n: int) -> dict[str, Any]:
    return lifecycle(kind, n, at, appeal_id=appeal_id)


def _runtime(now: dt.datetime) -> Any:
    return stand_in_runtime(clock=fixed_clock(now.timestamp()),
                            rules=DeadlineService().rules())


@pytest.mark.parametrize("submitted, read_at", [
    # Read eight days late: registered on Friday 20 November, 3.1 days after the event.
    (dt.datetime(2026, 11, 17, 9, 0, tzinfo=BARNAUL),
     dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)),
    # Received before New Year, read after it: registered on 11 January, twelve days on.
    (dt.datetime(2026, 12, 30, 10, 0, tzinfo=BARNAUL),
     dt.datetime(2027, 1, 12, 9, 0, tzinfo=dt.UTC)),
])
@pytest.mark.parametrize("held", [False, True])
def test_an_event_on_the_day_of_receipt_of_a_backlogged_letter_applies(
        submitted: dt.datetime, read_at: dt.datetime, held: bool) -> None:
    routed = _routed(submitted, read_at)
    appeal_id = routed["appeal_id"]
    registered = dt.datetime.fromisoformat(routed["registered_at"])
    assert registered - submitted > dt.timedelta(days=3)  # the backlog the review found
    assert dt.datetime.fromisoformat(routed["received_at"]) == submitted
    accepted = _lifecycle(appeal_id, "accepted", submitted + dt.timedelta(minutes=30), 1)
    rt = _runtime(read_at + dt.timedelta(hours=1))
    if held:  # the body's event overtook the routing
        run_one_batch(rt, _event(EXTERNAL, accepted, 1))
        outbox, _ = run_one_batch(rt, _event(ROUTED, routed, 2))
    else:
        run_one_batch(rt, _event(ROUTED, routed, 1))
        outbox, _ = run_one_batch(rt, _event(EXTERNAL, accepted, 2))
    assert outbox.dead == []
    state = rt.table[appeal_id.encode()]
    assert state["rcpt"] == submitted.timestamp()
    assert state["reg"] == registered.timestamp()  # the deadlines still count from it
    assert accepted["event_id"] in state["events"]

    # A mistyped year is still refused, and the detail names the receipt it is judged by.
    mistyped = _lifecycle(appeal_id, "answered", submitted.replace(year=2016), 3)
    outbox, _ = run_one_batch(rt, _event(EXTERNAL, mistyped, 3))
    [(reason, value, detail)] = outbox.dead
    assert (reason, orjson.loads(value)) == (BEFORE_PERIOD, mistyped)
    assert detail is not None and "before the appeal was received" in detail
    assert rt.table[appeal_id.encode()]["status"] == "running"


def test_an_event_more_than_the_tolerance_before_receipt_is_refused() -> None:
    submitted = dt.datetime(2026, 11, 17, 9, 0, tzinfo=BARNAUL)
    routed = _routed(submitted, dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC))
    rt = _runtime(dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    run_one_batch(rt, _event(ROUTED, routed, 1))
    early = _lifecycle(routed["appeal_id"], "accepted",
                       submitted - dt.timedelta(days=3, hours=1), 1)
    outbox, _ = run_one_batch(rt, _event(EXTERNAL, early, 2))
    assert [reason for reason, _v, _d in outbox.dead] == [BEFORE_PERIOD]


def test_an_appeal_registered_at_its_receipt_carries_no_receipt() -> None:
    """A ``pos`` appeal is registered at its submission, and a 59-FZ letter read in time at the
    stage's end is registered after it: only the latter carries ``received_at`` and ``rcpt``,
    so the routed record and the changelog grow only where the receipt is news."""
    submitted = dt.datetime(2026, 11, 17, 9, 0, tzinfo=BARNAUL)
    routed = _routed(submitted, dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC), channel="pos")
    assert "received_at" not in routed or routed["received_at"] is None
    rt = _runtime(dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    run_one_batch(rt, _event(ROUTED, routed, 1))
    assert "rcpt" not in rt.table[routed["appeal_id"].encode()]


def test_a_state_stored_before_the_receipt_was_kept_counts_from_registration() -> None:
    submitted = dt.datetime(2026, 11, 17, 9, 0, tzinfo=BARNAUL)
    routed = _routed(submitted, dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC))
    del routed["received_at"]  # a record of an older route agent
    rt = _runtime(dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    run_one_batch(rt, _event(ROUTED, routed, 1))
    assert "rcpt" not in rt.table[routed["appeal_id"].encode()]
    accepted = _lifecycle(routed["appeal_id"], "accepted", submitted + dt.timedelta(minutes=30), 1)
    outbox, _ = run_one_batch(rt, _event(EXTERNAL, accepted, 2))
    assert [reason for reason, _v, _d in outbox.dead] == [BEFORE_PERIOD]
