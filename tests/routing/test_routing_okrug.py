"""«<adjective> округ»: a municipal okrug written short is the district, not the town
(routing review, D5).

Many districts of the krai became municipal okrugs; people write «Рубцовский округ» as often
as «Рубцовский муниципальный округ». Only the full form was a district word, so «Рубцовский
округ, с. Ракиты» went to Rubtsovsk city. «городской округ» is still the town.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router


def municipality(router: Router, **kw: str) -> str | None:
    return router.route(RouteInput("a", "22", "housing_utilities",
                                   text=kw.pop("text", "нет воды"), **kw)).municipality


@pytest.mark.parametrize(("kw", "expected"), [
    ({"text": "Рубцовский округ, с. Ракиты, нет воды"}, "rubtsovskiy-rayon"),
    ({"address": "Алтайский край, Рубцовский округ, с. Ракиты"}, "rubtsovskiy-rayon"),
    ({"municipality": "Рубцовский округ"}, "rubtsovskiy-rayon"),
    ({"text": "в Бийском округе нет воды"}, "biyskiy-rayon"),
    ({"text": "в Бийском и Рубцовском округах нет воды"}, "biyskiy-rayon"),
    # A district the rules do not list: no municipality, never the city of that name.
    ({"text": "в Заринском округе нет воды"}, None),
    ({"address": "Заринский округ, с. Голуха"}, None),
    # «городской округ» is the town.
    ({"text": "Рубцовский городской округ, нет воды"}, "rubtsovsk"),
    ({"text": "в Заринске, округ тут ни при чём"}, "zarinsk"),
])
def test_a_short_municipal_okrug_is_the_district(
    router: Router, kw: dict[str, str], expected: str | None
) -> None:
    assert municipality(router, **kw) == expected
