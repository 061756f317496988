"""Municipality detection from free text and addresses (morphological forms)."""

from __future__ import annotations

import time

import pytest

from workers.routing import RoutingRules
from workers.routing.gazetteer import UNLISTED_DISTRICT, Gazetteer, GazetteerConflict


@pytest.fixture(scope="module")
def gaz(demo_rules: RoutingRules) -> Gazetteer:
    return demo_rules.regions["22"].gazetteer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("в Бийске прорвало трубу", "biysk"),
        ("житель Бийского района", "biyskiy-rayon"),
        ("в Бийском районе, с. Сростки", "biyskiy-rayon"),
        ("Бийский р-н, дорога", "biyskiy-rayon"),
        ("г. Барнаул, ул. Ленина", "barnaul"),
        ("г.Барнаул", "barnaul"),
        ("БАРНАУЛ ул попова", "barnaul"),
        ("Барнаульский водоканал опять", "barnaul"),
        ("барнаульской администрации", "barnaul"),
        ("приехал из Новоалтайска", "novoaltaysk"),
        ("новоалтайские дороги", "novoaltaysk"),
        ("город Камень-на-Оби", "kamen-na-obi"),
        ("в Камне-на-Оби нет воды", "kamen-na-obi"),
        ("в камне на оби", "kamen-na-obi"),
        ("в Белокурихе шумят", "belokurikha"),
        ("белокурихинский курорт", "belokurikha"),
        ("Рубцовск", "rubtsovsk"),
        ("в Рубцовском районе", "rubtsovskiy-rayon"),
        ("в Весёлом Яре", "rubtsovskiy-rayon"),
        ("в веселом яре", "rubtsovskiy-rayon"),
        ("под Заринском", "zarinsk"),
        ("Славгороде", "slavgorod"),
        ("в Алейске", "aleysk"),
        ("в Яровом", "yarovoye"),
        ("г. яровое", "yarovoye"),
        ("в Повалихе", "pervomayskiy-rayon"),
        ("Первомайский район", "pervomayskiy-rayon"),
    ],
)
def test_forms(gaz: Gazetteer, text: str, expected: str) -> None:
    assert gaz.find(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "посеяли ярового ячменя",  # ambiguous lower-case word, not the town
        "камень на дороге",  # a stone, not Kamen-na-Obi
        "ул. Первомайская",  # street, not the district
        "Москва, Тверская",
        "барнаулка",  # river, not the city (different lexeme)
    ],
)
def test_no_false_positives(gaz: Gazetteer, text: str) -> None:
    assert gaz.find(text) is None


def test_earliest_mention_wins(gaz: Gazetteer) -> None:
    assert gaz.find("живу в Новоалтайске, работаю в Барнауле") == "novoaltaysk"


def test_metadata_mode_accepts_lowercase_ambiguous(gaz: Gazetteer) -> None:
    assert gaz.find("яровое", strict=False) == "yarovoye"


def test_conflicting_forms_rejected() -> None:
    with pytest.raises(GazetteerConflict, match="'бийск'"):
        Gazetteer.build([("a", {"names": ["Бийск"]}), ("b", {"forms": ["Бийск"]})])


def test_fast(gaz: Gazetteer) -> None:
    text = (
        "Здравствуйте! Пишу уже третий раз: во дворе дома по улице Ленина не вывозят мусор, "
        "контейнеры переполнены, управляющая компания не отвечает. Прошу принять меры. "
    ) * 3 + "г. Славгород"
    n = 3000
    start = time.perf_counter()
    for _ in range(n):
        assert gaz.find(text) == "slavgorod"
    rate = n / (time.perf_counter() - start)
    assert rate > 2000, f"{rate:.0f} texts/s"


@pytest.mark.parametrize(
    "text",
    [
        "ул. Бийская, д. 12",
        "улица Алейская 5",
        "на улице Бийской",
        "Каменская ул., 3",
        "Бийский тракт, 40",
        "пр-т Новоалтайский",
        "пер. Заринский",
        "Славгородская площадь",
        "мкр Барнаульский",
        "Я, Заринский Иван Петрович, пишу вам",
        "Заринская Мария Ивановна",
        "заявитель Алейский И. П.",
        "Иван Петрович Заринский",
    ],
)
def test_adjective_in_street_or_person_name_is_not_a_place(gaz: Gazetteer, text: str) -> None:
    assert gaz.find(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ул. Бийская, д. 12, г. Барнаул", "barnaul"),
        ("ул. Алейская, д. 5, Барнаул", "barnaul"),
        ("Каменская ул., 3, Барнаул", "barnaul"),
        ("Я, Заринский Иван Петрович, житель г. Барнаула", "barnaul"),
        ("На улице Бийской в Барнауле", "barnaul"),
        # No street word, but a house number: an address.
        ("Бийская, 12, г. Барнаул", "barnaul"),
        ("Алейская 5, Барнаул", "barnaul"),
        # Otherwise the earliest mention wins, an adjective like a name: the institution or
        # the thing complained about names the place, a later town is where people travel.
        ("новоалтайские дороги, а живу в Барнауле", "novoaltaysk"),
        ("В Алейской ЦРБ нет узких специалистов, приходится ездить в Барнаул", "aleysk"),
        ("Рубцовская горбольница отправила на МРТ в Барнаул", "rubtsovsk"),
        # A full street word ending a sentence does not make the next adjective a street.
        ("Нет проезда. Заринская администрация молчит", "zarinsk"),
        ("Невозможно выйти на улицу. Бийская администрация бездействует.", "biysk"),
        # An adjective still counts when it is the only mention, even next to a street.
        ("Новоалтайская ТЭЦ, ул. Ленина", "novoaltaysk"),
        ("Бийская ул., Барнаульский водоканал", "barnaul"),
    ],
)
def test_earliest_mention_wins_skipping_streets_and_people(gaz: Gazetteer, text: str,
                                                           expected: str) -> None:
    assert gaz.find(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # A district the rules don't know: no municipality (regional level), never the city.
        "Заринский район, село Голуха, нет воды",
        "в Заринском районе нет воды",
        "жителям Заринского р-на",
        "Заринского района",
        "656000, Алтайский край, Заринский район, с. Комарское",
        "Алтайский край, Алейский район, с. Дружба",
        "в Алейском районе",
        "Славгородский район",
        "Заринский муниципальный округ",
        # Nor a later town in the same text (where people travel to).
        "в Заринском районе нет врача, ездим в Барнаул",
    ],
)
def test_unknown_district_is_not_the_city_of_that_name(gaz: Gazetteer, text: str) -> None:
    assert gaz.find(text) is None
    assert gaz.find(text, strict=False) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Заринск, Заринский район", "zarinsk"),  # the city is named first
        ("под Заринском", "zarinsk"),
        ("в Бийске, район вокзала", "biysk"),  # a noun form, not «Бийский район»
        ("Каменский район, с. Попереченское", "kamen-na-obi"),  # the Kamensky district
        ("ул. Заринская, район рынка, Барнаул", "barnaul"),
        ("Рубцовский район", "rubtsovskiy-rayon"),
    ],
)
def test_district_rule_keeps_cities_and_known_districts(
    gaz: Gazetteer, text: str, expected: str
) -> None:
    assert gaz.find(text) == expected


def test_plural_only_village_genitive(gaz: Gazetteer) -> None:
    assert gaz.find("из Сросток") == "biyskiy-rayon"  # pymorphy3 guesses «сростков»
    assert gaz.find("в Сростках") == "biyskiy-rayon"


@pytest.mark.parametrize(
    "text",
    [
        "На столбе висят оголённые сростки проводов, в Барнауле на ул. Попова 5",
        "Один сросток провода лежит на земле, в Барнауле",
        "сростки кабеля в подъезде, Барнаул",
    ],
)
def test_splices_are_not_the_village_srostki(gaz: Gazetteer, text: str) -> None:
    # «сростки»/«сросток» (wire splices) read as the village Сростки sent Barnaul appeals
    # about bare wires to the Бийский район.
    assert gaz.find(text) == "barnaul"


def test_ambiguous_names_flag_only_the_listed_names() -> None:
    gaz = Gazetteer.build(
        [
            (
                "d",
                {
                    "names": ["Сростки", "Бобровка"],
                    "forms": ["Сросток"],
                    "district_of": ["бийский"],
                    "ambiguous_names": ["Сростки", "Сросток"],
                },
            )
        ]
    )
    for text in ("сростки проводов", "сросток", "сростках", "СРОСТКИ ПРОВОДОВ"):
        assert gaz.find(text) is None, text
    for text in ("в Сростках", "из Сросток", "с. Сростки", "в бобровке", "бийского района"):
        assert gaz.find(text) == "d", text
    assert gaz.find("сростки", strict=False) == "d"  # metadata: the field says so


@pytest.mark.parametrize("text", ["ПОСЕЯЛИ ЯРОВОЕ", "ЯРОВОЕ ПОЛЕ ЗАТОПИЛО", "В ЯРОВОМ КЛИНЕ"])
def test_ambiguous_name_in_capitals_is_not_capitalised(gaz: Gazetteer, text: str) -> None:
    assert gaz.find(text) is None


def test_ambiguous_name_in_capitals_after_city_marker(gaz: Gazetteer) -> None:
    assert gaz.find("В Г. ЯРОВОЕ НЕТ ВОДЫ") == "yarovoye"
    assert gaz.find("ЯРОВОЕ", strict=False) == "yarovoye"  # metadata: the field says so


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("В Бийском и Смоленском районах третий день нет воды", "biyskiy-rayon"),
        ("в Бийском, Смоленском и Алтайском районах", "biyskiy-rayon"),
        ("Бийский, Смоленский районы", "biyskiy-rayon"),
        ("в Бийском районах", "biyskiy-rayon"),
        ("в Смоленском и Бийском районах", "biyskiy-rayon"),  # Смоленский is not listed
        ("в Ленинском и Индустриальном районах", "barnaul"),
        ("в Бийском и Смоленском", "biysk"),  # no district word: the city's adjective
        ("бийские и новые районы", "biysk"),  # plural: districts of the city
    ],
)
def test_coordinated_districts(gaz: Gazetteer, text: str, expected: str) -> None:
    # The adjective check looked at the next token only: «Бийском и Смоленском районах»
    # was the city of Biysk.
    assert gaz.find(text) == expected


def test_coordinated_unlisted_districts_end_the_search(gaz: Gazetteer) -> None:
    assert gaz.lookup("в Заринском и Алейском районах, а ездим в Барнаул") is UNLISTED_DISTRICT
