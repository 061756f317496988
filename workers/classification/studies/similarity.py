"""Check that new training phrasings are not close to any held-out line, without showing the lines.

Why it exists: a training phrasing that happens to repeat a held-out line's wording would make the
held-out score measure recall of that line. The writer of new phrasings must not read held-out
files, so this prints only the new phrasing's id and its closeness scores: the highest
character-4-gram Jaccard against any held-out line and whether any word 4-gram is shared. The
writer rewords what is flagged and runs it again.

Run: ``.venv/bin/python -m workers.classification.studies.similarity MODULE_OR_TSV [...]
[--against training]`` where a module is a bank (``PROBLEMS``), e.g.
``workers/classification/corpusgen/bank_d.py``; ``--against training`` checks a new check set's
phrasings against every training line instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from workers.classification import train as training
from workers.classification.corpusgen.generate import read_handwritten
from workers.classification.studies import blind_labels

#: Flag at or above this character-4-gram Jaccard (session 7's rewritten lines topped at 0.315).
JACCARD_FLAG = 0.35
_WORD = re.compile(r"\w+")
#: Stands for a slot (``{addr}``, ``{temp}``...): the generator fills slots with values the
#: held-out lines share by design (streets, towns, frost), so no gram spans one.
SLOT = "slotmarker"
_SLOT_RE = re.compile(r"\{\w+\}")


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().replace("ё", "е")))


def char_grams(text: str, n: int = 4) -> set[str]:
    grams: set[str] = set()
    for part in _norm(text).split(SLOT):
        t = part.strip()
        grams |= {t[i:i + n] for i in range(max(len(t) - n + 1, 0))}
    return grams


def word_grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = _norm(text).split()
    return {g for i in range(max(len(w) - n + 1, 0)) if SLOT not in (g := tuple(w[i:i + n]))}


def phrasings(path: Path) -> list[tuple[str, str]]:
    """(id, text with each slot a marker no gram spans) of a bank module or a hand-written
    TSV."""
    if path.suffix == ".tsv":
        return [(str(r["tpl"]), str(r["text"])) for r in read_handwritten(path)]
    return [(f"{path.stem}:{ref}", _SLOT_RE.sub(f" {SLOT} ", text))
            for ref, text, _urgent in blind_labels.phrasings(blind_labels.load_bank(path))]


def held_out_texts(corpus: Path = training.CORPUS_DIR) -> list[str]:
    return _texts(sorted(corpus.glob("test*.jsonl")))


def training_texts(corpus: Path = training.CORPUS_DIR) -> list[str]:
    return _texts(training.training_files(corpus))


def _texts(paths: Sequence[Path]) -> list[str]:
    return [str(orjson.loads(line)["text"]) for p in paths
            for line in p.read_bytes().splitlines() if line.strip()]


def closeness(new: Iterable[tuple[str, str]],
              held_out: Sequence[str]) -> list[tuple[str, float, bool]]:
    """Per new phrasing: (id, highest char-4-gram Jaccard, shares a word 4-gram)."""
    grams = [(char_grams(t), word_grams(t)) for t in held_out]
    out = []
    for pid, text in new:
        c, w = char_grams(text), word_grams(text)
        best = max((len(c & hc) / len(c | hc) for hc, _ in grams if c | hc), default=0.0)
        shared = any(w & hw for _, hw in grams)
        out.append((pid, best, shared))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--against", choices=("held-out", "training"), default="held-out",
                    help="compare with every held-out line (new training phrasings) or every "
                         "training line (new check-set phrasings)")
    args = ap.parse_args(argv)
    held = held_out_texts() if args.against == "held-out" else training_texts()
    flagged = 0
    for path in args.files:
        for pid, jac, shared in closeness(phrasings(path), held):
            if jac >= JACCARD_FLAG or shared:
                flagged += 1
                print(f"FLAG {pid}: char-4-gram Jaccard {jac:.3f}, shares a word 4-gram: {shared}")
    print(f"{flagged} flagged (Jaccard >= {JACCARD_FLAG} or a shared word 4-gram)")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
