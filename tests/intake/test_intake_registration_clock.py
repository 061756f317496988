"""The registration moment intake stamps: the legal one, not the moment intake reads the record.

Every deadline counts from ``registered_at``. It was the moment intake read the record, so a
59-FZ letter the office received and registered on 2 March 2026 and intake read on 12 March
after a backlog was due on 10 April; 59-FZ (art. 8 p. 2: registered within 3 days of receipt;
art. 12 p. 1: answered within 30 days of registration) gives 1 April, 3 April at the latest.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

import workers.intake.adapters  # registers the adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from schemas.records import IntakeAppeal
from schemas.validation import InvalidEvent
from streams.settings import ConfigError, Settings
from tests.intake.fakes import AgentHarness
from workers.deadlines.compute import registration_due
from workers.deadlines.policies import PolicyBook
from workers.intake.core import decode_intake, registration_time
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import new_state

BARNAUL = ZoneInfo("Asia/Barnaul")
#: Intake reads the letter ten days after the office received it (a backlog, an outage).
READ = dt.datetime(2026, 3, 12, 10, 0, tzinfo=BARNAUL)
RECEIVED = "2026-03-02T10:00:00+07:00"


def _letter(**changes: Any) -> dict[str, Any]:
    letter = {"channel": "fz59", "source": "letter", "reg_number": "1-1/26",
              "reg_date": "02.03.2026", "received_at": RECEIVED, "region": "22",
              "addressee": "Минстрой", "applicant": {"surname": "Тестов", "name": "Тест"},
              "subject": "Дорога", "body": "Прошу отремонтировать дорогу на улице"}
    letter.update(changes)
    return {k: v for k, v in letter.items() if v is not None}


def _intake(payload: dict[str, Any]) -> IntakeAppeal:
    return decode_intake(orjson.dumps(payload), channel_hint=payload["channel"])


def _canonical(channel: str, submitted_at: str) -> IntakeAppeal:
    return _intake({"schema_version": 1, "channel": channel, "external_id": f"{channel}-1",
                    "submitted_at": submitted_at, "region": "22", "text": "Яма на дороге"})


def test_fz59_reg_date_is_the_registration() -> None:
    """The office's own registration date (kept in ``extra.reg_date`` by the adapter), at noon
    of that day in the region's zone: the letter received at 10:00 and registered that day is
    registered at 12:00."""
    intake = _intake(_letter())
    assert intake.extra["reg_date"] == "02.03.2026"
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 2, 12, 0, tzinfo=BARNAUL)


def test_fz59_reg_date_after_receipt_is_noon_of_that_local_day() -> None:
    intake = _intake(_letter(reg_date="2026-03-04"))
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 4, 12, 0, tzinfo=BARNAUL)


def test_fz59_reg_date_is_never_before_receipt() -> None:
    """Received in the afternoon of its registration date: registered at its receipt."""
    intake = _intake(_letter(received_at="2026-03-02T15:30:00+07:00"))
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 2, 15, 30, tzinfo=BARNAUL)


def test_fz59_letter_without_a_receipt_time_is_registered_at_noon_of_its_date() -> None:
    """The adapter takes the register's date as the receipt when ``received_at`` is missing
    (the start of that day); the registration is still noon of it, not that midnight."""
    intake = _intake(_letter(received_at=None, reg_date="03.03.2026"))
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 3, 12, 0, tzinfo=BARNAUL)


#: Russia's westernmost and easternmost zones, and Moscow's.
RUSSIAN_EXTREMES = ("Europe/Kaliningrad", "Europe/Moscow", "Asia/Barnaul", "Asia/Kamchatka")


@pytest.mark.parametrize(("region", "received"), [
    ("39", "2026-03-02T10:00:00+02:00"),  # Kaliningrad, UTC+2
    ("22", "2026-03-02T10:00:00+07:00"),  # Barnaul, UTC+7
    ("41", "2026-03-02T10:00:00+12:00"),  # Kamchatka, UTC+12
])
def test_fz59_reg_date_is_that_date_in_every_russian_zone(region: str, received: str) -> None:
    """The SLA engine counts days in the routed authority's zone or the policy's, which need
    not be the region's; the register's date must be the date there too. It was midnight in
    the region's zone: 3 March in Barnaul was 2 March in Moscow."""
    intake = _intake(_letter(region=region, received_at=received, reg_date="03.03.2026"))
    registered = registration_time(intake, READ, regime="fz59")
    for zone in RUSSIAN_EXTREMES:
        assert registered.astimezone(ZoneInfo(zone)).date() == dt.date(2026, 3, 3), zone


def test_fz59_reg_date_west_of_the_region_is_due_from_that_date() -> None:
    """The reviewer's case: region 22, received 2 March, registered on 3 March, counted on
    Moscow time (the policy's ``timezone``, as for an authority working on Moscow time): due
    2 April (30 days from 3 March), not 1 April."""
    intake = _intake(_letter(reg_date="03.03.2026"))
    start = registration_time(intake, READ, regime="fz59").timestamp()
    book = PolicyBook({**PolicyBook.read_data(None)[0],
                       "overrides": [{"authority": "A", "timezone": "Europe/Moscow"}]}, "test")
    moscow = ZoneInfo("Europe/Moscow")
    for service in (DeadlineService(), DeadlineService(book)):
        due = service.due("fz59", start, "Europe/Moscow", False, "A", None, None, "22")
        assert dt.datetime.fromtimestamp(due, moscow).isoformat() == "2026-04-02T23:59:59+03:00"


@pytest.mark.parametrize("reg_date", [None, "not a date", "31.02.2026"])
def test_fz59_without_a_reg_date_is_registered_at_the_legal_latest(reg_date: str | None) -> None:
    """The last of the three days art. 8 p. 2 allows (Thursday 5 March, a working day), at
    noon, as a register's date is."""
    intake = _intake(_letter(reg_date=reg_date))
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 5, 12, 0, tzinfo=BARNAUL)


def test_fz59_latest_registration_over_the_new_year_is_the_registration_stage_s() -> None:
    """The reviewer's case: received 30 December 2026 without a reg_date. Receipt plus three
    calendar days was 2 January 2027, a public holiday, answer due 1 February; the project's
    registration stage (``appeals sla due``'s ``registration_due``) ends on 11 January, and the
    answer is due 10 February."""
    intake = _intake(_letter(reg_date=None, received_at="2026-12-30T15:00:00+07:00"))
    read = dt.datetime(2027, 1, 20, 10, 0, tzinfo=BARNAUL)
    registered = registration_time(intake, read, regime="fz59")
    assert registered == dt.datetime(2027, 1, 11, 12, 0, tzinfo=BARNAUL)
    policy = PolicyBook.load().resolve("fz59", region="22")
    stage_due = registration_due(dt.datetime.fromisoformat(intake.submitted_at),
                                 "Asia/Barnaul", policy)
    assert stage_due.date() == registered.date()
    due = DeadlineService().due("fz59", registered.timestamp(), "Asia/Barnaul", False, "A",
                                None, None, "22")
    assert dt.datetime.fromtimestamp(due, BARNAUL).isoformat() == "2027-02-10T23:59:59+07:00"


def test_fz59_latest_registration_is_not_a_day_off() -> None:
    """Received on Wednesday 4 March 2026: the third day is Saturday 7 March, which the fz59
    policy's ``previous`` shift makes Friday 6 March."""
    intake = _intake(_letter(reg_date=None, received_at="2026-03-04T10:00:00+07:00"))
    read = dt.datetime(2026, 3, 20, 10, 0, tzinfo=BARNAUL)
    assert registration_time(intake, read, regime="fz59") == dt.datetime(
        2026, 3, 6, 12, 0, tzinfo=BARNAUL)


def test_fz59_latest_registration_is_the_registration_stage_s_day_all_year() -> None:
    """Every receipt day of 2026 and the New Year after it: the registration's local date is
    the last day of the policy's registration stage, as ``appeals sla due`` reports it."""
    policy = PolicyBook.load().resolve("fz59", region="22")
    day = dt.date(2026, 1, 1)
    while day <= dt.date(2027, 1, 15):
        received = dt.datetime.combine(day, dt.time(16, 30), BARNAUL)
        intake = _intake(_letter(reg_date=None, received_at=received.isoformat()))
        registered = registration_time(intake, received + dt.timedelta(days=30), regime="fz59")
        expected = registration_due(received, "Asia/Barnaul", policy).date()
        assert registered == dt.datetime.combine(expected, dt.time(12), BARNAUL), day
        day += dt.timedelta(days=1)


def _book(**fz59: Any) -> PolicyBook:
    data = PolicyBook.read_data(None)[0]
    return PolicyBook({**data, "overrides": [{"regime": "fz59", "region": "22", **fz59}]},
                      "test")


def test_fz59_latest_registration_follows_the_region_s_policy() -> None:
    """The region's ``shift``, ``timezone`` and stage, as the SLA engine would read them."""
    received = dt.datetime(2026, 3, 4, 10, 0, tzinfo=BARNAUL)  # Wednesday; Saturday is day 3
    intake = _intake(_letter(reg_date=None, received_at=received.isoformat()))
    read = dt.datetime(2026, 3, 20, 10, 0, tzinfo=BARNAUL)
    # Civil Code art. 193: the next working day (Monday 9 March 2026 is a day off).
    assert registration_time(intake, read, regime="fz59", book=_book(shift="next")) == (
        dt.datetime(2026, 3, 10, 12, 0, tzinfo=BARNAUL))
    # Counted on Moscow time: noon there.
    moscow = ZoneInfo("Europe/Moscow")
    assert registration_time(intake, read, regime="fz59",
                             book=_book(timezone="Europe/Moscow")) == (
        dt.datetime(2026, 3, 6, 12, 0, tzinfo=moscow))
    # A stage counted in working hours ends at a moment, not on a day: that moment.
    hours = _book(stages={"registration": {"counting": "working_hours", "amount": 8}})
    assert registration_time(intake, read, regime="fz59", book=hours) == dt.datetime(
        2026, 3, 4, 18, 0, tzinfo=BARNAUL)


def test_fz59_latest_registration_without_the_stage_is_three_calendar_days() -> None:
    data = PolicyBook.read_data(None)[0]
    fz59 = {k: v for k, v in data["regimes"]["fz59"].items() if k != "stages"}
    book = PolicyBook({**data, "regimes": {**data["regimes"], "fz59": fz59}}, "test")
    assert "registration" not in book.resolve("fz59", region="22").stages
    intake = _intake(_letter(reg_date=None, received_at="2026-03-04T10:00:00+07:00"))
    read = dt.datetime(2026, 3, 20, 10, 0, tzinfo=BARNAUL)
    assert registration_time(intake, read, regime="fz59", book=book) == dt.datetime(
        2026, 3, 7, 12, 0, tzinfo=BARNAUL)


def test_agent_registers_by_its_policy_file(tmp_path: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent reads ``APPEALS_POLICY_FILE`` (a region's ``next`` shift) for it."""
    policies = tmp_path / "policies.toml"
    policies.write_text(
        resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
        + '\n[[overrides]]\nregime = "fz59"\nregion = "22"\nshift = "next"\n', "utf-8")
    monkeypatch.setenv("APPEALS_POLICY_FILE", str(policies))
    read = dt.datetime(2026, 3, 20, 10, 0, tzinfo=BARNAUL)
    h = AgentHarness(now=read)
    h.run(h.batch("fz59", [orjson.dumps(
        _letter(reg_date=None, received_at="2026-03-04T10:00:00+07:00"))]))
    assert h.crashes == [] and h.deadletters() == []
    [(_topic, _key, value)] = h.registered()
    assert orjson.loads(value)["registered_at"] == "2026-03-10T05:00:00.000+00:00"


def test_fz59_read_within_three_days_is_registered_when_read() -> None:
    read = dt.datetime(2026, 3, 3, 9, 0, tzinfo=BARNAUL)
    assert registration_time(_intake(_letter(reg_date=None)), read, regime="fz59") == read
    # A registration date after the reading (someone's clock) does not move it later.
    later = _intake(_letter(reg_date="04.03.2026"))
    assert registration_time(later, read, regime="fz59") == read


def test_web_form_under_fz59_is_registered_at_the_legal_latest() -> None:
    """The web channel names no registration date: receipt plus three days, at most read."""
    intake = _canonical("web", RECEIVED)
    assert registration_time(intake, READ, regime="fz59") == dt.datetime(
        2026, 3, 5, 12, 0, tzinfo=BARNAUL)


@pytest.mark.parametrize("channel", ["pos", "incident", "hotline", "email"])
def test_platform_and_hotline_clocks_start_at_submission(channel: str) -> None:
    regime = "pos" if channel == "email" else channel
    intake = _canonical(channel, RECEIVED)
    assert registration_time(intake, READ, regime=regime) == dt.datetime.fromisoformat(RECEIVED)


@pytest.mark.parametrize("regime", ["fz59", "pos", "incident", "hotline"])
def test_a_submitted_at_in_the_future_is_ignored(regime: str) -> None:
    intake = _canonical("fz59" if regime == "fz59" else regime, "2026-03-20T10:00:00+07:00")
    assert registration_time(intake, READ, regime=regime) == READ


def test_a_submitted_at_older_than_the_max_age_is_refused() -> None:
    intake = _canonical("pos", "2016-03-02T10:00:00+07:00")  # a mistyped year
    with pytest.raises(InvalidEvent) as caught:
        registration_time(intake, READ, regime="pos", max_age=365 * 86400.0)
    assert caught.value.reason == "invalid_value"
    assert "APPEALS_INTAKE_MAX_AGE" in caught.value.detail and "\n" not in caught.value.detail
    # Within it, an old appeal is registered at its submission (and so overdue at once).
    old = _canonical("pos", "2025-04-02T10:00:00+07:00")
    assert registration_time(old, READ, regime="pos") == dt.datetime(
        2025, 4, 2, 10, 0, tzinfo=BARNAUL)


def test_the_max_age_setting_is_checked() -> None:
    assert Settings().intake_max_age == 365 * 86400.0
    with pytest.raises(ConfigError, match="APPEALS_INTAKE_MAX_AGE"):
        Settings(intake_max_age=3600.0)


def test_agent_dead_letters_a_too_old_appeal_and_lets_its_correction_through() -> None:
    """Dead-lettered before the dedupe mark: the corrected resend is not a duplicate."""
    h = AgentHarness(now=READ)
    bad = {"schema_version": 1, "channel": "pos", "external_id": "p-1",
           "submitted_at": "2016-03-02T10:00:00+07:00", "region": "22", "text": "Яма на дороге"}
    h.run(h.batch("pos", [orjson.dumps(bad)]),
          h.batch("pos", [orjson.dumps({**bad, "submitted_at": RECEIVED})]))
    assert h.crashes == []
    [(_topic, reason, detail)] = h.deadletters()
    assert reason == "invalid_value" and "APPEALS_INTAKE_MAX_AGE" in detail
    [(_topic, _key, value)] = h.registered()
    assert orjson.loads(value)["registered_at"] == "2026-03-02T03:00:00.000+00:00"


@pytest.mark.parametrize(("reg_date", "due"), [
    ("02.03.2026", "2026-04-01T23:59:59+07:00"),  # 30 days from the office's registration
    (None, "2026-04-03T23:59:59+07:00"),          # from the legal latest, receipt + 3 days
])
def test_backlogged_letter_is_due_from_its_legal_registration(reg_date: str | None,
                                                              due: str) -> None:
    """The agent registers a letter read ten days late at its legal registration, and the SLA
    engine counts its answer deadline from there (it was 10 April, from the reading)."""
    h = AgentHarness(now=READ)
    h.run(h.batch("fz59", [orjson.dumps(_letter(reg_date=reg_date))]))
    assert h.crashes == [] and h.deadletters() == []
    [(_topic, _key, value)] = h.registered()
    registered = orjson.loads(value)
    routed = {"appeal_id": registered["appeal_id"], "regime": registered["regime"],
              "region": "22", "authority_id": "A", "category": "roads", "urgent": False}
    start = dt.datetime.fromisoformat(registered["registered_at"]).timestamp()
    state, _ = new_state(routed, 0, start, "Asia/Barnaul", DeadlineService().rules())
    assert dt.datetime.fromtimestamp(state["due"], BARNAUL).isoformat() == due
