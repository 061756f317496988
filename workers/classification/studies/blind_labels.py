"""A bank's phrasings for a blind second annotator, and where that annotator disagrees with it.

Why it exists: whoever writes a bank's phrasings also labels them; a second annotator who sees
neither the labels nor the bank checks them. Session 9's rule (``corpus/bank_s9/RULE.md``) drops
a phrasing from its bank when the two disagree on category or urgency, so the checked labels
need no adjudication by whoever tunes the model.

Run: ``python -m workers.classification.studies.blind_labels items BANK.py OUT.tsv --seed N``
writes ``id<TAB>text`` (slots filled with one neutral value each, shuffled; the key, id to
phrasing, goes to ``OUT.key.tsv``); ``... agree BANK.py OUT.key.tsv LABELS.tsv`` prints the
agreement and every disagreement from the annotator's ``id<TAB>category<TAB>urgent`` lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from workers.classification.studies.bank_audit import fill, kappa

#: Key prefix of a phrasing dropped from its bank after the annotation (its later indices shift).
DROPPED = "dropped:"


def drop(key: Path, ref: str) -> None:
    """Mark ``ref`` (``<category>:<index>``) dropped in ``key`` and shift the later indices of
    its category down by one, as removing it from the bank's list does."""
    cat, index = ref.rsplit(":", 1)
    lines = []
    for line in key.read_text(encoding="utf-8").splitlines():
        qid, r = line.split("\t")
        if not r.startswith(DROPPED) and r.rsplit(":", 1)[0] == cat:
            i = int(r.rsplit(":", 1)[1])
            if i == int(index):
                r = DROPPED + r
            elif i > int(index):
                r = f"{cat}:{i - 1}"
        lines.append(f"{qid}\t{r}\n")
    key.write_text("".join(lines), encoding="utf-8")


def load_bank(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot import")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def phrasings(bank: ModuleType) -> list[tuple[str, str, bool]]:
    """(``<category>:<index>``, text, urgent) in bank order."""
    return [(f"{cat}:{i}", text, bool(urgent))
            for cat, items in bank.PROBLEMS.items() for i, (text, urgent) in enumerate(items)]


def write_items(bank: ModuleType, out: Path, seed: int) -> int:
    rows = phrasings(bank)
    random.Random(seed).shuffle(rows)
    with out.open("w", encoding="utf-8") as items, \
            out.with_suffix(".key.tsv").open("w", encoding="utf-8") as key:
        for n, (ref, text, _urgent) in enumerate(rows, 1):
            items.write(f"Q{n:03d}\t{fill(text)}\n")
            key.write(f"Q{n:03d}\t{ref}\n")
    return len(rows)


def disagreements(bank: ModuleType, key: Path,
                  labels: Path) -> tuple[list[tuple[str, str, bool, str, bool]], float, float]:
    """Every phrasing where the annotator's category or urgency differs from the bank's, as
    (ref, bank category, bank urgent, annotator category, annotator urgent); plus kappas."""
    by_ref = {ref: (ref.split(":")[0], urgent) for ref, _text, urgent in phrasings(bank)}
    ref_of = dict(line.split("\t")[:2] for line in key.read_text(encoding="utf-8").splitlines()
                  if line.strip())
    # A phrasing the rule dropped (writer and annotator disagreed) is keyed ``dropped:<ref>``.
    ref_of = {q: ref for q, ref in ref_of.items() if not ref.startswith(DROPPED)}
    theirs: dict[str, tuple[str, bool]] = {}
    for line in labels.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        qid, cat, urg = line.split("\t")[:3]
        if qid.strip() in ref_of:
            theirs[ref_of[qid.strip()]] = (cat.strip(), urg.strip() == "1")
    missing = sorted(set(by_ref) - set(theirs))
    if missing:
        raise SystemExit(f"{labels}: no label for {len(missing)} phrasings, e.g. {missing[:3]}")
    refs = sorted(by_ref)
    out = [(r, *by_ref[r], *theirs[r]) for r in refs if by_ref[r] != theirs[r]]
    k_cat = kappa([by_ref[r][0] for r in refs], [theirs[r][0] for r in refs])
    k_urg = kappa([by_ref[r][1] for r in refs], [theirs[r][1] for r in refs])
    return out, k_cat, k_urg


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("items", help="shuffled, unlabelled phrasings for the annotator")
    p.add_argument("bank", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, required=True)
    p = sub.add_parser("agree", help="compare the annotator's labels with the bank's")
    p.add_argument("bank", type=Path)
    p.add_argument("key", type=Path)
    p.add_argument("labels", type=Path)
    args = ap.parse_args(argv)
    bank = load_bank(args.bank)
    if args.cmd == "items":
        print(f"{write_items(bank, args.out, args.seed)} phrasings -> {args.out}")
        return 0
    diff, k_cat, k_urg = disagreements(bank, args.key, args.labels)
    n = len(phrasings(bank))
    print(f"{n} phrasings; agree on both {n - len(diff)}; kappa category {k_cat:.3f}, "
          f"urgent {k_urg:.3f}")
    for ref, bc, bu, ac, au in diff:
        print(f"  {ref}: bank {bc}/{int(bu)}, annotator {ac}/{int(au)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
