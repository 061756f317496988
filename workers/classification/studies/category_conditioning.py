"""Study: does telling the urgency model the appeal's category help it, on the rework-5 labels?

Why it exists: urgency rework #4 tried category conditioning on the old labels (+0.007 ± 0.005
P@R.95, not significant) and rework #5's notes list it as untested on the relabelled corpus.
Many false alarms are category-shaped (recurring smoke in ecology, "children could get hurt"
in landscaping and education), so the urgency model might use "which body must act" as context.

Variants (columns added to the shipped urgency features, nothing else changed):
- ``C``: the 12 category probabilities, out of fold (the category model of the shipped recipe
  trained on the other folds), so training rows carry probabilities as noisy as a new text's;
- ``CxF``: ``C`` plus each probability times the "a live urgency rule fired" column.

The decision rule was written down before the first run (corpus README, "Study: category
conditioning"): ship a variant only if, over 16 fold assignments, its paired P@R.95 gain is at
least 2 standard errors and at least 0.01, and ``train.py``'s threshold rule keeps CV recall
≥ 0.930. Held-out files are scored only with ``--held-out``, after the decision. (``C`` passed
that rule on 2026-11-26 and was still not shipped: trained in, it made the canonical
"snow on the carriageway not cleared" appeal urgent; the README says why.)

Run: ``.venv/bin/python -m workers.classification.studies.category_conditioning [--held-out]``
(~5 minutes on this machine).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from scipy import sparse

from workers.classification import train as training
from workers.classification.dataio import read_labelled
from workers.classification.features import Featurizer, analyse
from workers.classification.lexicons import CATEGORIES, LEXICON_DIR, load_lexicons
from workers.classification.studies.word_vectors import (
    HELD_OUT,
    _fold_assignment,
    _p_at_recall,
)

VARIANTS = ("C", "CxF")
ASSIGNMENTS = 16


def _extra(probabilities: np.ndarray, fired: np.ndarray, variant: str) -> Any:
    if variant == "C":
        return sparse.csr_matrix(probabilities)
    return sparse.csr_matrix(np.hstack([probabilities, probabilities * fired[:, None]]))


def run(held_out: bool) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    files = training.training_files(training.CORPUS_DIR)
    examples = [e for f in files for e in read_labelled(f)]
    docs = [analyse(e.text) for e in examples]
    feat = Featurizer(lexicons=load_lexicons(LEXICON_DIR)).fit(docs)
    x, _, _ = feat.transform(docs)
    x = sparse.csr_matrix(x)
    blocks = feat.block_slices()
    n_cat = blocks["lex"].stop
    fired = (x[:, blocks["urg"].stop - 1].toarray().ravel() > 0).astype(np.float64)
    y_cat = np.array([CATEGORIES.index(e.category) for e in examples])
    y_urg = np.array([e.urgent for e in examples], dtype=bool)
    group_list, handwritten = training._groups(files)
    groups = np.array(group_list)
    weight = np.where(np.array(handwritten, dtype=bool), training.HANDWRITTEN_WEIGHT, 1.0)

    def category_model() -> Any:
        return LogisticRegression(C=training.CAT_C, max_iter=3000, random_state=training.SEED)

    def urgency_model() -> Any:
        return LogisticRegression(C=training.URG_C, max_iter=3000, class_weight="balanced",
                                  random_state=training.SEED)

    def oof_scores(splits: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        probabilities = np.zeros((len(y_cat), len(CATEGORIES)))
        for tr, va in splits:
            m = category_model().fit(x[tr, :n_cat], y_cat[tr])
            probabilities[np.ix_(va, m.classes_)] = m.predict_proba(x[va, :n_cat])
        out = {}
        for variant in ("shipped", *VARIANTS):
            xs = x if variant == "shipped" else sparse.hstack(
                [x, _extra(probabilities, fired, variant)]).tocsr()
            scores = np.zeros(len(y_urg))
            for tr, va in splits:
                m = urgency_model().fit(xs[tr], y_urg[tr], sample_weight=weight[tr])
                scores[va] = m.predict_proba(xs[va])[:, 1]
            out[variant] = scores
        return out

    # train.py's own folds: its threshold rule and CV P / R for each variant.
    own = oof_scores(list(GroupKFold(training.CV_FOLDS).split(x, y_urg, groups)))
    thresholds = {}
    for variant, scores in own.items():
        t = thresholds[variant] = training._pick_threshold(scores, y_urg)
        pred = scores >= t
        tp = int((pred & y_urg).sum())
        print(f"{variant:8} train.py folds: threshold {t}, CV P {tp / max(int(pred.sum()), 1):.3f}"
              f" / R {tp / int(y_urg.sum()):.3f}, P@R.95 {_p_at_recall(scores, y_urg):.3f}",
              flush=True)
    gains: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in range(ASSIGNMENTS):
        splits = list(GroupKFold(5).split(x, y_urg, _fold_assignment(groups, seed)))
        by_variant = oof_scores(splits)
        base = _p_at_recall(by_variant["shipped"], y_urg)
        for variant in VARIANTS:
            gains[variant].append(_p_at_recall(by_variant[variant], y_urg) - base)
    for variant in VARIANTS:
        g = np.array(gains[variant])
        se = g.std(ddof=1) / np.sqrt(len(g))
        print(f"{variant:8} P@R.95 gain over {ASSIGNMENTS} assignments: {g.mean():+.4f} ± "
              f"{se:.4f} s.e., better on {int((g > 0).sum())}", flush=True)
    if not held_out:
        return

    cat_full = category_model().fit(x[:, :n_cat], y_cat)
    # Training rows get out-of-fold probabilities on train.py's folds, as in the CV above.
    probabilities = np.zeros((len(y_cat), len(CATEGORIES)))
    for tr, va in GroupKFold(training.CV_FOLDS).split(x, y_urg, groups):
        m = category_model().fit(x[tr, :n_cat], y_cat[tr])
        probabilities[np.ix_(va, m.classes_)] = m.predict_proba(x[va, :n_cat])
    for variant in ("shipped", *VARIANTS):
        xs = x if variant == "shipped" else sparse.hstack(
            [x, _extra(probabilities, fired, variant)]).tocsr()
        model = urgency_model().fit(xs, y_urg, sample_weight=weight)
        parts = []
        for name in HELD_OUT:
            rows = read_labelled(training.CORPUS_DIR / f"{name}.jsonl")
            xt = sparse.csr_matrix(feat.transform([analyse(e.text) for e in rows])[0])
            yt = np.array([e.urgent for e in rows], dtype=bool)
            if variant != "shipped":
                pt = np.zeros((len(rows), len(CATEGORIES)))
                pt[:, cat_full.classes_] = cat_full.predict_proba(xt[:, :n_cat])
                ft = (xt[:, blocks["urg"].stop - 1].toarray().ravel() > 0).astype(np.float64)
                xt = sparse.hstack([xt, _extra(pt, ft, variant)]).tocsr()
            pred = model.predict_proba(xt)[:, 1] >= thresholds[variant]
            tp = int((pred & yt).sum())
            precision, recall = tp / max(int(pred.sum()), 1), tp / int(yt.sum())
            parts.append(f"{name} P {precision:.3f} / R {recall:.3f}")
        print(f"{variant:8} held out: " + "; ".join(parts), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.classification.studies.category_conditioning",
        description="Group CV of the urgency model with and without the appeal's category "
                    "probabilities as features (a study; the shipped model has none).")
    parser.add_argument("--held-out", action="store_true",
                        help="also score the held-out files (only after the decision)")
    run(parser.parse_args(argv).held_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
