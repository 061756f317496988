"""`appeals config` names every APPEALS_* variable the code reads.

Sub-systems that read their own variables (the gateway builds its names from a prefix) are
listed by hand in ``streams.settings.OTHER_VARIABLES``; the gateway's Open311 retry window was
added without a line there, so an operator could not find it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
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
    # TOOLING_VARIABLES (the tests' own, named in streams/settings.py so that setting them
    # draws no unknown-variable warning) are printed by `appeals config` too.
    listed = {name for name, _default, _meaning in S.OTHER_VARIABLES + S.TOOLING_VARIABLES}
    assert len(seen) > 40, "the scan finds the variables"
    assert sorted(seen - settings - listed) == []


def _first_paragraphs() -> dict[str, str]:
    """Field name -> first paragraph of its docstring in streams/settings.py, read with ast."""
    tree = ast.parse((ROOT / "streams" / "settings.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    docs: dict[str, str] = {}
    for field, doc in itertools.pairwise(cls.body):
        if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)):
            paragraph = inspect.cleandoc(doc.value.value).split("\n\n")[0]
            docs[field.target.id] = " ".join(paragraph.split()).split(": ", 1)[-1]
    return docs


def test_config_shows_each_description_up_to_its_first_blank_line() -> None:
    """Only a docstring's first line was shown: three descriptions ended mid-sentence, losing
    the limit they state."""
    docs = _first_paragraphs()
    del docs["extra"]  # the config file's other tables: not a variable
    rows = {var: meaning for var, _default, meaning in S.Settings.describe()}
    assert len(docs) == len(rows) > 50
    for name, doc in docs.items():
        assert rows[f"APPEALS_{name.upper()}"] == doc
    assert rows["APPEALS_BATCH_LINGER"].endswith(
        "only with natural batches, which hand a batch over when nothing more is waiting).")
    assert rows["APPEALS_SLA_PENDING_MAX_AGE"].endswith("(an hour to 366 days).")
    assert rows["APPEALS_METRICS_HOST"].endswith("the demo uses 127.0.0.1).")
    # a second paragraph is detail for the source, not the table
    assert rows["APPEALS_SLA_FUTURE_TOLERANCE"] == (
        "seconds (wall clock) events may be stamped ahead of now.")
