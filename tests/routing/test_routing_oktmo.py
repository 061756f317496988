"""OKTMO codes in intake metadata (routing review, D7).

The demo rules gave Камень-на-Оби (whose municipality is the Каменский район) the town's code
01616101, so the district's own code 01616000, and the codes of its villages, were codes no
listed municipality covered. A district's or okrug's code («…000») covers every code inside
it.
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router, RoutingRules
from workers.routing.router import resolve_municipality


def test_the_kamensky_district_has_its_districts_code(demo_rules: RoutingRules) -> None:
    assert demo_rules.regions["22"].municipalities["kamen-na-obi"].oktmo == "01616000"


@pytest.mark.parametrize(("code", "expected"), [
    ("01616000", "kamen-na-obi"),     # the district
    ("01616101", "kamen-na-obi"),     # the town's urban settlement
    ("01616101001", "kamen-na-obi"),  # the town
    ("01616404101", "kamen-na-obi"),  # a village of the district
    ("01701000001", "barnaul"),
    ("01701000", "barnaul"),
    ("01647000", None),               # Тальменский район: not listed
    ("01617000", None),               # a neighbouring code, not a prefix of it
])
def test_a_district_code_covers_its_settlements(
    demo_rules: RoutingRules, code: str, expected: str | None
) -> None:
    assert resolve_municipality(demo_rules.regions["22"], code) == expected


def test_routing_by_the_district_code(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "housing_utilities", municipality="01616000",
                                text="в Каменском районе нет воды"))
    assert (d.authority_id, d.level, d.municipality) == (
        "22-kamen-kzhkh", "municipality_category", "kamen-na-obi")
