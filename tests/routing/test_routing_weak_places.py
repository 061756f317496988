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


# «на Алейской» is a street of Barnaul named without «улица» (routing review, D4): a bare
# adjective (no noun it qualifies) is weak evidence, and after «на»/«по» a bare feminine one
# is a street.


@pytest.mark.parametrize(("kw", "expected"), [
    ({"text": "На Алейской в Барнауле прорвало трубу, нет воды"}, "barnaul"),
    ({"subject": "Нет воды на Алейской", "text": "г. Барнаул, дом 5"}, "barnaul"),
    ({"text": "по Бийской третий день нет воды, Новоалтайск"}, "novoaltaysk"),
    ({"text": "Возле Алейской нет воды, г. Барнаул"}, "barnaul"),
    ({"text": "Нет воды на Алейской"}, None),
    # A noun it qualifies makes it the town's: the institution names the place.
    ({"text": "на Алейской ЦРБ нет воды, ездим в Барнаул"}, "aleysk"),
    ({"text": "В Алейской центральной районной больнице нет воды, ездим в Барнаул"}, "aleysk"),
    ({"text": "на Бийской трассе прорвало трубу, Барнаул"}, "biysk"),
    ({"text": "Заринская администрация не отвечает, я из Барнаула"}, "zarinsk"),
    ({"text": "в Алейском нет воды"}, "aleysk"),
])
def test_a_bare_town_adjective_gives_way_to_a_town_and_after_na_is_a_street(
    router: Router, kw: dict[str, str], expected: str | None
) -> None:
    assert municipality(router, **kw) == expected
