"""59-FZ adapter: the applicant's postal address is the reply address, not the place of the
problem (review 12, defect 1). Routing reads ``address`` to find the municipality, so the postal
address must never become it; it stays in ``extra["applicant"]``."""

from __future__ import annotations

from tests.intake.conftest import load_samples
from workers.intake.core import intake_from_dict

POSTAL = "656000, г. Барнаул, ул. Попова, д. 1, кв. 2"


def _letter(**fields: object) -> dict[str, object]:
    return {"channel": "fz59", "reg_number": "Ж-22-1/25",
            "received_at": "2025-01-13T16:40:00+07:00", "region": "22",
            "body": "В Бийске яма на дороге",
            "applicant": {"surname": "Иванов", "name": "Иван", "postal_address": POSTAL},
            **fields}


def test_postal_address_is_not_the_address_of_the_problem() -> None:
    appeal = intake_from_dict(_letter())
    assert appeal.address is None
    assert appeal.extra["applicant"] == {"postal_address": POSTAL}


def test_incident_address_is_the_address() -> None:
    appeal = intake_from_dict(_letter(incident_address="г. Бийск, ул. Ленина, 3"))
    assert appeal.address == "г. Бийск, ул. Ленина, 3"
    assert appeal.extra["applicant"]["postal_address"] == POSTAL


def test_samples_without_an_incident_address_have_no_address() -> None:
    for native in load_samples("fz59"):
        appeal = intake_from_dict(native)
        if not native.get("incident_address"):
            assert appeal.address is None, native["reg_number"]
        postal = (native.get("applicant") or {}).get("postal_address")
        if postal:
            assert appeal.extra["applicant"]["postal_address"] == postal
            assert appeal.address != postal or native.get("incident_address") == postal
