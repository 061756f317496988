"""Rule errors name list items by their id, and a region's time-zone error is reported once
(routing fixes, D7).

«municipalities[6].authorities[1].parent» made the editor count list items; a typo in the
region's ``timezone:`` was reported once for the region and again for every authority that
inherits it (42 problems for one typo in the demo file).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.routing import RulesError, load_rules


def problems(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "22.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    return exc.value.problems


def test_a_list_item_is_named_by_its_id(tmp_path: Path, demo_yaml: str) -> None:
    old = "        kind: municipality\n        parent: 22-slavgorod-admin\n"
    assert demo_yaml.count(old) == 1
    found = problems(tmp_path, demo_yaml.replace(
        old, "        kind: municipality\n        parent: 22-slavgorod-admn\n"))
    assert [(p, m) for _, p, m in found] == [(
        "municipalities[6](slavgorod).authorities[1](22-slavgorod-ugkh).parent",
        "unknown parent authority id '22-slavgorod-admn'",
    )]


def test_a_region_time_zone_typo_is_one_problem(tmp_path: Path, demo_yaml: str) -> None:
    found = problems(tmp_path, demo_yaml.replace("timezone: Asia/Barnaul",
                                                 "timezone: Asia/Barnual"))
    assert [(p, m) for _, p, m in found] == [
        ("timezone", "'Asia/Barnual': not an IANA time zone (e.g. 'Asia/Barnaul')"),
    ]


def test_an_authoritys_own_zone_is_still_checked(tmp_path: Path, demo_yaml: str) -> None:
    text = demo_yaml.replace("    kind: triage\n", "    kind: triage\n    timezone: Asia/Nowhere\n")
    found = problems(tmp_path, text)
    assert [p for _, p, _ in found] == ["authorities[1](22-cur).timezone"]
