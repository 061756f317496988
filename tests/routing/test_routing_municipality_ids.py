"""A municipality id may belong to one region only (routing fixes, API-D2).

Figures are keyed ``muni:<id>``: a «pervomayskiy-rayon» in region 22 and another in region 70
(both krais have a Первомайский район) loaded cleanly and merged into one municipality on the
dashboards and in the API.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workers.routing import RulesError, load_rules
from workers.routing.loader import PACKAGED_DATA

TOMSK = """\
region: "70"
triage: 70-cur
routes:
  roads: 70-mintrans
authorities:
  - id: 70-government
    name: Администрация Томской области
    kind: government
  - id: 70-cur
    name: ЦУР Томской области
    kind: triage
    parent: 70-government
  - id: 70-mintrans
    name: Департамент транспорта Томской области
    kind: ministry
    parent: 70-government
municipalities:
  - id: tomsk
    name: город Томск
    names: [Томск]
  - id: {mid}
    name: Первомайский район
    district_of: [первомайский]
"""


def two_regions(tmp_path: Path, mid: str) -> Path:
    shutil.copy(PACKAGED_DATA / "22-altai-krai.yaml", tmp_path / "22-altai-krai.yaml")
    (tmp_path / "70-tomsk.yaml").write_text(TOMSK.format(mid=mid), encoding="utf-8")
    return tmp_path


def test_a_municipality_id_in_two_regions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as exc:
        load_rules(two_regions(tmp_path, "pervomayskiy-rayon"), default_region="22")
    [problem] = [p for p in exc.value.problems if "pervomayskiy-rayon" in p[2]]
    file, path, message = problem
    assert file.endswith("70-tomsk.yaml")
    assert path == "municipalities[1](pervomayskiy-rayon).id"
    assert "region 70" in message and "region 22" in message
    assert "22-altai-krai.yaml" in message  # where the other one is
    assert "'70-pervomayskiy-rayon'" in message  # what to write instead


def test_distinct_ids_in_two_regions_load(tmp_path: Path) -> None:
    rules = load_rules(two_regions(tmp_path, "70-pervomayskiy-rayon"), default_region="22")
    assert "pervomayskiy-rayon" in rules.regions["22"].municipalities
    assert "70-pervomayskiy-rayon" in rules.regions["70"].municipalities
