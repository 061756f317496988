"""Loading and validation of rule files: clear errors naming file, key path, expectation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.records import CATEGORIES
from workers.routing import RulesError, load_rules
from workers.routing.loader import (
    ENV_VAR,
    PACKAGED_DATA,
    content_fingerprint,
    default_rules_path,
)

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


def test_explicit_version_keeps_the_content_hash(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, 'version: "v7"\n' + MINIMAL))
    assert re.fullmatch(r"v7\+[0-9a-f]{12}", rules.version)
    assert rules.regions["54"].version == rules.version
    # Edited without bumping the declared version: still a different recorded version.
    edited = load_rules(write(tmp_path, 'version: "v7"\n' + MINIMAL.replace("roads", "transport")))
    assert edited.version.startswith("v7+")
    assert edited.version != rules.version


def test_directory_loads_every_region(tmp_path: Path, demo_yaml: str) -> None:
    write(tmp_path, MINIMAL)
    write(tmp_path, demo_yaml, "22.yaml")
    rules = load_rules(tmp_path)
    assert set(rules.regions) == {"22", "54"}
    assert rules.default_region == "22"  # flagged default_for_unknown_regions
    # Declared versions (only the demo file has one) plus a hash over every file.
    assert re.fullmatch(r"22-altai-krai/2025-06-01\.1\+[0-9a-f]{12}", rules.version)
    assert rules.version != load_rules(tmp_path / "22.yaml").version
    assert load_rules(tmp_path, default_region="54").default_region == "54"
    write(tmp_path, MINIMAL + "# edited\n")  # an edit to the undeclared file shows too
    assert load_rules(tmp_path).version != rules.version
    write(tmp_path, 'version: "54/v1"\n' + MINIMAL)
    both = load_rules(tmp_path).version
    assert re.fullmatch(r"22-altai-krai/2025-06-01\.1,54/v1\+[0-9a-f]{12}", both)


def test_env_var_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_rules_path() == PACKAGED_DATA
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path, MINIMAL)))
    assert set(load_rules().regions) == {"54"}


def test_missing_parent(tmp_path: Path) -> None:
    msg = problems(write(tmp_path, MINIMAL.replace("parent: 54-government\n", "parent: 54-x\n", 1)))
    assert "54.yaml: authorities[1](54-cur).parent: unknown parent authority id '54-x'" in msg


def test_parent_required_except_government(tmp_path: Path) -> None:
    text = MINIMAL.replace("    parent: 54-government\n", "", 1)
    assert (
        "authorities[1](54-cur).parent: required for every authority except kind 'government'"
    ) in problems(write(tmp_path, text))


def test_unknown_category_code(tmp_path: Path) -> None:
    msg = problems(write(tmp_path, MINIMAL.replace("  roads:", "  potholes:")))
    assert "routes.potholes: unknown category code; expected one of housing_utilities" in msg


def test_duplicate_id(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "  - id: 54-cur\n    name: Ещё один\n    kind: agency\n    parent: 54-government\n"
    )
    msg = problems(write(tmp_path, text))
    assert "authorities[3](54-cur).id: duplicate authority id '54-cur'" in msg
    assert "(also " in msg and "authorities[1](54-cur))" in msg  # where the first one is


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
    assert (
        "authorities[2](54-mintrans).kind: 'ministery': expected one of government, ministry"
    ) in msg
    assert "authorities[1](54-cur).timezone: 'Asia/Nowhere': not an IANA time zone" in msg


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
    assert "municipalities[0](Novosibirsk).id: 'Novosibirsk': expected a lower-case slug" in msg
    assert "municipalities[0](Novosibirsk).default: unknown authority id '54-nobody'" in msg
    assert (
        "municipalities[0](Novosibirsk).routes.roads.subcategories.Bad Sub: subcategory must be"
    ) in msg


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


# ------------------------------------------------------------- malformed files never crash


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(MINIMAL.encode("cp1251"), id="cp1251"),
        pytest.param(MINIMAL.encode()[: MINIMAL.encode().index("ЦУР".encode()) + 1], id="cut"),
    ],
)
def test_not_utf8_is_a_rules_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "54.yaml"
    path.write_bytes(raw)
    msg = problems(path)
    assert f"{path}: <root>: not valid UTF-8 (line " in msg


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{id: a, name: A, names: 5}", "municipalities[0](a).names: expected a list of"),
        (
            "{id: a, name: A, names: [Бердск, 50701000]}",
            "municipalities[0](a).names[1]: expected a non-empty string, got 50701000",
        ),
        (
            "{id: a, name: A, forms: [Бердске, null]}",
            "municipalities[0](a).forms[1]: expected a non-empty string, got None",
        ),
        (
            "{id: a, name: A, adjectives: ['—']}",
            "municipalities[0](a).adjectives[0]: '—': contains no letters or digits",
        ),
        ("{id: a, name: A, district_of: бердский}", "municipalities[0](a).district_of: expected"),
        (
            "{id: a, name: A, names: [Бердск], ambiguous_names: [Бердск, Бердкс]}",
            "municipalities[0](a).ambiguous_names[1]: 'Бердкс' is none of this municipality's "
            "names: or forms:",
        ),
        (
            "{id: a, name: A, names: [Бердск], ambiguous_names: Бердск}",
            "municipalities[0](a).ambiguous_names: expected a list of",
        ),
    ],
)
def test_bad_gazetteer_values_are_rules_errors(tmp_path: Path, spec: str, expected: str) -> None:
    # These used to reach Gazetteer.build after being reported, and crash it (TypeError).
    msg = problems(write(tmp_path, MINIMAL + f"municipalities:\n  - {spec}\n"))
    assert f"54.yaml: {expected}" in msg


def test_empty_list_item_is_a_rules_error(tmp_path: Path) -> None:
    text = MINIMAL + (
        "municipalities:\n  - id: a\n    name: A\n    names:\n      - Бердск\n      -\n"
    )
    assert "54.yaml: municipalities[0](a).names[1]: expected a non-empty string, got None" in (
        problems(write(tmp_path, text))
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("? [a, b]\n: 1\n", "<root>: not valid YAML: a mapping key must be a plain value"),
        ("? {a: 1}\n: 1\n", "<root>: not valid YAML: a mapping key must be a plain value"),
        ("version: 2025-13-45\n", "<root>: not valid YAML: ValueError: month must be in 1..12"),
        ("timezone: Asia\n", "timezone: 'Asia': not an IANA time zone"),
    ],
)
def test_odd_yaml_is_a_rules_error(tmp_path: Path, extra: str, expected: str) -> None:
    assert f"54.yaml: {expected}" in problems(write(tmp_path, MINIMAL + extra))


def test_triage_desk_must_not_be_a_root(tmp_path: Path) -> None:
    # A complaint about the root goes to the triage desk: a root desk would get complaints
    # about itself (59-FZ art. 8 p. 6), so the file is refused.
    text = MINIMAL.replace("triage: 54-cur", "triage: 54-government")
    assert "54.yaml: triage: '54-government' has no parent (kind 'government')" in problems(
        write(tmp_path, text)
    )


def test_half_written_file_does_not_reuse_the_version(tmp_path: Path, demo_yaml: str) -> None:
    # A non-atomic write caught mid-way can be valid rules (municipalities missing): it must
    # not record the complete file's version.
    good = load_rules(write(tmp_path, demo_yaml, "22.yaml"))
    cut = demo_yaml.index("  - id: slavgorod")
    partial = load_rules(write(tmp_path, demo_yaml[:cut], "22.yaml"))
    assert "slavgorod" not in partial.regions["22"].municipalities
    assert partial.version.startswith("22-altai-krai/2025-06-01.1+")
    assert partial.version != good.version


def test_fingerprint_names_the_bytes_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    rules = load_rules(path)
    assert rules.fingerprint == content_fingerprint([("54.yaml", path.read_bytes())])
    bad = write(tmp_path, MINIMAL.replace("54-cur\nroutes", "54-nobody\nroutes"))
    with pytest.raises(RulesError) as exc:
        load_rules(bad)
    assert exc.value.fingerprint == content_fingerprint([("54.yaml", bad.read_bytes())])


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      roads: 22-biysk-ugh",
            "      roads: 22-barnaul-kdht",
            "municipalities[1](biysk).routes.roads: '22-barnaul-kdht' is a body of municipality "
            "'barnaul', not 'biysk'",
        ),
        (
            "    default: 22-yarovoye-admin",
            "    default: 22-barnaul-admin",
            "municipalities[9](yarovoye).default: '22-barnaul-admin' is a body of municipality "
            "'barnaul', not 'yarovoye'",
        ),
        (
            "    default: 22-minzhkh",
            "    default: 22-barnaul-kzhkh",
            "routes.housing_utilities.default: '22-barnaul-kzhkh' is a body of municipality "
            "'barnaul': a region-wide setting must name a region-level body",
        ),
        (
            "      stray_dogs: 22-vet",
            "      stray_dogs: 22-biysk-ugh",
            "routes.safety.subcategories.stray_dogs: '22-biysk-ugh' is a body of municipality "
            "'biysk'",
        ),
        (
            "triage: 22-cur",
            "triage: 22-barnaul-kblag",
            "triage: '22-barnaul-kblag' is a body of municipality 'barnaul': a region-wide "
            "setting must name a region-level body",
        ),
        (
            "    default: 22-minzhkh",
            "    default: 54-mintrans",
            "routes.housing_utilities.default: '54-mintrans' belongs to region 54, not 22",
        ),
        (
            "      roads: 22-biysk-ugh",
            "      roads: 54-mintrans",
            "municipalities[1](biysk).routes.roads: '54-mintrans' belongs to region 54, not 22",
        ),
    ],
    ids=[
        "other-municipality-route",
        "other-municipality-default",
        "region-route-to-city-body",
        "region-subcategory-to-city-body",
        "triage-desk-is-a-city-body",
        "region-route-to-other-region",
        "municipality-route-to-other-region",
    ],
)
def test_route_targets_belong_to_the_region_and_municipality(
    tmp_path: Path, demo_yaml: str, old: str, new: str, expected: str
) -> None:
    # Each edit loaded cleanly (only existence was checked) and misrouted: Biysk's roads to
    # Barnaul's committee, the region-wide fallback or the triage desk to a city body,
    # appeals of region 22 to a ministry of region 54.
    assert old in demo_yaml
    write(tmp_path, demo_yaml.replace(old, new, 1), "22.yaml")
    write(tmp_path, MINIMAL)
    msg = problems(tmp_path)
    assert f"22.yaml: {expected}" in msg


def test_a_municipality_may_route_to_a_region_level_body(tmp_path: Path, demo_yaml: str) -> None:
    text = demo_yaml.replace("      roads: 22-biysk-ugh", "      roads: 22-mintrans", 1)
    rules = load_rules(write(tmp_path, text, "22.yaml"))
    assert rules.regions["22"].municipalities["biysk"].routes["roads"].default == "22-mintrans"


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Etc/GMT+7", "'Etc/GMT+7': UTC offset -07:00, outside Russia's UTC+2..+12"),
        ("America/New_York", "'America/New_York': UTC offset -05:00, outside Russia's"),
        ("Factory", "'Factory': UTC offset +00:00, outside Russia's UTC+2..+12"),
        ("UTC", "'UTC': UTC offset +00:00, outside Russia's UTC+2..+12"),
        # Host files: refused as such, or as unknown where the host lacks them.
        ("posixrules", "'posixrules': "),
        ("localtime", "'localtime': "),
    ],
)
def test_timezone_must_be_one_a_russian_body_can_have(
    tmp_path: Path, tz: str, expected: str
) -> None:
    # Each loaded (the zone database knows them), and the SLA counted the body's working
    # hours in UTC−7 or New York time.
    text = MINIMAL.replace("kind: ministry\n", f"kind: ministry\n    timezone: {tz}\n")
    msg = problems(write(tmp_path, text))
    assert f"54.yaml: authorities[2](54-mintrans).timezone: {expected}" in msg
    if tz == "Etc/GMT+7":
        assert "Etc/GMT+7 is UTC−7: use Asia/Barnaul" in msg


@pytest.mark.parametrize(
    "tz", ["Europe/Kaliningrad", "Europe/Moscow", "Asia/Novosibirsk", "Asia/Kamchatka"]
)
def test_russian_timezones_load(tmp_path: Path, tz: str) -> None:
    text = MINIMAL.replace("kind: ministry\n", f"kind: ministry\n    timezone: {tz}\n")
    assert load_rules(write(tmp_path, text)).authorities["54-mintrans"].timezone == tz


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        # Each passed the prefix check and failed at the first alert: the space as an
        # unresolvable host, the others as UnicodeError from the IDNA encoding.
        ('"http://exa mple.ru/x"', "contains whitespace"),
        ("https://hooks..minzhkh54.ru/alerts", "host 'hooks..minzhkh54.ru' is no DNS name"),
        (f"https://{'h' * 64}.ru/alerts", f"host '{'h' * 64}.ru' is no DNS name"),
        ("http://", "no host"),
        ("http://hooks.example.ru:99999/x", "bad port"),
    ],
)
def test_a_supervisors_hook_gets_the_settings_url_check(
    tmp_path: Path, hook: str, expected: str
) -> None:
    text = MINIMAL.replace(
        "kind: ministry\n",
        f"kind: ministry\n    supervisors:\n      - role: duty\n        webhook: {hook}\n",
    )
    msg = problems(write(tmp_path, text))
    (line,) = (x for x in msg.splitlines() if "webhook" in x)
    _, _, what = line.partition("54.yaml: authorities[2](54-mintrans).supervisors[0].webhook: ")
    assert what.startswith("expected an http(s) URL (") and expected in what
    assert "/alerts" not in what and "/x" not in what  # the host only: a path may hold a secret


@pytest.mark.parametrize(
    "hook",
    ["https://hooks.example.invalid/54/x", "https://хуки.пример.рф/54", "http://[::1]:8080/x",
     "http://10.0.0.7/x", "https://hooks.example.ru./x"],
)
def test_a_supervisors_hook_that_can_be_sent_to_loads(tmp_path: Path, hook: str) -> None:
    text = MINIMAL.replace(
        "kind: ministry\n",
        f"kind: ministry\n    supervisors:\n      - role: duty\n        webhook: '{hook}'\n",
    )
    rules = load_rules(write(tmp_path, text))
    assert rules.authorities["54-mintrans"].supervisors[0].webhook == hook
