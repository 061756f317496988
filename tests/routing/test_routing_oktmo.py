"""OKTMO codes in intake metadata (routing review, D7).

The demo rules gave Камень-на-Оби (whose municipality is the Каменский район) the town's code
01616101, so the district's own code 01616000, and the codes of its villages, were codes no
listed municipality covered. A district's or okrug's code («…000») covers every code inside
it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, RoutingRules, RulesError, load_rules
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


# An unquoted code in the rules file (routing review, D8): YAML 1.1 reads 01701000 as the octal
# number 492032, and the error quoted '492032', a value nobody wrote, at «municipalities[0]».

_FILE = """\
region: "54"
triage: 54-cur
authorities:
  - id: 54-government
    name: Правительство Новосибирской области
    kind: government
  - id: 54-cur
    name: ЦУР Новосибирской области
    kind: triage
    parent: 54-government
municipalities:
  - id: first
    name: Первый
  - id: novosibirsk
    name: Новосибирск
    oktmo: {oktmo}
"""


@pytest.mark.parametrize(("oktmo", "expected"), [
    ("01701000", "municipalities[1](novosibirsk).oktmo: written as a number, which YAML read "
                 "as 492032 (with a leading 0 it is octal"),
    ("5070", "municipalities[1](novosibirsk).oktmo: written as a number, which YAML read as "
             "5070"),
    ('"5070"', "municipalities[1](novosibirsk).oktmo: '5070': expected 8 or 11 digits"),
])
def test_a_bad_oktmo_code_says_what_was_written_and_where(
    tmp_path: Path, oktmo: str, expected: str
) -> None:
    path = tmp_path / "54.yaml"
    path.write_text(_FILE.format(oktmo=oktmo), encoding="utf-8")
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    assert expected in str(exc.value)
    assert "'492032'" not in str(exc.value)


def test_an_unquoted_code_without_a_leading_zero_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "54.yaml"
    path.write_text(_FILE.format(oktmo="50701000"), encoding="utf-8")
    assert load_rules(path).regions["54"].municipalities["novosibirsk"].oktmo == "50701000"
