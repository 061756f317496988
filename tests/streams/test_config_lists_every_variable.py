"""`appeals config` names every APPEALS_* variable the code reads.

Sub-systems that read their own variables (the gateway builds its names from a prefix) are
listed by hand in ``streams.settings.OTHER_VARIABLES``; the gateway's Open311 retry window was
added without a line there, so an operator could not find it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from streams import settings as S

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bAPPEALS_[A-Z0-9_]*[A-Z0-9]\b")


def test_every_variable_in_the_code_is_a_setting_or_listed() -> None:
    seen: set[str] = set()
    for folder in ("workers", "streams", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            seen |= set(NAME.findall(path.read_text(encoding="utf-8")))
    settings = {"APPEALS_" + f.name.upper() for f in dataclasses.fields(S.Settings)}
    listed = {name for name, _default, _meaning in S.OTHER_VARIABLES}
    assert len(seen) > 40, "the scan finds the variables"
    assert sorted(seen - settings - listed) == []
