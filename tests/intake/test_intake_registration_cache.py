"""The last day of a day-counted fz59 ``registration`` stage is remembered per region, policy,
calendar and local date of receipt, with the same results.

A review of today's commits found ``registration_time`` of every 59-FZ appeal 7.6 µs where it
was 1.0: each one counted the stage's days and day-off shift on the region's calendar again,
though the last day depends on nothing but the receipt's local date. A stage counted in
working hours ends at a moment that depends on the receipt's time of day: never remembered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import workers.deadlines.compute as compute
from workers.deadlines.policies import PolicyBook
from workers.intake import core

BARNAUL = ZoneInfo("Asia/Barnaul")


def _book(**fz59: Any) -> PolicyBook:
    data = PolicyBook.read_data(None)[0]
    return PolicyBook({**data, "overrides": [{"regime": "fz59", "region": "22", **fz59}]},
                      "test")


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    calls: list[dt.datetime] = []
    real = compute.registration_due

    def counted(received_at: dt.datetime, *args: Any, **kwargs: Any) -> dt.datetime:
        calls.append(received_at)
        return real(received_at, *args, **kwargs)

    monkeypatch.setattr(compute, "registration_due", counted)
    return calls


@pytest.mark.parametrize("region, book", [
    ("22", PolicyBook.load()),
    ("77", PolicyBook.load()),
    ("22", _book(shift="next")),
    ("22", _book(timezone="Europe/Moscow")),
])
def test_cached_and_uncached_agree_across_a_year_of_receipt_days(
        region: str, book: PolicyBook, monkeypatch: pytest.MonkeyPatch) -> None:
    zone = ZoneInfo("Europe/Moscow" if region == "77" else "Asia/Barnaul")
    day0 = dt.datetime(2026, 11, 20, tzinfo=zone)
    receipts = [day0 + dt.timedelta(days=d, hours=h, minutes=7)
                for d in range(366) for h in (0, 9, 23)]
    uncached = []
    for receipt in receipts:
        core._LAST_DAY_CACHE.clear()
        uncached.append(core.fz59_latest_registration(receipt, region, book))
    core._LAST_DAY_CACHE.clear()
    calls = _counting(monkeypatch)
    cached = [core.fz59_latest_registration(receipt, region, book) for receipt in receipts]
    assert cached == uncached
    # Once per local receipt day (in the policy's zone), not per appeal.
    policy_zone = ZoneInfo(book.resolve("fz59", region=region).timezone or zone.key)
    assert len(calls) == len({r.astimezone(policy_zone).date() for r in receipts}) <= 367
    # And the same as the stage itself says (noon of its last day, never before receipt).
    for receipt, got in zip(receipts[::37], cached[::37], strict=True):
        due = compute.stage_due("registration", receipt, policy_zone.key,
                                book.resolve("fz59", region=region),
                                compute.default_calendar().for_region(region))
        assert got == max(receipt, dt.datetime.combine(due.date(), dt.time(12), policy_zone))


def test_another_policy_book_is_not_answered_from_the_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    receipt = dt.datetime(2026, 3, 4, 10, 0, tzinfo=BARNAUL)  # Wednesday; Saturday is day 3
    assert core.fz59_latest_registration(receipt, "22", _book(shift="previous")) == (
        dt.datetime(2026, 3, 6, 12, 0, tzinfo=BARNAUL))
    assert core.fz59_latest_registration(receipt, "22", _book(shift="next")) == (
        dt.datetime(2026, 3, 10, 12, 0, tzinfo=BARNAUL))


def test_a_working_hours_stage_bypasses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    book = _book(stages={"registration": {"counting": "working_hours", "amount": 8}})
    core._LAST_DAY_CACHE.clear()
    calls = _counting(monkeypatch)
    morning = dt.datetime(2026, 3, 4, 10, 0, tzinfo=BARNAUL)
    afternoon = morning.replace(hour=15)
    assert core.fz59_latest_registration(morning, "22", book) == morning.replace(hour=18)
    assert core.fz59_latest_registration(afternoon, "22", book) == dt.datetime(
        2026, 3, 5, 14, 0, tzinfo=BARNAUL)
    assert core.fz59_latest_registration(morning, "22", book) == morning.replace(hour=18)
    assert len(calls) == 3 and core._LAST_DAY_CACHE == {}
