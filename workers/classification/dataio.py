"""Reading labelled JSONL with errors that name the file and line (people edit these by hand)."""

from __future__ import annotations

import gzip
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from .lexicons import CATEGORIES

__all__ = ["DataError", "Example", "read_labelled"]

_UTF8_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """A labelled file is malformed; the message names the file and line number."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled appeal."""

    text: str
    category: str
    urgent: bool
    style: str = ""


def _parse_bool(v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    if v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _not_utf8(data: bytes, p: Path) -> str | None:
    """Why ``data`` cannot be read as UTF-8 text, naming the encoding it looks like, or None.

    orjson's own message for such bytes ("surrogates not allowed") sent people looking for a
    JSON problem where the file only needed re-saving as UTF-8."""
    head = data[:200]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head.count(0) > len(head) // 4:
        return (f"{p}: not UTF-8 (looks like UTF-16); save it as UTF-8, e.g. "
                "iconv -f utf-16 -t utf-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        high = [b for b in data if b >= 0xC0]
        # Russian text is mostly lower case: 0xE0-0xFF in Windows-1251, 0xC0-0xDF in KOI8-R.
        name, iconv = ("Windows-1251", "cp1251") if sum(b >= 0xE0 for b in high) * 2 >= len(high) \
            else ("KOI8-R", "koi8-r")
        return (f"{p}:{line}: not UTF-8 (looks like {name}); save it as UTF-8, e.g. "
                f"iconv -f {iconv} -t utf-8")
    return None


def read_labelled(path: Path | str, *, require_urgent: bool = True) -> list[Example]:
    """Parse ``{"text", "category", "urgent"[, "style"]}`` lines; blank lines are skipped.

    ``path`` ``-`` reads standard input. Also read, because evaluators outside the project
    hand such files in: a gzip-compressed file, a UTF-8 byte order mark, and one JSON array of
    those objects instead of JSON Lines. The category is compared without surrounding
    whitespace and case (``" Roads\u00a0"`` is roads). Anything else that is wrong stops the
    read naming the file and line: a line silently skipped would change the figures.
    """
    p = Path(path)
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else p.read_bytes()
    except OSError as e:
        raise DataError(f"{p}: cannot read: {e.strerror or e}") from e
    if str(path) == "-":
        p = Path("<stdin>")
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{p}: a gzip file that cannot be decompressed ({e})") from None
    problem = _not_utf8(data.removeprefix(_UTF8_BOM), p)
    if problem:
        raise DataError(problem)
    records = _json_array(data.removeprefix(_UTF8_BOM), p)
    if records is None:
        records = _json_lines(data, p)
    return [_example(obj, where, require_urgent) for where, obj in records]


def _json_array(data: bytes, p: Path) -> list[tuple[str, object]] | None:
    """The records of a file that is one JSON array, or None for a file of JSON Lines."""
    if not data.lstrip().startswith(b"["):
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        first = next((line for line in data.splitlines() if line.strip()), b"")
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            # Not JSON Lines either ("[" alone on line 1): the array's own error says where.
            raise DataError(f"{p}: a JSON array that is not valid JSON ({e}); eval reads "
                            "JSON Lines (one object per line) or one array of objects") from None
        return None  # a JSON Lines file whose lines are arrays: refused line by line
    if not isinstance(doc, list):
        return None
    return [(f"{p}: array item {i}", obj) for i, obj in enumerate(doc, 1)]


def _json_lines(data: bytes, p: Path) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for n, raw in enumerate(data.splitlines(), 1):
        # Windows editors (Notepad, Excel's "CSV UTF-8") start a UTF-8 file with a byte order
        # mark, which orjson refuses; a file concatenated from such files has one mid-file.
        raw = raw.removeprefix(_UTF8_BOM)
        if not raw.strip():
            continue
        where = f"{p}:{n}"
        try:
            out.append((where, orjson.loads(raw)))
        except orjson.JSONDecodeError as e:
            raise DataError(f"{where}: invalid JSON ({e})") from None
    return out


def _example(obj: object, where: str, require_urgent: bool) -> Example:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in ("text", "category") + (("urgent",) if require_urgent else ()):
        if key not in obj:
            raise DataError(f"{where}: {key!r} missing (the line has "
                            f"{', '.join(map(repr, obj)) or 'no keys'})")
    text, cat = obj["text"], obj["category"]
    if not isinstance(text, str):
        raise DataError(f"{where}: 'text' must be a string")
    category = cat.strip().lower() if isinstance(cat, str) else cat
    if category not in CATEGORIES:
        raise DataError(f"{where}: unknown category {cat!r}; expected one of "
                        f"{', '.join(CATEGORIES)}")
    urgent = _parse_bool(obj.get("urgent", False))
    if urgent is None:
        raise DataError(f"{where}: 'urgent' must be true or false")
    return Example(text, str(category), urgent, str(obj.get("style", "")))
