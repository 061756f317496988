"""A region's subcategory route is not shadowed by every municipality (routing review, D6).

The region routes capital repair (``housing_utilities/overhaul``) to the krai-wide
capital-repair fund and management companies to the housing inspection, but every
municipality's housing committee, or its administration, came first: capital repair in
Barnaul went to Barnaul's housing committee, in «с. Бобровка» to the district
administration, which would only forward it. A subcategory entry is the narrower rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, load_rules


def route(router: Router, text: str, sub: str | None,
          category: str = "housing_utilities") -> tuple[str, str, str | None]:
    d = router.route(RouteInput("a", "22", category, subcategory=sub, text=text))
    return d.authority_id, d.level, d.municipality


@pytest.mark.parametrize(("text", "sub", "expected"), [
    ("Барнаул, капремонт крыши не сделан", "overhaul",
     ("22-fond-kr", "region_category", "barnaul")),
    ("с. Бобровка, капремонт крыши", "overhaul",
     ("22-fond-kr", "region_category", "pervomayskiy-rayon")),
    ("Бийск, управляющая компания не чистит подъезд", "management_company",
     ("22-gzhi", "region_category", "biysk")),
    # No subcategory, or one the region does not route: the municipality's table as before.
    ("Барнаул, нет воды", None, ("22-barnaul-kzhkh", "municipality_category", "barnaul")),
    ("Барнаул, нет воды", "water", ("22-barnaul-kzhkh", "municipality_category", "barnaul")),
    ("с. Бобровка, нет воды", None,
     ("22-pervomayskiy-rayon-admin", "municipality_default", "pervomayskiy-rayon")),
])
def test_a_region_subcategory_route_beats_the_municipalitys_category_and_default(
    router: Router, text: str, sub: str | None, expected: tuple[str, str, str | None]
) -> None:
    assert route(router, text, sub) == expected


def test_a_municipalitys_own_subcategory_entry_still_comes_first(
    tmp_path: Path, demo_yaml: str
) -> None:
    old = "      housing_utilities: 22-barnaul-kzhkh\n"
    new = ("      housing_utilities:\n        default: 22-barnaul-kzhkh\n"
           "        subcategories: {overhaul: 22-barnaul-kzhkh}\n")
    assert old in demo_yaml
    path = tmp_path / "22.yaml"
    path.write_text(demo_yaml.replace(old, new, 1), encoding="utf-8")
    router = Router(load_rules(path))
    assert route(router, "Барнаул, капремонт крыши", "overhaul") == (
        "22-barnaul-kzhkh", "municipality_category", "barnaul")
    assert route(router, "Бийск, капремонт крыши", "overhaul") == (
        "22-fond-kr", "region_category", "biysk")
