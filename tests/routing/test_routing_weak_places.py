"""Weak place evidence gives way to a town named in the same field (routing review, D3).

«Центральный район» is a listed (ambiguous) name of Barnaul's downtown, but every town has a
Центральный район: capitalised, it took «в Центральном районе Бийска» and «Центральный
район, г. Новоалтайск» to Barnaul. Such a name counts only when no other listed place is
named in the same field.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router


def municipality(router: Router, **kw: str) -> str | None:
    return router.route(RouteInput("a", "22", "housing_utilities",
                                   text=kw.pop("text", "нет воды"), **kw)).municipality


@pytest.mark.parametrize(("kw", "expected"), [
    ({"text": "в Центральном районе Бийска нет воды"}, "biysk"),
    ({"text": "Центральный р-н, г. Рубцовск, нет воды"}, "rubtsovsk"),
    ({"address": "Центральный район, г. Новоалтайск, ул. Прудская, 3"}, "novoaltaysk"),
    ({"municipality": "Центральный район, г. Новоалтайск"}, "novoaltaysk"),
    # Alone it still names Barnaul's district, as before.
    ({"text": "в Центральном районе нет воды"}, "barnaul"),
    ({"address": "Центральный район, ул. Мира, 1"}, "barnaul"),
])
def test_a_downtown_district_name_gives_way_to_a_town_in_the_same_field(
    router: Router, kw: dict[str, str], expected: str
) -> None:
    assert municipality(router, **kw) == expected
