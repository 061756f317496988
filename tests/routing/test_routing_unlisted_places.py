"""An explicit place the rules do not list, in the intake metadata or the address, ends the
search for the municipality: the appeal goes to the regional level by category, never to a
town the free text mentions later (where people travel to, or whom they already asked).

Before, only a district named after a listed city («Заринский район») stopped the search;
«Тальменский район», «р.п. Тальменка» or the OKTMO code 01647000 fell through to «…доехать до
Барнаула» and the appeal went to a Barnaul committee that has no say over Talmenka's roads.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router, RoutingRules
from workers.routing.gazetteer import UNLISTED_DISTRICT
from workers.routing.router import detect_municipality, resolve_municipality

TEXT = "Дорогу между сёлами не ремонтируют, на скорой не доехать до Барнаула"


@pytest.mark.parametrize(
    "meta",
    [
        "Тальменский район",
        "Тальменский муниципальный район",
        "Тальменский муниципальный округ",
        "Тальменский р-н",
        "ТАЛЬМЕНСКИЙ РАЙОН",
        "Тальменский городской округ",
        "01647000",
        "01647151051",
        "р.п. Тальменка",
        "рп Тальменка",
        "п.г.т. Тальменка",
        "с. Комарское",
        "с.Луговое",
        "пос. Озёрки",
        "д. Новоперуново",
        "село Луговое",
        "ЗАТО Сибирский",
    ],
)
def test_unlisted_place_in_metadata_goes_to_the_region(router: Router, meta: str) -> None:
    d = router.route(RouteInput("a", "22", "roads", municipality=meta, text=TEXT))
    assert (d.municipality, d.authority_id, d.level) == (None, "22-mintrans", "region_category")


@pytest.mark.parametrize(
    "address",
    [
        "Тальменский район, с. Луговое",
        "Алтайский край, Тальменский муниципальный округ, ул. Центральная, 5",
        "р.п. Тальменка, ул. Ленина, 5",
        "ул. Ленина, 5, с. Луговое",
        "в Тальменском районе",
    ],
)
def test_unlisted_place_in_the_address_goes_to_the_region(router: Router, address: str) -> None:
    d = router.route(RouteInput("a", "22", "roads", address=address,
                                subject="Дорога до Барнаула", text=TEXT))
    assert (d.municipality, d.authority_id, d.level) == (None, "22-mintrans", "region_category")


@pytest.mark.parametrize(
    ("meta", "address", "expected"),
    [
        ("с. Сростки", None, "biyskiy-rayon"),
        ("г. Бийск", None, "biysk"),
        ("01705000", None, "biysk"),
        ("Бийский муниципальный район", None, "biyskiy-rayon"),
        ("с. Весёлый Яр", None, "rubtsovskiy-rayon"),
        (None, "Бийский район, с. Сростки, ул. Ленина, 1", "biyskiy-rayon"),
        (None, "в Бийске, ул. Мира, 3", "biysk"),
        (None, "Бийского района, с. Сростки", "biyskiy-rayon"),
        # A city district with the listed city in the same field: the city.
        (None, "ул. Попова, 5, Индустриальный район, г. Барнаул", "barnaul"),
        (None, "г. Барнаул, Октябрьский район, ул. Ленина, 5", "barnaul"),
    ],
)
def test_listed_places_still_win(
    router: Router, meta: str | None, address: str | None, expected: str
) -> None:
    d = router.route(RouteInput("a", "22", "roads", municipality=meta, address=address,
                                text="Ездили в Рубцовск"))
    assert d.municipality == expected


@pytest.mark.parametrize(
    ("meta", "address"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Алтайский край", None),
        (None, "ул. Центральная, 5"),
        (None, "ул. Ленина, д. 5, кв. 3"),
        (None, "ул. Мира, 7, вход с торца"),
        (None, "п. 3 договора"),
    ],
)
def test_no_place_still_falls_through_to_the_text(
    demo_rules: RoutingRules, meta: str | None, address: str | None
) -> None:
    appeal = RouteInput("a", "22", "roads", municipality=meta, address=address,
                        text="Яма у дома, г. Бийск")
    assert detect_municipality(demo_rules.regions["22"], appeal) == "biysk"


def test_an_oktmo_code_of_no_declared_municipality_still_allows_one_without_a_code(
    demo_rules: RoutingRules,
) -> None:
    # The rules list Бийский район without an OKTMO code, so a code no declared code covers
    # may be one of its villages; it does rule out Barnaul, whose declared code differs.
    region = demo_rules.regions["22"]
    assert region.municipalities["biyskiy-rayon"].oktmo is None
    in_srostki = RouteInput("a", "22", "roads", municipality="01604419101",
                            text="Дорога в Сростках разбита")
    assert detect_municipality(region, in_srostki) == "biyskiy-rayon"
    to_barnaul = RouteInput("a", "22", "roads", municipality="01604419101", text=TEXT)
    assert detect_municipality(region, to_barnaul) is None


def test_the_gazetteer_reports_an_unlisted_place_only_in_place_fields(
    demo_rules: RoutingRules,
) -> None:
    gaz = demo_rules.regions["22"].gazetteer
    assert gaz.lookup("р.п. Тальменка", place_field=True) is UNLISTED_DISTRICT
    assert gaz.lookup("Тальменский район", place_field=True) is UNLISTED_DISTRICT
    # Free text keeps its reading: a village someone mentions is not where the problem is.
    assert gaz.lookup("Ездил к сестре в с. Луговое") is None
    assert gaz.lookup("Тальменский район, с. Луговое, ул. Бийская, 3", place_field=True) is (
        UNLISTED_DISTRICT
    )
    assert resolve_municipality(demo_rules.regions["22"], "р.п. Тальменка") is None


@pytest.mark.parametrize(
    ("meta", "address"),
    [
        (None, "Индустриальный район, ул. Попова, 5"),
        (None, "Железнодорожный р-н, ул. Мало-Тобольская, 1"),
        (None, "в Ленинском районе, ул. Юрина, 3"),
        (None, "Октябрьский район, пр. Ленина, 5"),
        (None, "Центральный район, ул. Мира, 1"),
        (None, "р.п. Южный, ул. Чайковского, 3"),
        (None, "с. Власиха, ул. Мира, 1"),
        (None, "пос. Новосиликатный, ул. Весенняя, 2"),
        (None, "пос. Научный Городок, 10"),
        ("Индустриальный район", None),
        ("рп Южный", None),
        ("Власиха", None),
    ],
)
def test_barnaul_districts_and_settlements_are_barnaul(
    router: Router, meta: str | None, address: str | None
) -> None:
    # An inner district or a settlement of the Barnaul city okrug without the city's name
    # was an unlisted place: the appeal went to the regional ministry, not the city.
    d = router.route(RouteInput("a", "22", "roads", municipality=meta, address=address,
                                text="Яма на дороге, не проехать"))
    assert (d.municipality, d.authority_id) == ("barnaul", "22-barnaul-kdht")


@pytest.mark.parametrize(
    "text",
    [
        "в центральном районе Бийска прорвало трубу",  # downtown, not Barnaul's district
        "на южной окраине Бийска прорвало трубу",
        "научный городок при университете, Бийск",
    ],
)
def test_ordinary_words_among_barnaul_names_do_not_pick_barnaul(
    demo_rules: RoutingRules, text: str
) -> None:
    appeal = RouteInput("a", "22", "roads", text=text)
    assert detect_municipality(demo_rules.regions["22"], appeal) == "biysk"
