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


# ----------------------------------------------------------------- registration numbers' scope

def _two_offices() -> tuple[dict[str, object], dict[str, object]]:
    """Two authorities in two regions whose registers both start 2025 at «1-1/25»."""
    barnaul = {"channel": "fz59", "reg_number": "1-1/25",
               "received_at": "2025-01-13T16:40:00+07:00", "region": "22",
               "addressee": "Министерство строительства Алтайского края",
               "applicant": {"surname": "Иванов", "name": "Иван"},
               "body": "Нет отопления в доме по ул. Ленина 5, Барнаул"}
    novosibirsk = {"channel": "fz59", "reg_number": "1-1/25",
                   "received_at": "2025-01-14T10:00:00+07:00", "region": "54",
                   "addressee": "Министерство здравоохранения Новосибирской области",
                   "applicant": {"surname": "Петрова", "name": "Мария"},
                   "body": "Прошу записать к врачу-онкологу в поликлинике №3 Новосибирска"}
    return barnaul, novosibirsk


def test_one_registration_number_in_two_registers_is_two_appeals() -> None:
    """A registration number is unique in its office's register only: two authorities'
    «1-1/25» were one appeal id, and intake dropped the second citizen's letter as a
    duplicate. A redelivery of one letter still names one appeal."""
    import orjson

    from tests.intake.fakes import AgentHarness

    barnaul, novosibirsk = _two_offices()
    same_region = {**barnaul, "addressee": "Министерство здравоохранения Алтайского края"}
    ids = [intake_from_dict(letter).external_id for letter in (barnaul, novosibirsk,
                                                                same_region)]
    assert ids == ["22:Министерство строительства Алтайского края:1-1/25",
                   "54:Министерство здравоохранения Новосибирской области:1-1/25",
                   "22:Министерство здравоохранения Алтайского края:1-1/25"]
    # A redelivery, its addressee spaced differently: the same appeal.
    again = {**barnaul, "addressee": " Министерство  строительства\nАлтайского края "}
    assert intake_from_dict(again).external_id == ids[0]
    # No addressee: the region scopes it; an explicit external_id stays the sender's own.
    assert intake_from_dict({**barnaul, "addressee": None}).external_id == "22:1-1/25"
    assert intake_from_dict({**barnaul, "addressee": {"id": 7}}).external_id == "22:1-1/25"
    explicit = {k: v for k, v in barnaul.items() if k != "reg_number"}
    assert intake_from_dict({**explicit, "external_id": "own-1"}).external_id == "own-1"

    h = AgentHarness()
    h.run(h.batch("fz59", [orjson.dumps(barnaul), orjson.dumps(novosibirsk),
                           orjson.dumps(again)]))
    registered = [orjson.loads(v) for _t, _k, v in h.registered()]
    assert [r["region"] for r in registered] == ["22", "54"]  # the redelivery is a duplicate
    assert len({r["appeal_id"] for r in registered}) == 2


def test_a_long_addressee_is_digested_within_the_schema() -> None:
    barnaul, _ = _two_offices()
    letter = {**barnaul, "addressee": "Министерство " * 30}
    external_id = intake_from_dict(letter).external_id
    assert len(external_id) <= 200 and ":sha256:" in external_id
    assert intake_from_dict(dict(letter)).external_id == external_id
