"""Scoring a labelled file: per-category P/R/F1, confusion matrix, urgent P/R.

Implemented with plain counting (no sklearn import) so ``classify eval`` starts fast and the
numbers are easy to audit. The top category is always scored, whatever its confidence: the
triage threshold is a routing decision, not part of the classifier's accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .classifier import Classification, Classifier
from .dataio import Example
from .lexicons import CATEGORIES

__all__ = ["evaluate", "format_report", "score"]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(examples: Sequence[Example], preds: Sequence[Classification]) -> dict[str, Any]:
    """Metrics dict: ``n``, ``accuracy``, ``macro_f1``, ``urgent_precision``, ``urgent_recall``…

    Macro-F1 averages over the categories in the gold labels or in the predictions, as
    scikit-learn's ``f1_score(average="macro")`` does: a category absent from the file and
    never predicted is left out (it would count as F1 = 0 and punish a small test set for its
    sampling), but one the classifier predicts for a line of another category counts, with
    F1 = 0 (leaving it out hid those errors: 0.76 where scikit-learn says 0.59).
    """
    n = len(examples)
    labels = list(CATEGORIES)
    conf = {g: dict.fromkeys(labels, 0) for g in labels}
    for e, p in zip(examples, preds, strict=True):
        conf[e.category][p.category] += 1
    per: dict[str, dict[str, float]] = {}
    averaged: list[str] = []  # in the gold labels or predicted: the macro-F1 categories
    for c in labels:
        tp = conf[c][c]
        fp = sum(conf[g][c] for g in labels) - tp
        fn = sum(conf[c].values()) - tp
        prec, rec, f1 = _prf(tp, fp, fn)
        per[c] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
        if tp + fn or tp + fp:
            averaged.append(c)
    correct = sum(conf[c][c] for c in labels)
    utp = sum(1 for e, p in zip(examples, preds, strict=True) if e.urgent and p.urgent)
    ufp = sum(1 for e, p in zip(examples, preds, strict=True) if not e.urgent and p.urgent)
    ufn = sum(1 for e, p in zip(examples, preds, strict=True) if e.urgent and not p.urgent)
    up, ur, uf = _prf(utp, ufp, ufn)
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "macro_f1": sum(per[c]["f1"] for c in averaged) / len(averaged) if averaged else 0.0,
        "urgent_precision": up,
        "urgent_recall": ur,
        "urgent_f1": uf,
        "urgent_support": utp + ufn,
        "urgent_false_alarms": ufp,
        "per_category": per,
        "confusion": {g: {p: v for p, v in row.items() if v} for g, row in conf.items()},
        "model_version": preds[0].model_version if preds else "",
    }


def evaluate(clf: Classifier, examples: Sequence[Example],
             batch_size: int = 512) -> tuple[dict[str, Any], list[Classification]]:
    """Classify ``examples`` in batches and score them."""
    preds: list[Classification] = []
    texts = [e.text for e in examples]
    for i in range(0, len(texts), batch_size):
        preds.extend(clf.classify_batch(texts[i : i + batch_size]))
    return score(examples, preds), preds


_ABBR = {
    "housing_utilities": "hous", "roads": "road", "transport": "trns", "landscaping": "land",
    "healthcare": "hlth", "education": "educ", "social": "socl", "ecology": "ecol",
    "connectivity": "conn", "safety": "safe", "trade_services": "trad", "other": "othr",
}


def format_report(m: dict[str, Any]) -> str:
    """Human-readable table: per-category metrics, confusion matrix, urgency summary."""
    lines = [f"model {m['model_version']}   n={m['n']}   accuracy={m['accuracy']:.3f}   "
             f"macro-F1={m['macro_f1']:.3f}", ""]
    lines.append(f"{'category':<18} {'prec':>6} {'rec':>6} {'f1':>6} {'support':>8}")
    for c in CATEGORIES:
        r = m["per_category"][c]
        if not r["support"]:  # not in the file: no recall to measure
            predicted = sum(row.get(c, 0) for row in m["confusion"].values())
            lines.append(f"{c:<18} {'n/a':>6} {'n/a':>6} {'n/a':>6} {0:8d}"
                         + (f"   (predicted {predicted}x: F1 0 in macro-F1)" if predicted
                            else ""))
            continue
        lines.append(f"{c:<18} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} "
                     f"{int(r['support']):8d}")
    lines += ["", "confusion matrix (rows = gold, columns = predicted)"]
    lines.append(" " * 18 + "".join(f"{_ABBR[c]:>5}" for c in CATEGORIES))
    for g in CATEGORIES:
        row = m["confusion"].get(g, {})
        lines.append(f"{g:<18}" + "".join(f"{row.get(p, 0) or '.':>5}" for p in CATEGORIES))
    if m["urgent_support"]:
        lines += ["", f"urgent: precision={m['urgent_precision']:.3f} "
                      f"recall={m['urgent_recall']:.3f} f1={m['urgent_f1']:.3f} "
                      f"(support {m['urgent_support']})"]
    else:
        # 0.000 read as a classifier that finds no urgent appeal: the file has none to find
        # (the JSON keeps sklearn's 0.0 for an undefined figure; review of session 15).
        lines += ["", "urgent: n/a, the file has no urgent appeals "
                      f"({m['urgent_false_alarms']} marked urgent by the classifier)"]
    return "\n".join(lines)
