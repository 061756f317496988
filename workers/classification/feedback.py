"""Turn human triage decisions into training-corpus lines (``classify export-feedback``).

A triage decision is the best label we will ever get for a hard appeal, so it goes back into
the corpus. The same appeal can be re-triaged; the *last* decision for an ``appeal_id`` wins.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from .dataio import DataError
from .lexicons import CATEGORIES

__all__ = ["export_feedback"]


def export_feedback(src: Path, out: Path) -> int:
    """Read triage JSONL (``appeal_id``, ``text``, ``category``, ``urgent``) → corpus JSONL.

    Returns the number of lines written. Lines without text or with an unknown category raise
    :class:`DataError` naming the line, because silently dropping a human decision hides bugs.
    """
    latest: dict[str, dict[str, object]] = {}
    for n, raw in enumerate(Path(src).read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DataError(f"{src}:{n}: invalid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{src}:{n}: expected a JSON object")
        aid, text, cat = obj.get("appeal_id"), obj.get("text"), obj.get("category")
        if aid is None or not isinstance(text, str) or not text.strip():
            raise DataError(f"{src}:{n}: needs 'appeal_id' and non-empty 'text'")
        if cat not in CATEGORIES:
            raise DataError(f"{src}:{n}: unknown category {cat!r}")
        key = str(aid)
        latest.pop(key, None)  # re-insert so output order follows the latest decision
        latest[key] = {"text": text, "category": cat, "urgent": bool(obj.get("urgent", False)),
                       "style": "feedback", "appeal_id": key}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("wb") as fh:
        for row in latest.values():
            fh.write(orjson.dumps(row) + b"\n")
    return len(latest)
