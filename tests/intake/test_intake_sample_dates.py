"""The README's by-hand examples that feed the packaged samples to intake must work today.

The samples of tests/data/intake/ are dated January 2025 (tests pin their clocks to that), so
once they were older than APPEALS_INTAKE_MAX_AGE (a year by default) the README's kcat example
fed a worker appeals it dead-lettered as ``invalid_value`` without saying so (review of the
CLI). A README paragraph naming such a sample must name the setting that lets them in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson

from schemas.validation import parse_datetime
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _oldest(path: Path) -> datetime:
    stamps = [parse_datetime(orjson.loads(line)["submitted_at"])
              for line in path.read_bytes().splitlines() if line.strip()]
    return min(stamps)


def test_a_readme_example_with_samples_too_old_for_the_default_names_the_setting() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    max_age = Settings().intake_max_age
    now = datetime.now(UTC)
    checked = 0
    for paragraph in readme.split("\n\n"):
        for name in re.findall(r"tests/data/intake/([\w.-]+\.jsonl)", paragraph):
            checked += 1
            age = (now - _oldest(REPO / "tests" / "data" / "intake" / name)).total_seconds()
            if age > max_age:
                assert "APPEALS_INTAKE_MAX_AGE" in paragraph, (name, paragraph)
    assert checked
