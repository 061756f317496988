"""Rules-load checks that protect other workers: authorities' SLA overrides (validated with the
SLA policy book itself) and the municipal hierarchy the complaint rule relies on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workers.routing import RouteInput, Router, RoutingRules, RulesError, RulesWatcher, load_rules
from workers.sla.deadline_service import load_book

URB_SLA = "    sla:\n      pos: {working_days: 5}\n"
URB = "authorities[12](22-urb)"  # in the demo file


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "22.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    return str(exc.value)


# ------------------------------------------------------------------ SLA overrides


@pytest.mark.parametrize(
    ("sla", "key", "message"),
    [
        ("pos: {working_days: -5}", "sla.pos.working_days", "must be > 0, got -5"),
        ("pos: {working_days: five}", "sla.pos.working_days", "expected a number, got 'five'"),
        ("pos: {working_days: 5}\n      shift: whenever", "sla.shift",
         "must be one of previous, next, none, got 'whenever'"),
        ("pos: {working_days: 5, shift: whenever}", "sla.pos.shift", "must be one of"),
        ("posx: {working_days: 5}", "sla.posx", "unknown SLA regime 'posx'"),
        # Ignored by the SLA worker's conversion: silently a default deadline before.
        ("pos: {workingdays: 5}", "sla.pos.workingdays", "ignored by the SLA engine"),
        ("shfit: next", "sla.shfit", "ignored by the SLA engine"),
        ("incident: {first_response: {workinghours: 4}}",
         "sla.incident.first_response.workinghours", "ignored by the SLA engine"),
        ("pos: {working_days: 5, calendar_days: 7}", "sla.pos",
         "sets the period more than once (working_days, calendar_days)"),
    ],
)
def test_bad_sla_override_is_a_rules_error_naming_file_authority_and_key(
    tmp_path: Path, demo_yaml: str, sla: str, key: str, message: str
) -> None:
    path = _write(tmp_path, demo_yaml.replace(URB_SLA, f"    sla:\n      {sla}\n"))
    msg = _problems(path)
    assert f"{path}: {URB}.{key}: authority '22-urb': {message}" in msg
    assert "policies.toml" not in msg
    assert "overrides[" not in msg


@pytest.mark.parametrize(
    "sla",
    [
        "pos: {working_days: 5}",
        "incident: {first_response: {working_hours: 4}}",
        "pos: {working_hours: 40, urgent_answer: 1.5}\n      shift: previous",
        "fz59: {calendar_days: 30}\n      warning_share: 0.5",
    ],
)
def test_valid_sla_overrides_load_and_build_the_sla_book(
    tmp_path: Path, demo_yaml: str, sla: str
) -> None:
    rules = load_rules(_write(tmp_path, demo_yaml.replace(URB_SLA, f"    sla:\n      {sla}\n")))
    load_book(rules.authorities.values())  # what the SLA worker does at start


def test_demo_rules_build_the_sla_book(demo_rules: RoutingRules) -> None:
    book = load_book(demo_rules.authorities.values())
    assert book.resolve("pos", "22", "22-urb").answer == 5


def test_reload_with_bad_sla_override_keeps_the_working_rules(
    tmp_path: Path, demo_yaml: str
) -> None:
    path = _write(tmp_path, demo_yaml)
    router = Router(load_rules(tmp_path))
    initial = router.rules

    async def scenario() -> RulesWatcher:
        watcher = RulesWatcher(tmp_path, router.swap, interval=0.01, initial=initial)
        path.write_text(
            demo_yaml.replace(URB_SLA, "    sla:\n      pos: {working_days: -5}\n"),
            encoding="utf-8",
        )
        assert await watcher.check() is False  # not settled yet: checked on the next poll
        assert await watcher.check() is False
        return watcher

    watcher = asyncio.run(scenario())
    assert router.rules is initial
    assert f"{URB}.sla.pos.working_days: authority '22-urb'" in str(watcher.last_error)
    load_book(router.rules.authorities.values())  # the SLA worker can still start


# ------------------------------------------------------------------ municipal hierarchy


def test_every_municipal_department_sits_below_its_administration(
    demo_rules: RoutingRules,
) -> None:
    municipalities = demo_rules.regions["22"].municipalities
    for auth in demo_rules.authorities.values():
        if auth.municipality is None:
            continue
        admin = municipalities[auth.municipality].default
        assert admin is not None
        if auth.id != admin:
            assert admin in demo_rules.ancestors(auth.id), auth.id


def test_municipal_department_under_a_ministry_is_a_rules_error(
    tmp_path: Path, demo_yaml: str
) -> None:
    old = (
        "        name: Комитет по образованию города Барнаула\n"
        "        kind: municipality\n"
        "        parent: 22-barnaul-admin\n"
    )
    assert old in demo_yaml
    path = _write(tmp_path, demo_yaml.replace(old, old.replace("22-barnaul-admin", "22-minobr")))
    msg = _problems(path)
    assert (
        f"{path}: municipalities[0](barnaul).authorities[4](22-barnaul-kobr).parent: "
        "'22-barnaul-kobr' belongs to "
        "municipality 'barnaul' but does not sit below its administration '22-barnaul-admin'"
    ) in msg


@pytest.mark.parametrize(
    ("municipality", "category"),
    [
        ("barnaul", "housing_utilities"),
        ("barnaul", "roads"),
        ("barnaul", "transport"),
        ("barnaul", "landscaping"),
        ("barnaul", "education"),
        ("biysk", "education"),
        ("biysk", "roads"),
        ("aleysk", "education"),
        ("rubtsovsk", "housing_utilities"),
    ],
)
def test_complaint_about_city_administration_never_reaches_its_department(
    router: Router, municipality: str, category: str
) -> None:
    admin = router.rules.regions["22"].municipalities[municipality].default
    d = router.route(
        RouteInput("a", "22", category, municipality=municipality, complaint_about=admin)
    )
    assert (d.authority_id, d.level, d.complaint_about) == (
        "22-government",
        "complaint_parent",
        admin,
    )


def test_complaint_about_a_city_department_goes_to_its_administration(router: Router) -> None:
    d = router.route(
        RouteInput(
            "a", "22", "housing_utilities", municipality="barnaul",
            complaint_about="22-barnaul-kzhkh",
        )
    )
    assert (d.authority_id, d.level) == ("22-barnaul-admin", "complaint_parent")
