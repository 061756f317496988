"""Study: how much can a labelled file resolve? Bootstrap intervals over its phrasings.

Why it exists: most of ``test.jsonl`` is generated from template phrasings, two to five lines
each, so its lines are not independent: one missed phrasing costs four lines of recall at once.
A point figure (``classify eval``) hides that. Resampling whole phrasings (lines with the same
``tpl``; a line without one is its own phrasing) with replacement gives the spread a split of
this make-up would show for the same model, and the share of resamples that meet the issue's
targets (urgent recall >= 0.95 at precision >= 0.80, macro-F1 >= 0.90).

Run: ``.venv/bin/python -m workers.classification.studies.split_uncertainty [--model PATH]
[--rounds N] FILE.jsonl [FILE.jsonl ...]`` (files given together are pooled, as
``classify eval`` pools repeated ``--data``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from workers.classification import load_classifier
from workers.classification.evaluate import _prf

TARGET_RECALL = 0.95
TARGET_PRECISION = 0.80
TARGET_MACRO_F1 = 0.90


@dataclass(frozen=True)
class Scored:
    """Per line: gold and predicted category index and urgency, and the line's phrasing group."""

    gold_cat: np.ndarray
    pred_cat: np.ndarray
    gold_urg: np.ndarray
    pred_urg: np.ndarray
    group: np.ndarray
    n_categories: int


def score(paths: Sequence[Path], model: str | None = None) -> Scored:
    rows = [orjson.loads(line) for path in paths
            for line in path.read_bytes().splitlines() if line.strip()]
    results = load_classifier(model).classify_batch([str(r["text"]) for r in rows])
    cats = sorted({str(r["category"]) for r in rows} | {c.category for c in results})
    index = {c: i for i, c in enumerate(cats)}
    groups: dict[str, int] = {}
    group = [groups.setdefault(str(r.get("tpl") or f"line:{i}"), len(groups))
             for i, r in enumerate(rows)]
    return Scored(
        gold_cat=np.array([index[str(r["category"])] for r in rows]),
        pred_cat=np.array([index[c.category] for c in results]),
        gold_urg=np.array([bool(r["urgent"]) for r in rows]),
        pred_urg=np.array([c.urgent for c in results]),
        group=np.array(group),
        n_categories=len(cats),
    )


def figures(s: Scored, weights: np.ndarray) -> tuple[float, float, float]:
    """(macro-F1, urgent precision, urgent recall) with each line counted ``weights`` times:
    ``classify eval``'s arithmetic (:func:`evaluate._prf`, macro over the gold categories) on
    weighted counts."""
    f1s = []
    for c in range(s.n_categories):
        g, p = s.gold_cat == c, s.pred_cat == c
        if not weights[g].sum():
            continue
        tp = weights[g & p].sum()
        f1s.append(_prf(tp, weights[p].sum() - tp, weights[g].sum() - tp)[2])
    tp = weights[s.gold_urg & s.pred_urg].sum()
    precision, recall, _f1 = _prf(tp, weights[s.pred_urg].sum() - tp,
                                  weights[s.gold_urg].sum() - tp)
    return float(np.mean(f1s)), float(precision), float(recall)


def bootstrap(s: Scored, rounds: int, seed: int = 8) -> np.ndarray:
    """``rounds`` x 3 figures, each from the phrasings drawn with replacement."""
    rng = np.random.default_rng(seed)
    n_groups = int(s.group.max()) + 1
    out = np.empty((rounds, 3))
    for k in range(rounds):
        drawn = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        out[k] = figures(s, drawn[s.group].astype(float))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="JSONL files, pooled")
    ap.add_argument("--model", default=None, help="model file (default: shipped model)")
    ap.add_argument("--rounds", type=int, default=2000, help="bootstrap resamples")
    args = ap.parse_args(argv)
    s = score(args.files, args.model)
    point = figures(s, np.ones(len(s.group)))
    boot = bootstrap(s, args.rounds)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    print(f"{len(s.group)} lines, {int(s.group.max()) + 1} phrasings, "
          f"{int(s.gold_urg.sum())} urgent; {args.rounds} resamples of whole phrasings")
    for j, name in enumerate(("macro-F1", "urgent precision", "urgent recall")):
        print(f"  {name:17} {point[j]:.3f}  95% interval {lo[j]:.3f}-{hi[j]:.3f}")
    urgency = (boot[:, 2] >= TARGET_RECALL) & (boot[:, 1] >= TARGET_PRECISION)
    print(f"  resamples meeting the urgency target: {urgency.mean():.1%}; "
          f"the category target: {(boot[:, 0] >= TARGET_MACRO_F1).mean():.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
