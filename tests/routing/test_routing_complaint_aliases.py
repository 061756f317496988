"""A complaint names its body as people write it: a short name («ЦУР»), another case
(«Центра управления регионом»), a city hall without «города» (routing review, D1).

59-FZ art. 8 p. 6: never to the body complained about. Only the exact id or the nominative
full name identified a body; «ЦУР» was unidentified, and an unidentified complaint goes to the
triage desk: the very body it was about.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.routing import RedirectRejected, RouteInput, Router, RulesError, load_rules
from workers.routing.router import identify_authority

COMPLAINT = "Жалоба на бездействие, ответа нет"


@pytest.mark.parametrize("about", [
    "ЦУР", "цур", "ЦУР Алтайского края", "ЦУРа Алтайского края",
    "Центра управления регионом Алтайского края", "Центру управления регионом",
    "центр управления регионом алтайского края",
])
def test_a_complaint_about_the_desk_by_a_short_name_or_in_another_case_leaves_the_desk(
    router: Router, about: str
) -> None:
    d = router.route(RouteInput("a", "22", "other", text=COMPLAINT, complaint_about=about))
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government", "complaint_parent", "22-cur")


@pytest.mark.parametrize("about", ["ЦУР", "Центра управления регионом Алтайского края"])
def test_a_timed_out_complaint_about_the_desk_is_not_kept_at_the_desk(
    router: Router, about: str
) -> None:
    d = router.triage_desk(RouteInput("a", "22", "other", text=COMPLAINT, complaint_about=about))
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government", "complaint_parent", "22-cur")


@pytest.mark.parametrize("about", ["Администрации города Бийска", "администрация Бийска",
                                   "Администрацию г. Бийска"])
def test_a_city_hall_in_another_case_or_by_its_short_name(router: Router, about: str) -> None:
    d = router.route(RouteInput("a", "22", "housing_utilities", text="в Бийске нет воды",
                                complaint_about=about))
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government", "complaint_parent", "22-biysk-admin")


@pytest.mark.parametrize("route", ["route", "triage_desk"])
def test_an_unidentified_complaint_that_names_the_desk_goes_to_its_parent(
    router: Router, route: str
) -> None:
    appeal = RouteInput("a", "22", "roads", text="в Барнауле яма",
                        complaint_about="оператор ЦУР и администрация нашего района")
    d = getattr(router, route)(appeal)
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government", "complaint_parent", "22-cur")


def test_an_unidentified_complaint_naming_no_desk_still_goes_to_the_desk(router: Router) -> None:
    d = router.route(RouteInput("a", "22", "roads", text="в Барнауле яма",
                                complaint_about="Администрация нашего района"))
    assert (d.authority_id, d.level) == ("22-cur", "complaint_unidentified")


def test_a_short_name_names_a_body_of_the_appeals_region_only(router: Router) -> None:
    # An appeal from a region without rules complains about *its* ЦУР, not Altai's.
    d = router.route(RouteInput("a", "54", "roads", complaint_about="ЦУР"))
    assert (d.authority_id, d.level, d.complaint_about) == ("22-cur", "unroutable", None)


def test_redirect_refuses_the_desk_named_by_its_short_name(router: Router) -> None:
    with pytest.raises(RedirectRejected):
        router.redirect("a", "22-cur", complaint_about="ЦУРа")


def test_identify_authority_by_alias(router: Router) -> None:
    rules = router.rules
    assert identify_authority(rules, "Фонда капремонта Алтайского края", "22") == "22-fond-kr"
    assert identify_authority(rules, "ЦУР", "22") == "22-cur"
    assert identify_authority(rules, "ЦУР", "54") is None


BASE = """\
region: "54"
triage: 54-cur
authorities:
  - id: 54-government
    name: Правительство Новосибирской области
    kind: government
  - id: 54-cur
    name: Центр управления регионом Новосибирской области
    kind: triage
    parent: 54-government
{extra}"""


def _problems(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "54.yaml"
    path.write_text(BASE.format(extra=extra), encoding="utf-8")
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    return str(exc.value)


@pytest.mark.parametrize(("aliases", "expected"), [
    ("ЦУР", "authorities[2](54-minzhkh).aliases: expected a list of names"),
    ("['']", "authorities[2](54-minzhkh).aliases[0]: expected a non-empty string"),
    ("[5]", "authorities[2](54-minzhkh).aliases[0]: expected a non-empty string"),
    ("['«»']", "authorities[2](54-minzhkh).aliases[0]: '«»': contains no letters or digits"),
])
def test_bad_aliases_are_rules_errors(tmp_path: Path, aliases: str, expected: str) -> None:
    extra = f"""\
  - id: 54-minzhkh
    name: Министерство ЖКХ
    aliases: {aliases}
    kind: ministry
    parent: 54-government
"""
    assert expected in _problems(tmp_path, extra)


def test_an_alias_that_names_another_body_is_refused(tmp_path: Path) -> None:
    extra = """\
  - id: 54-minzhkh
    name: Министерство ЖКХ
    aliases: [Центра управления регионом Новосибирской области]
    kind: ministry
    parent: 54-government
"""
    text = _problems(tmp_path, extra)
    assert "authorities[2](54-minzhkh).aliases[0]" in text and "also names '54-cur'" in text


def test_aliases_load(tmp_path: Path) -> None:
    path = tmp_path / "54.yaml"
    path.write_text(BASE.format(extra="").replace(
        "    kind: triage", "    aliases: [ЦУР, ЦУР НСО]\n    kind: triage"), encoding="utf-8")
    rules = load_rules(path)
    assert rules.authorities["54-cur"].aliases == ("ЦУР", "ЦУР НСО")
    assert identify_authority(rules, "ЦУРа НСО", "54") == "54-cur"
