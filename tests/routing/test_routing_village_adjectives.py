"""A village named like a town's adjective is not that town (routing review, D2).

«с. Славгородское» (Немецкий национальный район) read as «славгородское», an adjective form of
Славгород, and the appeal went to Slavgorod's housing department. An adjective-only match
right after a settlement word or its dotted abbreviation names a settlement of that name:
unlisted in a place field, no place in free text; and in a place field an explicit
«<adjective> (национальный) район» before an adjective-only match rules the town out.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router, RoutingRules
from workers.routing.gazetteer import UNLISTED_DISTRICT

ADDRESS = "Алтайский край, Немецкий национальный район, с. Славгородское, ул. Ленина, 5"


def route(router: Router, **kw: str) -> tuple[str, str, str | None]:
    d = router.route(RouteInput("a", "22", "housing_utilities", text=kw.pop("text", "нет воды"),
                                **kw))
    return d.authority_id, d.level, d.municipality


@pytest.mark.parametrize("kw", [
    {"address": ADDRESS},
    {"address": "Немецкий национальный район, Славгородское, ул. Ленина, 5"},
    {"text": "в селе Славгородском нет воды"},
    {"text": "с. Славгородское, нет воды второй день"},
    {"text": "пос. Заринский, нет воды"},
    {"municipality": "с. Славгородское"},
    {"municipality": "село Славгородское"},
])
def test_a_village_named_like_a_towns_adjective_is_not_the_town(
    router: Router, kw: dict[str, str]
) -> None:
    assert route(router, **kw) == ("22-minzhkh", "region_category", None)


def test_in_a_place_field_it_is_an_unlisted_place(demo_rules: RoutingRules) -> None:
    gaz = demo_rules.regions["22"].gazetteer
    assert gaz.lookup(ADDRESS, place_field=True) is UNLISTED_DISTRICT
    assert gaz.lookup("в селе Славгородском нет воды") is None


@pytest.mark.parametrize(("kw", "expected"), [
    # The town itself, its adjective on a noun, a listed village after «с.»: unchanged.
    ({"text": "в г. Славгород нет воды"}, "slavgorod"),
    ({"text": "Славгородская администрация не чинит трубу"}, "slavgorod"),
    ({"text": "в селе Бобровка нет воды"}, "pervomayskiy-rayon"),
    ({"address": "с. Бобровка, ул. Ленина, 1"}, "pervomayskiy-rayon"),
    # «с» without a dot is a preposition.
    ({"text": "вход с Славгородской администрации не работает"}, "slavgorod"),
])
def test_towns_and_listed_villages_still_match(
    router: Router, kw: dict[str, str], expected: str
) -> None:
    assert route(router, **kw)[2] == expected
