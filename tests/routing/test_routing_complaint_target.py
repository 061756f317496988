"""The body a complaint is about, as the citizen or an operator wrote it (review 12, defect 5).

DESIGN §2: «a complaint must never be routed to the body it complains about». The field is
filled by hand, so the body is identified by its id in any case or by its full name; a body
that cannot be identified could be any target routing picks, so the triage desk reads it.
"""

from __future__ import annotations

import pytest

from workers.routing import RedirectRejected, RouteInput, Router, RoutingRules
from workers.routing.model import RouteLevel

COMPLAINT = "Жалоба на администрацию города: не отвечают на обращения"


@pytest.mark.parametrize(
    "about",
    ["22-Barnaul-Admin", "22-BARNAUL-ADMIN", " 22-barnaul-admin ", "Администрация города Барнаула",
     "администрация города барнаула", "«Администрация города Барнаула»"],
)
def test_complaint_about_a_body_written_differently_never_reaches_it(
    router: Router, about: str
) -> None:
    d = router.route(RouteInput("a", "22", "other", municipality="barnaul", text=COMPLAINT,
                                complaint_about=about))
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government", "complaint_parent", "22-barnaul-admin")


def test_complaint_about_a_department_by_name_goes_to_its_administration(router: Router) -> None:
    d = router.route(RouteInput(
        "a", "22", "housing_utilities", text="в Барнауле нет воды",
        complaint_about="Комитет жилищно-коммунального хозяйства города Барнаула"))
    assert (d.authority_id, d.level) == ("22-barnaul-admin", "complaint_parent")


@pytest.mark.parametrize("about", ["22-no-such-body", "Администрация нашего района",
                                   "22-adm-pervomaisky"])
def test_complaint_about_a_body_that_cannot_be_identified_goes_to_the_triage_desk(
    router: Router, about: str
) -> None:
    d = router.route(RouteInput("a", "22", "roads", text="в Барнауле яма", complaint_about=about))
    assert (d.authority_id, d.level, d.municipality) == (
        "22-cur", "complaint_unidentified", "barnaul")


def test_blank_complaint_field_is_no_complaint(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "roads", text="в Барнауле яма", complaint_about="  "))
    assert (d.authority_id, d.level) == ("22-barnaul-kdht", "municipality_category")


def test_an_unroutable_complaint_stays_unroutable(router: Router) -> None:
    d = router.route(RouteInput("a", "54", "roads", complaint_about="кто-то"))
    assert (d.authority_id, d.level) == ("22-cur", "unroutable")


def test_the_new_level_is_a_route_level() -> None:
    assert "complaint_unidentified" in RouteLevel.__args__  # type: ignore[attr-defined]


def test_identify_authority(demo_rules: RoutingRules) -> None:
    from workers.routing.router import identify_authority

    assert identify_authority(demo_rules, "22-minzhkh") == "22-minzhkh"
    assert identify_authority(demo_rules, "22-MinZhKh") == "22-minzhkh"
    assert identify_authority(
        demo_rules, "министерство жилищно-коммунального хозяйства алтайского края"
    ) == "22-minzhkh"
    assert identify_authority(demo_rules, "минЖКХ") is None
    assert identify_authority(demo_rules, None) is None
    assert identify_authority(demo_rules, "") is None


@pytest.mark.parametrize("about", ["22-Biysk-Admin", "Администрация города Бийска"])
def test_redirect_refuses_the_body_written_differently(router: Router, about: str) -> None:
    with pytest.raises(RedirectRejected, match="22-biysk-admin"):
        router.redirect("a", "22-biysk-ugh", complaint_about=about)
    with pytest.raises(RedirectRejected, match="the body it complains about"):
        router.redirect("a", "22-biysk-admin", complaint_about=about)
    assert router.redirect("a", "22-government", complaint_about=about).authority_id \
        == "22-government"


def test_complaint_never_reaches_its_body_in_any_spelling(
    router: Router, demo_rules: RoutingRules
) -> None:
    for authority in demo_rules.authorities.values():
        for about in (authority.id.upper(), authority.name):
            for text in ("", "в Барнауле", "в Бийске"):
                d = router.route(RouteInput("a", "22", "housing_utilities", text=text,
                                            complaint_about=about))
                assert d.authority_id != authority.id
                assert authority.id not in demo_rules.ancestors(d.authority_id) \
                    or d.authority_id == "22-cur"
