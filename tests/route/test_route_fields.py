"""What reaches routing and the routed record from a registered appeal (review 12).

- defect 1: a 59-FZ applicant's postal address is the reply address, never the place of the
  problem: routing must not read it (it stays in ``extra["applicant"]``);
- defect 8: the intake's near-duplicate flag ``duplicate_of`` reaches the routed record (both
  routing paths), so the authority sees it is a resend;
- defect 11: the subject line (a ПОС title) is searched for the municipality.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

import workers.intake.adapters  # noqa: F401  (registers the native adapters)
from schemas.records import RoutedAppeal, SourcePosition
from schemas.validation import validate
from streams import topics as t
from tests.route.test_route_importance import (
    DECISIONS,
    MONDAY_10,
    PENDING,
    SETTINGS,
    Outbox,
    _decision,
    _event,
    classify_and_route,
)
from workers.intake.agent import route_view
from workers.intake.core import intake_from_dict, register
from workers.route import agent as A
from workers.routing import Router, load_rules


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def registered(native: dict[str, Any], **changes: Any) -> dict[str, Any]:
    intake = intake_from_dict(native, channel_hint=native["channel"])
    reg = register(intake, registered_at=MONDAY_10, source=SourcePosition("appeals.intake", 0, 0))
    return route_view(dataclasses.replace(reg, **changes))


def letter(**fields: Any) -> dict[str, Any]:
    return {"channel": "fz59", "reg_number": "Ж-22-000123/25",
            "received_at": "2025-01-13T16:40:00+07:00", "region": "22",
            "applicant": {"surname": "Иванов", "name": "Иван", "email": "i@example.invalid",
                          "postal_address": "656000, г. Барнаул, ул. Попова, д. 1, кв. 2"},
            "body": "В Бийске на улице Ленина огромная яма на дороге, прошу отремонтировать "
                    "дорожное покрытие.", **fields}


# ------------------------------------------------------------------ 1: the postal address


def test_a_letters_postal_address_does_not_decide_the_authority(router: Router) -> None:
    appeal = registered(letter())
    assert appeal["address"] is None
    decision = router.route(A.route_input(appeal, "roads"))
    assert (decision.municipality, decision.authority_id) == ("biysk", "22-biysk-ugh")


def test_a_letter_without_any_place_goes_to_the_regional_body(router: Router) -> None:
    appeal = registered(letter(body="Прошу отремонтировать дорогу, ям много."))
    decision = router.route(A.route_input(appeal, "roads"))
    assert (decision.municipality, decision.authority_id) == (None, "22-mintrans")


def test_a_letters_incident_address_still_decides(router: Router) -> None:
    appeal = registered(letter(incident_address="г. Рубцовск, ул. Мира, 5",
                               body="Огромная яма на дороге."))
    assert appeal["address"] == "г. Рубцовск, ул. Мира, 5"
    assert router.route(A.route_input(appeal, "roads")).municipality == "rubtsovsk"


# ------------------------------------------------------------------ 11: the subject line


def pos_message() -> dict[str, Any]:
    return {"channel": "pos", "id": "1834521907", "created": "2025-01-14T08:12:44+07:00",
            "region_code": "22", "title": "Нет отопления в Бийске",
            "text": "Третий день холодно в квартире, батареи ледяные, прошу помочь."}


def test_a_pos_title_naming_the_town_routes_there(router: Router) -> None:
    appeal = registered(pos_message())
    assert appeal["subject"] == "Нет отопления в Бийске"
    decision = router.route(A.route_input(appeal, "housing_utilities"))
    assert (decision.municipality, decision.authority_id) == ("biysk", "22-biysk-ugh")


def test_the_subject_travels_in_the_triage_pending_copy(router: Router) -> None:
    unsure = classify_and_route(router, [registered(pos_message())], urgent=False,
                                confidence=0.2)
    [copy] = unsure.on(t.TRIAGE_PENDING)
    assert copy["subject"] == "Нет отопления в Бийске"
    A.check_pending(copy)


# ------------------------------------------------------------------ 8: duplicate_of


def test_a_directly_routed_duplicate_carries_its_flag(router: Router) -> None:
    first, again = registered(pos_message()), registered(
        pos_message() | {"id": "1834521908"}, duplicate_of="a" * 24)
    outbox = classify_and_route(router, [first, again], urgent=False, confidence=0.9)
    routed = outbox.on(t.ROUTED)
    assert [r["duplicate_of"] for r in routed] == [None, "a" * 24]
    for record in routed:
        validate(RoutedAppeal.schema, record)
        assert RoutedAppeal.from_dict(record).duplicate_of == record["duplicate_of"]


def test_a_triaged_duplicate_carries_its_flag(router: Router) -> None:
    appeal = registered(pos_message(), duplicate_of="b" * 24)
    unsure = classify_and_route(router, [appeal], urgent=False, confidence=0.2)
    [copy] = unsure.on(t.TRIAGE_PENDING)
    assert copy["duplicate_of"] == "b" * 24
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    asyncio.run(A.process_batch(
        outbox, table, router, A.EarlyDecisions(SETTINGS.partitions),  # type: ignore[arg-type]
        [_event(PENDING, copy), _decision(appeal["appeal_id"])], DECISIONS))
    [routed] = outbox.on(t.ROUTED)
    assert routed["duplicate_of"] == "b" * 24
    validate(RoutedAppeal.schema, routed)


def test_a_pending_copy_from_before_the_flag_was_carried_still_routes(router: Router) -> None:
    copy = {k: v for k, v in registered(pos_message()).items()
            if k not in ("duplicate_of", "subject")}
    copy.update(urgent=False, confidence=0.2, classifier_version="m")
    outbox, table = Outbox(), {}  # type: ignore[var-annotated]
    asyncio.run(A.process_batch(
        outbox, table, router, A.EarlyDecisions(SETTINGS.partitions),  # type: ignore[arg-type]
        [_event(PENDING, copy), _decision(copy["appeal_id"])], DECISIONS))
    [routed] = outbox.on(t.ROUTED)
    assert routed["duplicate_of"] is None


def test_a_routed_record_without_the_field_still_reads() -> None:
    record = RoutedAppeal(
        appeal_id="x", regime="pos", region="22", registered_at=MONDAY_10.isoformat(),
        category="roads", urgent=False, confidence=1.0, authority_id="22-mintrans",
        routing_level="region_category", rule_version="v",
        routed_at=dt.datetime.now(dt.UTC).isoformat()).to_dict()
    del record["duplicate_of"]
    validate(RoutedAppeal.schema, record)
    assert RoutedAppeal.from_dict(record).duplicate_of is None


# ------------------------------------------------------- review of session 15: complaint_about


@pytest.mark.parametrize(("about", "expected"), [
    ("22-biysk-ugh", "22-biysk-ugh"),
    ("Управление ЖКХ администрации г. Бийска, глава Иванов И.И.", None),  # names an official
    ("Минтранс", None),
])
def test_the_routed_record_names_the_body_complained_about_by_its_id_only(
        router: Router, about: str, expected: str | None) -> None:
    """The routed record carried complaint_about as typed, which may name an official, while
    README says appeals.routed holds no personal data."""
    appeal = registered(letter(complaint_about=about))
    decision = router.route(A.route_input(appeal, "roads"))
    record = A.routed_record(appeal, decision, "roads", False, 0.9, "test")
    assert record.complaint is True
    assert record.complaint_about == expected
    assert about not in record.to_json().decode() or about == expected
