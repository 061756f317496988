"""Labelled files as outside evaluators hand them in (issue 4: independent labelled sets)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from workers.classification import cli
from workers.classification.dataio import DataError, read_labelled

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


def test_a_gzip_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "set.jsonl.gz"
    p.write_bytes(gzip.compress(_jsonl(ROWS).encode()))
    assert _read(p) == EXPECTED
    bad = tmp_path / "cut.jsonl.gz"
    bad.write_bytes(p.read_bytes()[:20])
    assert cli.main(["classify", "eval", "--data", str(bad)]) == 2
    assert "gzip" in capsys.readouterr().err


@pytest.mark.parametrize(("encoding", "name"), [
    ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("cp1251", "Windows-1251"),
    ("koi8-r", "KOI8-R")])
def test_another_encoding_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   encoding: str, name: str) -> None:
    """cp1251 read 'str is not valid UTF-8: surrogates not allowed', a JSON error."""
    p = tmp_path / "set.jsonl"
    p.write_bytes(_jsonl(ROWS).encode(encoding))
    assert cli.main(["classify", "eval", "--data", str(p), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"not UTF-8 (looks like {name})" in err and "surrogates" not in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("indent", [None, 2])
def test_a_json_array_of_objects_is_read(tmp_path: Path, indent: int | None) -> None:
    p = tmp_path / "set.json"
    p.write_text(json.dumps(ROWS, ensure_ascii=False, indent=indent), encoding="utf-8")
    assert _read(p) == EXPECTED


def test_a_broken_json_array_is_said_to_be_one(tmp_path: Path) -> None:
    p = tmp_path / "set.json"
    p.write_text(json.dumps(ROWS, ensure_ascii=False, indent=2)[:-3], encoding="utf-8")
    with pytest.raises(DataError, match=r"a JSON array that is not valid JSON .*JSON Lines"):
        read_labelled(p)


def test_an_array_item_that_is_no_object_is_named(tmp_path: Path) -> None:
    p = tmp_path / "set.json"
    p.write_text(json.dumps([ROWS[0], 5], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"array item 2: expected a JSON object, got int"):
        read_labelled(p)


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(_jsonl(ROWS).encode())))
    assert cli.main(["classify", "eval", "--data", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 3


@pytest.mark.parametrize("spelling", ["ROADS", " roads ", "roads\u00a0", "Roads\t"])
def test_the_category_ignores_case_and_surrounding_space(tmp_path: Path, spelling: str) -> None:
    p = tmp_path / "set.jsonl"
    p.write_text(_jsonl([dict(ROWS[1], category=spelling)]), encoding="utf-8")
    assert _read(p) == [EXPECTED[1]]


@pytest.mark.parametrize(("row", "message"), [
    ({"text": "Яма", "label": "roads", "urgent": False},
     r":1: 'category' missing \(the line has 'text', 'label', 'urgent'\)"),
    ({"body": "Яма", "category": "roads", "urgent": False}, r":1: 'text' missing"),
    ({"text": "Яма", "category": "roads"}, r":1: 'urgent' missing"),
    ({"text": "Яма", "category": "road", "urgent": False}, r":1: unknown category 'road'"),
])
def test_a_missing_key_is_named(tmp_path: Path, row: dict[str, object], message: str) -> None:
    """A file labelled with 'label' read "unknown category None"."""
    p = tmp_path / "set.jsonl"
    p.write_text(_jsonl([row]), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labelled(p)


def test_an_invalid_line_still_stops_the_read_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "set.jsonl"
    p.write_text(_jsonl(ROWS[:2]) + "not json\n" + _jsonl(ROWS[2:]), encoding="utf-8")
    with pytest.raises(DataError, match=r"set\.jsonl:3: invalid JSON"):
        read_labelled(p)
