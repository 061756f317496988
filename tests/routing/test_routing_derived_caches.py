"""What the router derives from the rules (the authorities' name index) belongs to one rules
object: rules built from others (a reload, ``dataclasses.replace``) never answer from the
index of the rules before, and two rules in use at once keep their own answers."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from workers.routing import RoutingRules
from workers.routing.router import identify_authority


def _renamed(rules: RoutingRules, authority_id: str, name: str) -> RoutingRules:
    renamed = dataclasses.replace(rules.authorities[authority_id], name=name, aliases=())
    return dataclasses.replace(rules, authorities={**rules.authorities, authority_id: renamed})


def test_rules_made_from_others_have_their_own_name_index(demo_rules: RoutingRules) -> None:
    assert identify_authority(demo_rules, "Фонда капремонта Алтайского края", "22") == (
        "22-fond-kr")  # the index of demo_rules is built now
    reloaded = _renamed(demo_rules, "22-fond-kr", "Региональный оператор капитального ремонта")
    for _ in range(2):  # interleaved: neither evicts nor answers for the other
        assert identify_authority(reloaded, "Регионального оператора капитального ремонта",
                                  "22") == "22-fond-kr"
        assert identify_authority(reloaded, "Фонда капремонта Алтайского края", "22") is None
        assert identify_authority(demo_rules, "Фонда капремонта Алтайского края", "22") == (
            "22-fond-kr")
        assert identify_authority(demo_rules, "Регионального оператора капитального ремонта",
                                  "22") is None


def test_a_derived_value_is_built_once_and_shared_by_threads(demo_rules: RoutingRules) -> None:
    rules = dataclasses.replace(demo_rules)
    built: list[object] = []

    def build(r: RoutingRules) -> object:
        value = object()
        built.append(value)
        return value

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: rules.derived("test.value", build), range(16)))
    assert len({id(v) for v in got}) == 1 and got[0] in built
    assert rules.derived("test.value", build) is got[0]
    assert dataclasses.replace(rules).derived("test.value", build) is not got[0]
