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
from workers.classification.lexicons import CATEGORIES
from workers.classification.studies import cv

VARIANTS = ("C", "CxF")
ASSIGNMENTS = 16
#: The guide's canonical non-urgent roads complaint (``tests/classification/test_classifier.py``).
ROAD_SNOW = "Снег на проезжей части не убирают, машины буксуют"


def _features(x: Any, proba: np.ndarray, fired: np.ndarray, variant: str) -> Any:
    """The shipped urgency features, plus the variant's category columns."""
    if variant == "shipped":
        return x
    extra = proba if variant == "C" else np.hstack([proba, proba * fired[:, None]])
    return sparse.hstack([x, sparse.csr_matrix(extra)]).tocsr()


def run(held_out: bool) -> None:
    data = cv.training_data()
    n_cat = data.n_cat
    fired_col = data.feat.block_slices()["urg"].stop - 1  # "a live urgency rule fired"

    def fired(x: Any) -> np.ndarray:
        return (x[:, fired_col].toarray().ravel() > 0).astype(np.float64)

    def oof_scores(splits: cv.Splits) -> dict[str, np.ndarray]:
        proba = cv.oof_category_proba(data.x[:, :n_cat], data, splits)
        return {v: cv.oof_urgency(_features(data.x, proba, fired(data.x), v), data, splits)
                for v in ("shipped", *VARIANTS)}

    # train.py's own folds: its threshold rule and CV P / R for each variant.
    thresholds = {}
    for variant, scores in oof_scores(cv.own_splits(data)).items():
        t = thresholds[variant] = training._pick_threshold(scores, data.y_urg)
        print(f"{variant:8} train.py folds: threshold {t}, CV "
              f"{cv.precision_recall(scores >= t, data.y_urg)}, "
              f"P@R.95 {cv.p_at_recall(scores, data.y_urg):.3f}", flush=True)
    gains: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in range(ASSIGNMENTS):
        by_variant = oof_scores(cv.random_splits(data, seed))
        base = cv.p_at_recall(by_variant["shipped"], data.y_urg)
        for variant in VARIANTS:
            gains[variant].append(cv.p_at_recall(by_variant[variant], data.y_urg) - base)
    for variant in VARIANTS:
        g = np.array(gains[variant])
        se = g.std(ddof=1) / np.sqrt(len(g))
        print(f"{variant:8} P@R.95 gain over {ASSIGNMENTS} assignments: {g.mean():+.4f} ± "
              f"{se:.4f} s.e., better on {int((g > 0).sum())}", flush=True)
    if held_out:
        _score_held_out(data, thresholds, fired)


def _score_held_out(data: cv.TrainingData, thresholds: dict[str, float], fired: Any) -> None:
    """The variants trained as ``train.py`` would train them, on the held-out files and on the
    canonical road complaint; for the variants, also the urgency weights of the categories."""
    n_cat = data.n_cat
    category = cv.category_model().fit(data.x[:, :n_cat], data.y_cat)
    # Training rows carry out-of-fold probabilities (train.py's folds), as in the CV above.
    train_proba = cv.oof_category_proba(data.x[:, :n_cat], data, cv.own_splits(data))

    def proba_of(x: Any) -> np.ndarray:
        out = np.zeros((x.shape[0], len(CATEGORIES)))
        out[:, category.classes_] = category.predict_proba(x[:, :n_cat])
        return out

    road = cv.LabelledSet([ROAD_SNOW], data.feat.transform_texts([ROAD_SNOW])[0], np.zeros(1),
                          np.zeros(1, dtype=bool))
    for variant in ("shipped", *VARIANTS):
        model = cv.urgency_model().fit(
            _features(data.x, train_proba, fired(data.x), variant), data.y_urg,
            sample_weight=data.weight)
        parts = []
        for name in cv.HELD_OUT:
            h = data.labelled(name)
            xt = _features(h.x, proba_of(h.x), fired(h.x), variant)
            pred = model.predict_proba(xt)[:, 1] >= thresholds[variant]
            parts.append(f"{name} {cv.precision_recall(pred, h.y_urg)}")
        print(f"{variant:8} held out: " + "; ".join(parts), flush=True)
        road_x = sparse.csr_matrix(road.x)
        p_road = model.predict_proba(_features(road_x, proba_of(road_x), fired(road_x),
                                               variant))[0, 1]
        print(f"{variant:8} «{ROAD_SNOW}»: urgent probability {p_road:.2f} "
              f"(threshold {thresholds[variant]})", flush=True)
        if variant != "shipped":
            weights = model.coef_[0, data.x.shape[1]:data.x.shape[1] + len(CATEGORIES)]
            print(f"{variant:8} urgency weight of each category probability: " + ", ".join(
                f"{c} {w:+.1f}" for c, w in zip(CATEGORIES, weights, strict=True)), flush=True)


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
