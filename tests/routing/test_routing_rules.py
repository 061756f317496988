"""Loading and validation of rule files: clear errors naming file, key path, expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.records import CATEGORIES
from workers.routing import RulesError, load_rules
from workers.routing.loader import ENV_VAR, PACKAGED_DATA, default_rules_path

MINIMAL = """\
region: "54"
triage: 54-cur
routes:
  roads: 54-mintrans
authorities:
  - id: 54-government
    name: Правительство Новосибирской области
    kind: government
  - id: 54-cur
    name: ЦУР Новосибирской области
    kind: triage
    parent: 54-government
  - id: 54-mintrans
    name: Министерство транспорта и дорожного хозяйства Новосибирской области
    kind: ministry
    parent: 54-government
"""


def write(tmp_path: Path, text: str, name: str = "54.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    return str(exc.value)


def test_demo_region_is_complete(demo_rules) -> None:  # type: ignore[no-untyped-def]
    region = demo_rules.regions["22"]
    assert region.timezone == "Asia/Barnaul"
    assert demo_rules.authorities["22-cur"].kind == "triage"
    for category in CATEGORIES:
        if category != "other":
            assert category in region.routes, category
    required = {
        "barnaul", "biysk", "rubtsovsk", "novoaltaysk", "zarinsk", "kamen-na-obi",
        "slavgorod", "aleysk", "belokurikha", "yarovoye",
    }  # fmt: skip
    assert required <= set(region.municipalities)
    for auth in demo_rules.authorities.values():
        assert auth.timezone == "Asia/Barnaul"
        assert auth.supervisors, auth.id
        assert auth.parent or auth.kind == "government"
    assert demo_rules.authorities["22-minzhkh"].sla["pos"]["working_days"] == 8
    with pytest.raises(TypeError):
        demo_rules.authorities["22-minzhkh"].sla["shift"] = "previous"  # type: ignore[index]


def test_minimal_file_and_content_hash_version(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, MINIMAL))
    assert rules.version.startswith("sha256:")
    assert rules.default_region == "54"
    assert rules.authorities["54-cur"].timezone == "Asia/Novosibirsk"  # from the catalogue
    again = load_rules(write(tmp_path, MINIMAL + "# comment\n"))
    assert again.version != rules.version


def test_explicit_version(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, 'version: "v7"\n' + MINIMAL)).version == "v7"


def test_directory_loads_every_region(tmp_path: Path, demo_yaml: str) -> None:
    write(tmp_path, MINIMAL)
    write(tmp_path, demo_yaml, "22.yaml")
    rules = load_rules(tmp_path)
    assert set(rules.regions) == {"22", "54"}
    assert rules.default_region == "22"  # flagged default_for_unknown_regions
    assert rules.version.startswith("sha256:")
    assert load_rules(tmp_path, default_region="54").default_region == "54"


def test_env_var_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_rules_path() == PACKAGED_DATA
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path, MINIMAL)))
    assert set(load_rules().regions) == {"54"}


def test_missing_parent(tmp_path: Path) -> None:
    msg = problems(write(tmp_path, MINIMAL.replace("parent: 54-government\n", "parent: 54-x\n", 1)))
    assert "54.yaml: authorities[1].parent: unknown parent authority id '54-x'" in msg


def test_parent_required_except_government(tmp_path: Path) -> None:
    text = MINIMAL.replace("    parent: 54-government\n", "", 1)
    assert "authorities[1].parent: required for every authority except kind 'government'" in (
        problems(write(tmp_path, text))
    )


def test_unknown_category_code(tmp_path: Path) -> None:
    msg = problems(write(tmp_path, MINIMAL.replace("  roads:", "  potholes:")))
    assert "routes.potholes: unknown category code; expected one of housing_utilities" in msg


def test_duplicate_id(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "  - id: 54-cur\n    name: Ещё один\n    kind: agency\n    parent: 54-government\n"
    )
    msg = problems(write(tmp_path, text))
    assert "authorities[3].id: duplicate authority id '54-cur'" in msg
    assert "authorities[1]" in msg  # where the first one is


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    other = MINIMAL.replace('region: "54"', 'region: "54"').replace("54.yaml", "")
    write(tmp_path, other, "54-copy.yaml")
    msg = problems(tmp_path)
    assert "duplicate authority id '54-government'" in msg
    assert "region '54' is also defined in" in msg


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    msg = problems(write(tmp_path, MINIMAL + "routes:\n  roads: 54-cur\n"))
    assert "duplicate key 'routes'" in msg


def test_unknown_route_target_and_kind_and_timezone(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("roads: 54-mintrans", "roads: 54-nobody")
        .replace("kind: ministry", "kind: ministery")
        .replace("kind: triage\n", "kind: triage\n    timezone: Asia/Nowhere\n")
    )
    msg = problems(write(tmp_path, text))
    assert "routes.roads: unknown authority id '54-nobody'" in msg
    assert "authorities[2].kind: 'ministery': expected one of government, ministry" in msg
    assert "authorities[1].timezone: 'Asia/Nowhere': not an IANA time zone" in msg


def test_bad_region_and_id_prefix(tmp_path: Path) -> None:
    assert "region: unknown Russian region code '88'" in problems(
        write(tmp_path, MINIMAL.replace('"54"', '"88"'))
    )
    text = MINIMAL.replace("id: 54-mintrans", "id: 22-mintrans").replace(
        "roads: 54-mintrans", "roads: 22-mintrans"
    )
    assert "must start with the region code '54-'" in problems(write(tmp_path, text))


def test_parent_cycle(tmp_path: Path) -> None:
    text = MINIMAL.replace("kind: government\n", "kind: government\n    parent: 54-cur\n")
    assert "parent cycle:" in problems(write(tmp_path, text))


def test_unknown_key_and_not_yaml(tmp_path: Path) -> None:
    assert "triag: unknown key; expected one of" in problems(
        write(tmp_path, MINIMAL + "triag: x\n")
    )
    assert "not valid YAML" in problems(write(tmp_path, "region: [\n"))


def test_municipality_errors(tmp_path: Path) -> None:
    text = MINIMAL + (
        "municipalities:\n"
        "  - id: Novosibirsk\n"
        "    name: Новосибирск\n"
        "    oktmo: 50701000\n"
        "    default: 54-nobody\n"
        "    routes:\n      roads: {subcategories: {Bad Sub: 54-cur}}\n"
    )
    msg = problems(write(tmp_path, text))
    assert "municipalities[0].id: 'Novosibirsk': expected a lower-case slug" in msg
    assert "municipalities[0].default: unknown authority id '54-nobody'" in msg
    assert "municipalities[0].routes.roads.subcategories.Bad Sub: subcategory must be" in msg


def test_two_default_regions_rejected(tmp_path: Path, demo_yaml: str) -> None:
    write(tmp_path, "default_for_unknown_regions: true\n" + MINIMAL)
    write(tmp_path, demo_yaml, "22.yaml")
    assert "set in more than one file" in problems(tmp_path)


def test_gazetteer_conflict_reported(tmp_path: Path) -> None:
    text = MINIMAL + (
        "municipalities:\n"
        "  - {id: a, name: A, names: [Бердск]}\n"
        "  - {id: b, name: B, forms: [Бердске]}\n"
    )
    assert "form 'бердске' names both municipalities 'a' and 'b'" in problems(write(tmp_path, text))
