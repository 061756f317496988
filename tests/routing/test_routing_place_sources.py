"""Where routing looks for the municipality, and where it stops (review 12, defects 2, 3, 11).

Metadata, then the address of the problem, then the subject line, then the text: the first
field that names a place decides. A district the rules do not list ends the search with no
municipality (the category's regional body gets the appeal), never a town a later field names.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router, RoutingRules
from workers.routing.router import detect_municipality, resolve_municipality

# --------------------------------------------------------- 2: an unlisted district stops there


@pytest.mark.parametrize("district", ["Заринский район", "Заринский р-н", "Алейский район",
                                      "Заринский муниципальный округ"])
def test_unlisted_district_in_metadata_is_not_overridden_by_a_town_in_the_text(
    router: Router, district: str
) -> None:
    d = router.route(RouteInput(
        "a", "22", "landscaping", municipality=district,
        text="В селе нет уличного освещения. Обращались в Барнаул — без ответа."))
    assert (d.municipality, d.authority_id, d.level) == (None, "22-minstroy", "region_category")


def test_unlisted_district_in_the_address_is_not_overridden_by_a_town_in_the_text(
    router: Router,
) -> None:
    d = router.route(RouteInput(
        "a", "22", "roads",
        address="656000, Алтайский край, Заринский район, с. Комарское, ул. Центральная, 5",
        subject="Дорога на Бийск", text="Дорога разбита, до Барнаула не доехать."))
    assert (d.municipality, d.authority_id, d.level) == (None, "22-mintrans", "region_category")


def test_unlisted_district_in_the_subject_is_not_overridden_by_the_text(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "roads", subject="Заринский район: дорога",
                                text="Дорога разбита, до Барнаула не доехать."))
    assert (d.municipality, d.authority_id) == (None, "22-mintrans")


def test_the_lookup_tells_an_unlisted_district_from_no_place(demo_rules: RoutingRules) -> None:
    from workers.routing.gazetteer import UNLISTED_DISTRICT

    gaz = demo_rules.regions["22"].gazetteer
    assert gaz.lookup("Заринский район, с. Комарское") is UNLISTED_DISTRICT
    assert gaz.lookup("где-то в поле") is None
    assert gaz.lookup("в Заринске") == "zarinsk"
    # find() keeps its answer: no municipality either way.
    assert gaz.find("Заринский район, с. Комарское") is None
    assert resolve_municipality(demo_rules.regions["22"], "Заринский район") is None


def test_a_field_without_any_place_still_falls_through(demo_rules: RoutingRules) -> None:
    # (Metadata «с. Комарское» used to fall through here too; an explicit settlement the
    # rules do not list now ends the search: test_routing_unlisted_places.)
    region = demo_rules.regions["22"]
    appeal = RouteInput("a", "22", "roads", municipality="Алтайский край",
                        address="ул. Центральная, 5", text="Яма у дома, г. Бийск")
    assert detect_municipality(region, appeal) == "biysk"


# --------------------------------------------------- 3: «муниципальный район/округ» forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Бийский муниципальный район, с. Сростки", "biyskiy-rayon"),
        ("жители Бийского муниципального района", "biyskiy-rayon"),
        ("в Бийском муниципальном районе нет автобуса", "biyskiy-rayon"),
        ("Бийскому муниципальному району", "biyskiy-rayon"),
        ("Каменский муниципальный округ", "kamen-na-obi"),
        ("в Каменском муниципальном округе", "kamen-na-obi"),
        ("Каменского муниципального округа", "kamen-na-obi"),
        ("Каменский муниципальный район", "kamen-na-obi"),
        ("Рубцовский муниципальный округ", "rubtsovskiy-rayon"),
        ("в Рубцовском муниципальном округе", "rubtsovskiy-rayon"),
        ("Первомайский муниципальный район", "pervomayskiy-rayon"),
        ("ПЕРВОМАЙСКОГО МУНИЦИПАЛЬНОГО РАЙОНА", "pervomayskiy-rayon"),
    ],
)
def test_listed_district_written_as_municipal_district_or_okrug(
    demo_rules: RoutingRules, text: str, expected: str
) -> None:
    region = demo_rules.regions["22"]
    assert region.gazetteer.find(text) == expected
    assert resolve_municipality(region, text) == expected


def test_municipal_district_of_a_listed_district_routes_there_not_to_the_city(
    router: Router,
) -> None:
    # «Бийский» alone is the city's adjective: the district form must win.
    d = router.route(RouteInput("a", "22", "housing_utilities",
                                address="Бийский муниципальный район, с. Сростки, ул. Ленина, 1"))
    assert (d.municipality, d.authority_id) == ("biyskiy-rayon", "22-biyskiy-rayon-admin")


# ------------------------------------------------------------- 11: the subject line is read


def test_the_subject_names_the_town(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "housing_utilities", subject="Нет отопления в Бийске",
                                text="Третий день холодно в квартире, батареи ледяные."))
    assert (d.municipality, d.authority_id) == ("biysk", "22-biysk-ugh")


def test_the_subject_comes_after_the_address_and_before_the_text(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "roads", address="г. Бийск, ул. Мира, 3",
                                subject="Яма в Барнауле?", text="в Рубцовске тоже"))
    assert d.municipality == "biysk"
    d = router.route(RouteInput("a", "22", "roads", subject="Яма в Рубцовске",
                                text="Ездил в Барнаул, там лучше"))
    assert d.municipality == "rubtsovsk"
