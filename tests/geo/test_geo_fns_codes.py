"""Region codes from address registers (ГАР/ФИАС: ФНС subject codes) name the new subjects
(routing fixes, D6).

90, 93 and 95 were the extra plate codes of Moscow Oblast, Krasnodar Krai and Chechnya, and 91
and 94 unknown: an appeal from Zaporozhye Oblast, the DNR or Kherson Oblast with its ГАР code
was routed and timed as one from Moscow Oblast, Krasnodar or Chechnya.
"""

from __future__ import annotations

import pytest

from workers.geo.regions import get_region


@pytest.mark.parametrize(("fns", "canonical", "name"), [
    ("90", "85", "Zaporozhye Oblast"),
    ("91", "82", "Republic of Crimea"),
    ("92", "92", "Sevastopol"),
    ("93", "80", "Donetsk People's Republic"),
    ("94", "81", "Luhansk People's Republic"),
    ("95", "84", "Kherson Oblast"),
])
def test_fns_codes_of_the_new_subjects(fns: str, canonical: str, name: str) -> None:
    region = get_region(fns)
    assert (region.code, region.name_en) == (canonical, name)


@pytest.mark.parametrize(("plate", "canonical"), [
    ("150", "50"), ("190", "50"), ("750", "50"), ("123", "23"), ("20", "20"), ("50", "50"),
])
def test_other_plate_codes_still_name_their_subjects(plate: str, canonical: str) -> None:
    assert get_region(plate).code == canonical
