"""Router decisions: every fallback level, the complaint rule, redirects, unknown regions."""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType

import pytest

from schemas.records import CATEGORIES
from workers.routing import (
    RedirectRejected,
    RouteInput,
    Router,
    RoutingRules,
    UnknownAuthority,
)


def route(router: Router, category: str, text: str = "", **kw: object) -> tuple[str, str]:
    d = router.route(RouteInput("a-1", kw.pop("region", "22"), category, text=text, **kw))  # type: ignore[arg-type]
    return d.authority_id, d.level


def test_municipality_category(router: Router) -> None:
    assert route(router, "housing_utilities", "в Бийске нет горячей воды") == (
        "22-biysk-ugh",
        "municipality_category",
    )
    assert route(router, "roads", "яма на ул. Попова, г. Барнаул") == (
        "22-barnaul-kdht",
        "municipality_category",
    )
    assert route(router, "landscaping", "", municipality="barnaul") == (
        "22-barnaul-kblag",
        "municipality_category",
    )


def test_municipality_default(router: Router) -> None:
    # Yarovoye has no departments: its administration takes municipal matters.
    assert route(router, "roads", "в Яровом не чистят дороги") == (
        "22-yarovoye-admin",
        "municipality_default",
    )
    assert route(router, "other", "", municipality="aleysk") == (
        "22-aleysk-admin",
        "municipality_default",
    )


def test_regional_competence_skips_municipality_default(router: Router) -> None:
    # Hospitals are run by the region: not the city hall of Yarovoye.
    assert route(router, "healthcare", "в Яровом нет терапевта") == (
        "22-minzdrav",
        "region_category",
    )


def test_region_category_without_municipality(router: Router) -> None:
    assert route(router, "roads", "трасса разбита") == ("22-mintrans", "region_category")
    assert route(router, "education", "школа") == ("22-minobr", "region_category")


def test_subcategory_routes(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "safety", subcategory="stray_dogs", text="собаки"))
    assert (d.authority_id, d.level, d.municipality) == ("22-vet", "region_category", None)
    # The region's subcategory entry comes before a municipality's administration (its
    # category default, too): it is the narrower rule. A municipality that handles stray
    # dogs itself says so with its own subcategory entry (test_routing_subcategory_order).
    d = router.route(
        RouteInput("a", "22", "safety", subcategory="stray_dogs", text="собаки в Заринске")
    )
    assert (d.authority_id, d.level) == ("22-vet", "region_category")
    # Without a subcategory the administration still comes before the regional table.
    d = router.route(RouteInput("a", "22", "safety", text="собаки в Заринске"))
    assert (d.authority_id, d.level) == ("22-zarinsk-admin", "municipality_default")
    d = router.route(RouteInput("a", "22", "housing_utilities", subcategory="overhaul"))
    assert d.authority_id == "22-fond-kr"
    # An unknown subcategory falls back to the category default.
    d = router.route(RouteInput("a", "22", "housing_utilities", subcategory="nonexistent"))
    assert d.authority_id == "22-minzhkh"


def test_region_triage(router: Router) -> None:
    assert route(router, "other", "непонятно что") == ("22-cur", "region_triage")
    # Unknown category code: a human looks, never a guess.
    assert route(router, "weather", "в Барнауле") == ("22-cur", "region_triage")


def test_region_code_forms(router: Router) -> None:
    assert route(router, "roads", region="022")[0] == "22-mintrans"
    assert route(router, "roads", region="122")[0] == "22-mintrans"


@pytest.mark.parametrize("region", ["77", "99", "", "abc", "Алтай"])
def test_unknown_region_goes_to_default_desk_as_unroutable(router: Router, region: str) -> None:
    d = router.route(RouteInput("a", region, "roads", text="Москва, яма"))
    assert (d.authority_id, d.level) == ("22-cur", "unroutable")
    assert d.region_code == ("77" if region in {"77", "99"} else None)


def test_metadata_wins_over_text(router: Router) -> None:
    d = router.route(
        RouteInput("a", "22", "housing_utilities", municipality="Бийск", text="я из Барнаула")
    )
    assert d.municipality == "biysk"


def test_metadata_oktmo(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "housing_utilities", municipality="01701000001"))
    assert (d.municipality, d.authority_id) == ("barnaul", "22-barnaul-kzhkh")
    d = router.route(RouteInput("a", "22", "housing_utilities", municipality="01616101"))
    assert d.municipality == "kamen-na-obi"


def test_address_wins_over_text(router: Router) -> None:
    d = router.route(
        RouteInput(
            "a",
            "22",
            "housing_utilities",
            address="Алтайский край, г. Новоалтайск, ул. Октябрьская, 10",
            text="раньше жил в Барнауле, там такого не было",
        )
    )
    assert d.municipality == "novoaltaysk"


def test_decision_fields(router: Router, demo_rules: RoutingRules) -> None:
    d = router.route(RouteInput("a-42", "22", "housing_utilities", text="в Барнауле"))
    assert d.appeal_id == "a-42"
    assert d.authority_name == "Комитет жилищно-коммунального хозяйства города Барнаула"
    assert d.parent_authority_id == "22-barnaul-admin"  # its administration, not a ministry
    assert d.rule_version == demo_rules.version
    assert re.fullmatch(r"22-altai-krai/2025-06-01\.1\+[0-9a-f]{12}", d.rule_version)
    assert d.timezone == "Asia/Barnaul"
    assert d.to_dict()["authority_id"] == "22-barnaul-kzhkh"


# ------------------------------------------------------------------ complaint rule


def test_complaint_about_target_goes_to_parent(router: Router) -> None:
    d = router.route(
        RouteInput(
            "a",
            "22",
            "housing_utilities",
            text="в Бийске управление ЖКХ не отвечает",
            complaint_about="22-biysk-ugh",
        )
    )
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-biysk-admin",
        "complaint_parent",
        "22-biysk-ugh",
    )


def test_complaint_about_parent_of_target_goes_further_up(router: Router) -> None:
    # Target would be the Biysk department, whose parent is the city administration the
    # citizen complains about: neither may judge the complaint.
    d = router.route(
        RouteInput(
            "a", "22", "housing_utilities", text="в Бийске", complaint_about="22-biysk-admin"
        )
    )
    assert (d.authority_id, d.level) == ("22-government", "complaint_parent")
    # Ministry complained about; the regional fund under it is also excluded.
    d = router.route(
        RouteInput(
            "a", "22", "housing_utilities", subcategory="overhaul", complaint_about="22-minzhkh"
        )
    )
    assert (d.authority_id, d.level) == ("22-government", "complaint_parent")
    # A city committee is not below the regional ministry: it may judge a complaint about it.
    d = router.route(
        RouteInput("a", "22", "housing_utilities", text="в Барнауле", complaint_about="22-minzhkh")
    )
    assert (d.authority_id, d.level) == ("22-barnaul-kzhkh", "municipality_category")


def test_complaint_about_root_goes_to_triage_desk(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "roads", complaint_about="22-government"))
    # The desk is below the government, no parent of it: its own level (routing fixes, D1).
    assert (d.authority_id, d.level) == ("22-cur", "complaint_root")


def test_complaint_about_triage_desk(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "other", complaint_about="22-cur"))
    assert d.authority_id == "22-government"


def test_complaint_about_unrelated_body_routes_normally(router: Router) -> None:
    d = router.route(
        RouteInput("a", "22", "roads", text="в Барнауле", complaint_about="22-minzdrav")
    )
    assert (d.authority_id, d.level) == ("22-barnaul-kdht", "municipality_category")
    # A body the rules cannot identify could be any target: the triage desk reads it
    # (tests/routing/test_routing_complaint_target.py).
    d = router.route(RouteInput("a", "22", "roads", complaint_about="22-no-such-body"))
    assert (d.authority_id, d.level) == ("22-cur", "complaint_unidentified")


@pytest.mark.parametrize("category", CATEGORIES)
def test_complaint_never_routed_to_its_subject(
    router: Router, demo_rules: RoutingRules, category: str
) -> None:
    for complained in demo_rules.authorities:
        for text in ("", "в Барнауле", "в Бийске", "Яровое"):
            d = router.route(RouteInput("a", "22", category, text=text, complaint_about=complained))
            assert d.authority_id != complained
            assert complained not in demo_rules.ancestors(d.authority_id) or d.authority_id in {
                "22-cur"
            }


# ------------------------------------------------------------------ redirect


def test_redirect_valid(router: Router) -> None:
    d = router.redirect("a-7", "22-biysk-uobr")
    assert (d.authority_id, d.level, d.municipality) == ("22-biysk-uobr", "redirect", "biysk")
    assert d.parent_authority_id == "22-biysk-admin"
    assert d.rule_version == router.rules.version


def test_redirect_unknown_target(router: Router) -> None:
    with pytest.raises(UnknownAuthority, match="22-nowhere"):
        router.redirect("a-7", "22-nowhere")


def test_redirect_to_complained_body_rejected(router: Router) -> None:
    with pytest.raises(RedirectRejected, match="59-FZ"):
        router.redirect("a-7", "22-minzhkh", complaint_about="22-minzhkh")


def test_redirect_to_the_body_that_holds_the_appeal_rejected(router: Router) -> None:
    """No redirect at all: taken as one, it restarted that body's clock and cleared its
    breach (session-9 DESIGN review)."""
    with pytest.raises(RedirectRejected, match="already holds it"):
        router.redirect("a-7", "22-minzhkh", from_authority_id="22-minzhkh")
    assert router.redirect("a-7", "22-minzhkh", from_authority_id="22-mintrans").authority_id \
        == "22-minzhkh"


@pytest.mark.parametrize(
    ("address", "text"),
    [
        ("ул. Бийская, д. 12, г. Барнаул", "Яма на дороге у дома"),
        ("Каменская ул., 3, Барнаул", "Яма на дороге у дома"),
        (None, "Я, Заринский Иван Петрович, житель г. Барнаула. Яма на дороге у дома"),
    ],
)
def test_street_or_surname_does_not_override_the_city(
    router: Router, address: str | None, text: str
) -> None:
    d = router.route(RouteInput("a-1", "22", "roads", text=text, address=address))
    assert (d.municipality, d.authority_id) == ("barnaul", "22-barnaul-kdht")


def test_router_refuses_a_root_triage_desk(router: Router, demo_rules: RoutingRules) -> None:
    # Rules built around load_rules: a root triage desk would receive complaints about itself.
    region = dataclasses.replace(demo_rules.regions["22"], triage="22-government")
    bad = dataclasses.replace(demo_rules, regions=MappingProxyType({"22": region}))
    with pytest.raises(ValueError, match="triage desk '22-government' must be"):
        Router(bad)
    with pytest.raises(ValueError, match="triage desk"):
        router.swap(bad)
    assert router.rules is demo_rules
    d = router.route(RouteInput("a", "22", "roads", complaint_about="22-government"))
    assert d.authority_id == "22-cur"


@pytest.mark.parametrize("value", ["Заринский р-н", "Заринский район", "Алейский район"])
def test_metadata_naming_an_unknown_district_falls_back_to_the_region(
    router: Router, value: str
) -> None:
    d = router.route(RouteInput("a", "22", "housing_utilities", municipality=value))
    assert (d.municipality, d.authority_id, d.level) == (None, "22-minzhkh", "region_category")


def test_redirect_below_the_complained_body_rejected(router: Router) -> None:
    with pytest.raises(RedirectRejected, match=r"a body below '22-biysk-admin'.*59-FZ"):
        router.redirect(
            "a-7", "22-biysk-ugh", complaint_about="22-biysk-admin",
            from_authority_id="22-government",
        )
    # Above or beside the body complained about is fine.
    assert router.redirect(
        "a-7", "22-government", complaint_about="22-biysk-admin"
    ).authority_id == "22-government"


def test_redirect_refuses_exactly_what_route_refuses(
    router: Router, demo_rules: RoutingRules
) -> None:
    """Same rule in both: redirect never sends a complaint where route() never would."""
    for complained in demo_rules.authorities:
        forbidden = {complained} | {
            a for a in demo_rules.authorities if complained in demo_rules.ancestors(a)
        }
        for target in demo_rules.authorities:
            if target in forbidden:
                with pytest.raises(RedirectRejected, match="59-FZ"):
                    router.redirect("a", target, complaint_about=complained)
            else:
                assert router.redirect("a", target, complaint_about=complained).authority_id \
                    == target
