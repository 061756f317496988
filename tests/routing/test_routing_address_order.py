"""A settlement beats a district named in the same place field, in any order (routing fixes,
D3).

Addresses name the district before the town: «Алтайский край, Рубцовский район, г. Рубцовск»
went to the Рубцовский район administration and «Заринский район, г. Заринск» to no
municipality, while the same address with the town first went to the town: the earliest match
decided.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router


def municipality(router: Router, field: str, value: str) -> str | None:
    appeal = RouteInput("a", "22", "safety", text="бродячие собаки", **{field: value})
    return router.route(appeal).municipality


@pytest.mark.parametrize("field", ["address", "municipality"])
@pytest.mark.parametrize(("parts", "expected"), [
    (("Рубцовский район", "г. Рубцовск"), "rubtsovsk"),
    (("Бийский район", "г. Бийск"), "biysk"),
    (("Заринский район", "г. Заринск"), "zarinsk"),  # the district is not listed
    (("Каменский район", "г. Камень-на-Оби"), "kamen-na-obi"),
    (("Рубцовский район", "Рубцовск"), "rubtsovsk"),  # the town's name without «г.»
    (("Тальменский район", "г. Барнаул"), "barnaul"),
    (("Заринский район", "г. Барнаул"), "barnaul"),
])
def test_the_settlement_wins_over_the_district_in_either_order(
    router: Router, field: str, parts: tuple[str, str], expected: str
) -> None:
    district, town = parts
    for value in (f"Алтайский край, {district}, {town}, ул. Ленина 10",
                  f"Алтайский край, {town}, {district}, ул. Ленина 10"):
        assert municipality(router, field, value) == expected, value


@pytest.mark.parametrize(("value", "expected"), [
    # An unlisted village does not take the place of its listed district...
    ("Бийский район, с. Луговое", "biyskiy-rayon"),
    ("Рубцовский район, с. Веселоярск", "rubtsovskiy-rayon"),
    # ...nor of an unlisted one.
    ("Заринский район, с. Комарское", None),
    # A district alone is still the district.
    ("Алтайский край, Рубцовский район, ул. Ленина 10", "rubtsovskiy-rayon"),
])
def test_a_district_with_no_listed_settlement_still_decides(
    router: Router, value: str, expected: str | None
) -> None:
    assert municipality(router, "address", value) == expected
