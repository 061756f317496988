"""Study: do new hand-written training lines make the urgency model better on the lines it had?

Why it exists: new lines change the corpus that cross-validation scores, so "CV before" and
"CV after" on the whole corpus compare different exams. Here the exam stays fixed: the lines
the model already had (everything except the new file) are split into the same folds for both
variants, and the variant only adds every new line to every fold's training part. The paired
difference is then what the new lines teach about the old lines' phrasings.

Variants: ``without`` (the training data without the new files) and ``with`` (plus the new
files, hand-written weight like every hand-written line). Featurisers are fitted on each
variant's training texts, as ``train.py`` fits them.

Each use of it had a decision rule written down before its first run (the corpus README quotes
them: reworks #7, #8 and #9); ``--held-out`` scores held-out files, which is meant for after
the decision, or with ``--only`` for the development sets a rule names.

Run: ``.venv/bin/python -m workers.classification.studies.extra_lines [--extra FILE.tsv]
[--held-out [--only NAMES]]`` (about 5 minutes on this machine).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.classification import train as training
from workers.classification.corpusgen.generate import read_handwritten
from workers.classification.studies import cv

ASSIGNMENTS = 16
DEFAULT_EXTRA = training.CORPUS_DIR / "handwritten_urgency4_train.tsv"


def _macro_f1(pred: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro"))


def run(extra_paths: Sequence[Path], held_out: Sequence[str]) -> None:
    old = cv.training_data(exclude_tpl_prefix=tuple(f"{p.stem}:" for p in extra_paths))
    rows = [row for p in extra_paths for row in read_handwritten(p)]
    both = cv.training_data_with(old, rows)
    n_old = len(old.y_urg)
    extra_idx = np.arange(n_old, len(both.y_urg))
    print(f"lines the exam is made of: {n_old} ({int(old.y_urg.sum())} urgent); new lines "
          f"{len(rows)} ({int(both.y_urg[n_old:].sum())} urgent), added to every fold's "
          f"training part", flush=True)

    def scores(splits: cv.Splits) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per variant: out-of-fold urgency scores and category predictions on the old lines."""
        out = {}
        for name, data in (("without", old), ("with", both)):
            urg = np.zeros(n_old)
            cat = np.zeros(n_old, dtype=int)
            for tr, va in splits:
                train_idx = tr if data is old else np.concatenate([tr, extra_idx])
                model = cv.urgency_model().fit(data.x[train_idx], data.y_urg[train_idx],
                                               sample_weight=data.weight[train_idx])
                urg[va] = model.predict_proba(data.x[va])[:, 1]
                cat_model = cv.category_model().fit(data.x[train_idx, :data.n_cat],
                                                    data.y_cat[train_idx])
                cat[va] = cat_model.predict(data.x[va, :data.n_cat])
            out[name] = (urg, cat)
        return out

    gains: list[float] = []
    hw_gains: list[float] = []
    f1_gains: list[float] = []
    hw = old.weight > 1
    assignments = [("train.py folds", cv.own_splits(old))] + [
        (f"assignment {seed}", cv.random_splits(old, seed)) for seed in range(ASSIGNMENTS)]
    for label, splits in assignments:
        by = scores(splits)
        p = {v: cv.p_at_recall(s[0], old.y_urg) for v, s in by.items()}
        p_hw = {v: cv.p_at_recall(s[0][hw], old.y_urg[hw]) for v, s in by.items()}
        f1 = {v: _macro_f1(s[1], old.y_cat) for v, s in by.items()}
        gains.append(p["with"] - p["without"])
        hw_gains.append(p_hw["with"] - p_hw["without"])
        f1_gains.append(f1["with"] - f1["without"])
        print(f"{label:16} P@R.95 {p['without']:.3f} -> {p['with']:.3f}; hand-written "
              f"{p_hw['without']:.3f} -> {p_hw['with']:.3f}; category macro-F1 "
              f"{f1['without']:.4f} -> {f1['with']:.4f}", flush=True)
    for name, g in (("P@R.95", gains), ("hand-written P@R.95", hw_gains),
                    ("category macro-F1", f1_gains)):
        a = np.array(g)
        print(f"paired gain, {name}, over {len(a)} assignments: {a.mean():+.4f} ± "
              f"{a.std(ddof=1) / np.sqrt(len(a)):.4f} s.e., better on {int((a > 0).sum())}, "
              f"worse on {int((a < 0).sum())}", flush=True)

    # train.py's threshold rule on each variant's whole corpus (its own folds, all lines).
    thresholds = {}
    for name, data in (("without", old), ("with", both)):
        s = cv.oof_urgency(data.x, data, cv.own_splits(data))
        t = thresholds[name] = training._pick_threshold(s, data.y_urg)
        print(f"{name:8} train.py's rule on its whole corpus: threshold {t}, CV "
              f"{cv.precision_recall(s >= t, data.y_urg)}", flush=True)
    if held_out:
        _score_held_out({"without": old, "with": both}, thresholds, held_out)


def _score_held_out(variants: dict[str, cv.TrainingData], thresholds: dict[str, float],
                    names: Sequence[str]) -> None:
    """Each variant trained on all its lines, as ``train.py`` trains it; per file and pooled:
    urgent P / R at the variant's threshold, false alarms, misses, category errors."""
    from sklearn.metrics import average_precision_score

    for name, data in variants.items():
        urgency = cv.urgency_model().fit(data.x, data.y_urg, sample_weight=data.weight)
        category = cv.category_model().fit(data.x[:, :data.n_cat], data.y_cat)
        pooled_s, pooled_y, cat_errors_all = [], [], 0
        for held in names:
            h = data.labelled(held)
            s = urgency.predict_proba(h.x)[:, 1]
            pred = s >= thresholds[name]
            cat_errors = int((category.predict(h.x[:, :data.n_cat]) != h.y_cat).sum())
            pooled_s.append(s)
            pooled_y.append(h.y_urg)
            cat_errors_all += cat_errors
            print(f"{name:8} {held}: urgent {cv.precision_recall(pred, h.y_urg)}, false alarms "
                  f"{int((pred & ~h.y_urg).sum())}, misses {int((~pred & h.y_urg).sum())}, AP "
                  f"{average_precision_score(h.y_urg, s):.3f}; category errors {cat_errors} of "
                  f"{len(h.y_cat)}", flush=True)
        s_all, y_all = np.concatenate(pooled_s), np.concatenate(pooled_y)
        pred_all = s_all >= thresholds[name]
        print(f"{name:8} pooled: urgent {cv.precision_recall(pred_all, y_all)}, false alarms + "
              f"misses {int((pred_all != y_all).sum())}, AP "
              f"{average_precision_score(y_all, s_all):.3f}; category errors {cat_errors_all} "
              f"of {len(y_all)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.classification.studies.extra_lines",
        description="Paired group CV: the urgency and category models with and without a file "
                    "of new hand-written training lines, scored on the lines they already had.")
    parser.add_argument("--extra", type=Path, action="append",
                        help="hand-written TSV (category, urgent, style, text) to add; repeat "
                             f"for several files (default {DEFAULT_EXTRA.name})")
    parser.add_argument("--held-out", action="store_true",
                        help="also score the held-out files (only after the decision)")
    parser.add_argument("--only", metavar="NAMES",
                        help="with --held-out: comma-separated held-out files to score, e.g. "
                             "test_fresh4,test_fresh5 (default: " + ",".join(cv.HELD_OUT) + ")")
    args = parser.parse_args(argv)
    extra = args.extra or [DEFAULT_EXTRA]
    missing = [str(p) for p in extra if not p.is_file()]
    if missing:
        parser.error(f"--extra: no such file: {', '.join(missing)}")
    if args.only and not args.held_out:
        parser.error("--only chooses which held-out files --held-out scores; give both")
    names = args.only.split(",") if args.only else list(cv.HELD_OUT)
    unknown = [n for n in names if not (training.CORPUS_DIR / f"{n}.jsonl").is_file()]
    if unknown:
        parser.error(f"--only: no such held-out file in {training.CORPUS_DIR}: {unknown}")
    run(extra, names if args.held_out else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
