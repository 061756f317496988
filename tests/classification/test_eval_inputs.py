"""Labelled files as outside evaluators hand them in (issue 4: independent labelled sets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.classification import cli
from workers.classification.dataio import read_labelled

ROWS = [
    {"text": "В подъезде сильно пахнет газом, дети дома", "category": "housing_utilities",
     "urgent": True},
    {"text": "Яма на дороге по улице Ленина", "category": "roads", "urgent": False},
    {"text": "Автобус 15 не ходит по расписанию", "category": "transport", "urgent": False},
]
EXPECTED = [(r["text"], r["category"], r["urgent"]) for r in ROWS]


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _read(path: Path) -> list[tuple[str, str, bool]]:
    return [(e.text, e.category, e.urgent) for e in read_labelled(path)]


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A file saved by a Windows editor was refused: 'BOM is not supported'."""
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + _jsonl(ROWS).encode())
    assert _read(p) == EXPECTED
    assert cli.main(["classify", "eval", "--data", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 3


def test_files_concatenated_with_their_byte_order_marks(tmp_path: Path) -> None:
    p = tmp_path / "cat.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + _jsonl(ROWS[:1]).encode()
                  + b"\xef\xbb\xbf" + _jsonl(ROWS[1:]).encode())
    assert _read(p) == EXPECTED
