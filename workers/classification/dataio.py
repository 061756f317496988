"""Reading labelled JSONL with errors that name the file and line (people edit these by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from .lexicons import CATEGORIES

__all__ = ["DataError", "Example", "read_labelled"]

_UTF8_BOM = b"\xef\xbb\xbf"


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


def read_labelled(path: Path, *, require_urgent: bool = True) -> list[Example]:
    """Parse ``{"text", "category", "urgent"[, "style"]}`` lines; blank lines are skipped."""
    out: list[Example] = []
    p = Path(path)
    try:
        raw_lines = p.read_bytes().splitlines()
    except OSError as e:
        raise DataError(f"{p}: cannot read: {e.strerror or e}") from e
    for n, raw in enumerate(raw_lines, 1):
        # Windows editors (Notepad, Excel's "CSV UTF-8") start a UTF-8 file with a byte order
        # mark, which orjson refuses; a file concatenated from such files has one mid-file.
        raw = raw.removeprefix(_UTF8_BOM)
        if not raw.strip():
            continue
        where = f"{p}:{n}"
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DataError(f"{where}: invalid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        text, cat = obj.get("text"), obj.get("category")
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string")
        if cat not in CATEGORIES:
            raise DataError(f"{where}: unknown category {cat!r}; expected one of "
                            f"{', '.join(CATEGORIES)}")
        urgent = _parse_bool(obj.get("urgent", False if not require_urgent else None))
        if urgent is None:
            raise DataError(f"{where}: 'urgent' must be true or false")
        out.append(Example(text, str(cat), urgent, str(obj.get("style", ""))))
    return out
