"""``schemas.records.canonical_appeal_id``: one spelling of an appeal id for every key.

Systems outside send UUIDs and hex ids in upper case (SQL Server, .NET); RFC 9562 makes them
case-insensitive. Our ids are lower-case hex, so a hex id of any case is read in lower case;
any other id is kept as sent (guessing at it could join two distinct ids).
"""

from __future__ import annotations

import pytest

from schemas.records import canonical_appeal_id
from workers.intake.core import appeal_id_for


@pytest.mark.parametrize(("sent", "canonical"), [
    ("0B7C7A0E1F7E5A559A0B3D0F", "0b7c7a0e1f7e5a559a0b3d0f"),  # ours, upper case
    ("0b7C7a0E1f7E5a559A0b3D0f", "0b7c7a0e1f7e5a559a0b3d0f"),  # mixed
    ("0B7C7A0E-1F7E-5A55-9A0B-3D0F4F0C2A11", "0b7c7a0e-1f7e-5a55-9a0b-3d0f4f0c2a11"),
    ("0B7C7A0E1F7E5A559A0B3D0F4F0C2A11", "0b7c7a0e1f7e5a559a0b3d0f4f0c2a11"),
    ("0b7c7a0e1f7e5a559a0b3d0f", "0b7c7a0e1f7e5a559a0b3d0f"),  # already canonical
    ("A-1", "A-1"),  # not hex-shaped: kept
    ("APPEAL-0001", "APPEAL-0001"),
    ("0B7C7A0E1F7E5A559A0B3D0", "0B7C7A0E1F7E5A559A0B3D0"),  # 23 digits: not an id of ours
    ("0B7C7A0E1F7E5A559A0B3D0FF", "0B7C7A0E1F7E5A559A0B3D0FF"),  # 25
    ("{0B7C7A0E-1F7E-5A55-9A0B-3D0F4F0C2A11}", "{0B7C7A0E-1F7E-5A55-9A0B-3D0F4F0C2A11}"),
    ("０B7C7A0E1F7E5A559A0B3D0F", "０B7C7A0E1F7E5A559A0B3D0F"),  # a full-width digit
])
def test_canonical_appeal_id(sent: str, canonical: str) -> None:
    assert canonical_appeal_id(sent) == canonical
    assert canonical_appeal_id(canonical) == canonical  # idempotent


def test_ids_made_by_intake_are_canonical() -> None:
    for n in range(200):
        appeal_id = appeal_id_for("fz59", f"ext-{n}")
        assert canonical_appeal_id(appeal_id) == appeal_id
        assert canonical_appeal_id(appeal_id.upper()) == appeal_id
