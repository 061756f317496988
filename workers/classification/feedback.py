"""Turn human triage decisions into training-corpus lines (``classify export-feedback``).

A triage decision is the best label we will ever get for a hard appeal, so it goes back into
the corpus. The label is the one the appeal was routed with:

- The same appeal can be triaged twice; the *first* decision for an ``appeal_id`` wins, as in
  the triage agent (``workers/route/agent.py``), which routes on the first decision and ignores
  later ones. Lines are taken to be in decision order.
- ``urgent`` is parsed like the labelled files (``true``/``false``, also as strings or 0/1). A
  null or missing ``urgent`` means "keep the classifier's flag" to the agent, and that flag is
  not in this file, so such a line is refused rather than guessed.
- Identical texts (whitespace normalised) are exported once; when their labels disagree, none
  of them is exported, and the count is reported on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from .dataio import DataError, _parse_bool
from .lexicons import CATEGORIES

__all__ = ["export_feedback"]


def _text_key(text: str) -> str:
    return " ".join(text.split())


def export_feedback(src: Path, out: Path) -> int:
    """Read triage JSONL (``appeal_id``, ``text``, ``category``, ``urgent``) → corpus JSONL.

    Returns the number of lines written. Lines without text, with an unknown category or
    without a true/false ``urgent`` raise :class:`DataError` naming the line, because silently
    dropping a human decision hides bugs.
    """
    first: dict[str, dict[str, object]] = {}
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
        if obj.get("urgent") is None:
            raise DataError(f"{src}:{n}: 'urgent' is missing or null (the classifier's flag, "
                            "which this file does not carry); write the urgency the appeal "
                            "was routed with")
        urgent = _parse_bool(obj["urgent"])
        if urgent is None:
            raise DataError(f"{src}:{n}: 'urgent' must be true or false")
        key = str(aid)
        if key in first:
            continue  # a later decision for the same appeal: the agent ignored it too
        first[key] = {"text": text, "category": cat, "urgent": urgent,
                      "style": "feedback", "appeal_id": key}

    by_text: dict[str, list[dict[str, object]]] = {}
    for row in first.values():
        by_text.setdefault(_text_key(str(row["text"])), []).append(row)
    rows: list[dict[str, object]] = []
    conflicting = conflicting_lines = 0
    for same in by_text.values():
        if len({(r["category"], r["urgent"]) for r in same}) > 1:
            conflicting += 1
            conflicting_lines += len(same)
            continue
        rows.append(same[0])
    if conflicting:
        print(f"export-feedback: left out {conflicting} texts ({conflicting_lines} decisions) "
              "whose labels disagree", file=sys.stderr)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    return len(rows)
