"""Study, round 5 (``corpus/bank_s9/RULE5.md``): does a different model family for the urgency
decision — gradient-boosted trees stacked on the linear model and the rule layer — close the
gap on unfamiliar template text?

Why it exists: rounds 1-4 changed the data or added a linear feature block; the false alarms
are interactions (an emergency word *and* a negation / past / fixed / planned marker) that one
linear score can only add up. The variant keeps the shipped model whole and replaces only the
urgency probability by a ``HistGradientBoostingClassifier`` over 20 dense features
(:mod:`.stacked_model`): the linear urgency logit (out of fold for training lines, folds of
phrasings as ``train.py``), the rule layer's hit / cue / context columns and the text's shape.
Its threshold is ``train.py``'s rule on nested out-of-fold stage-2 probabilities. Baseline: the
shipped recipe retrained from the same files (training files + bank D).

It reuses :mod:`.template_bank` (training on generated banks, scoring, paired bootstrap of
bank C's phrasings, the fresh sets pooled) and prints the decision by RULE5.md's (a)-(c);
(d) is ``pytest -p`` with a plugin that loads the saved variant (``--save``), (e) is
``--bench MODEL`` (run in a fresh process). ``test.jsonl`` and bank G only with
``--after-decision``.

Run: ``python -m workers.classification.studies.stacking [--after-decision] [--save DIR]``
(trains the baseline and about 40 linear fits plus 7 tree models: a few minutes on one core);
``python -m workers.classification.studies.stacking --bench MODEL.pkl`` for (e).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from workers.classification.classifier import Classifier
from workers.classification.studies.stacked_model import (
    FEATURE_NAMES,
    StackedClassifier,
    Trees,
    load_stacked,
    stage2_features,
    write_stacked,
)

#: RULE5.md's settings, fixed before the first run.
HGB_PARAMS: dict[str, Any] = {
    "loss": "log_loss", "learning_rate": 0.05, "max_iter": 300, "max_depth": 3,
    "max_leaf_nodes": 8, "min_samples_leaf": 40, "l2_regularization": 1.0, "max_bins": 255,
    "early_stopping": False, "class_weight": "balanced",
    "monotonic_cst": [1] + [0] * (len(FEATURE_NAMES) - 1), "random_state": 1729,
}
BASE_BANKS = ("train_bankd.jsonl",)


def _stage2(f2: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**HGB_PARAMS).fit(f2, y, sample_weight=w)


def _group_folds(n: int, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``train.py``'s folds: ``GroupKFold(5)`` over phrasings."""
    from sklearn.model_selection import GroupKFold

    from workers.classification import train as training

    k = min(training.CV_FOLDS, len(set(groups)))
    return list(GroupKFold(n_splits=k).split(np.zeros(n), None, groups))


def oof_logit(x: Any, y: np.ndarray, w: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold linear urgency logit (the shipped urgency model on ``train.py``'s folds)."""
    from workers.classification.studies.cv import urgency_model

    z = np.zeros(len(y))
    for tr, va in _group_folds(len(y), groups):
        m = urgency_model().fit(x[tr], y[tr], sample_weight=w[tr])
        z[va] = m.decision_function(x[va])
    return z


class Training:
    """Training lines of the baseline as ``train.py`` saw them, with its features."""

    def __init__(self, corpus: Path, base: Classifier) -> None:
        from workers.classification import train as training
        from workers.classification.dataio import read_labelled

        files = training.training_files(corpus)
        rows = [e for f in files for e in read_labelled(f)]
        group_list, hw = training._groups(files)
        self.texts = [e.text for e in rows]
        self.y = np.array([e.urgent for e in rows], dtype=bool)
        self.groups = np.array(group_list)
        self.w = np.where(np.array(hw, dtype=bool), training.HANDWRITTEN_WEIGHT, 1.0)
        self.feat = base.featurizer
        self.x = self.feat.transform_texts(self.texts)[0]

    def features(self, z: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return stage2_features(self.feat, self.x[idx], z, [self.texts[i] for i in idx])


def nested_oof(d: Training) -> np.ndarray:
    """Stage-2 probabilities of every training line from models that never saw its phrasing:
    outer folds as ``train.py``, inner out-of-fold logits within each outer-training part."""
    from workers.classification.studies.cv import urgency_model

    p = np.zeros(len(d.y))
    for k, (tr, va) in enumerate(_group_folds(len(d.y), d.groups)):
        t0 = time.perf_counter()
        z_tr = oof_logit(d.x[tr], d.y[tr], d.w[tr], d.groups[tr])
        m2 = _stage2(d.features(z_tr, tr), d.y[tr], d.w[tr])
        lin = urgency_model().fit(d.x[tr], d.y[tr], sample_weight=d.w[tr])
        p[va] = m2.predict_proba(d.features(lin.decision_function(d.x[va]), va))[:, 1]
        print(f"  nested fold {k + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    return p


def build_variant(corpus: Path, base_path: Path,
                  out: Path) -> tuple[StackedClassifier, dict[str, Any]]:
    """Fit stage 2 on the baseline's training lines and write the variant's model file."""
    from workers.classification import train as training
    from workers.classification.classifier import read_artifact

    art = read_artifact(base_path)
    base = Classifier(art)
    d = Training(corpus, base)
    t0 = time.perf_counter()
    z = oof_logit(d.x, d.y, d.w, d.groups)
    # Sanity: the linear out-of-fold scores give train.py's threshold back.
    t_lin = training._pick_threshold(1.0 / (1.0 + np.exp(-z)), d.y)
    if t_lin != base.urgent_threshold:
        raise RuntimeError(f"out-of-fold linear threshold {t_lin} != {base.urgent_threshold}")
    model = _stage2(d.features(z, np.arange(len(d.y))), d.y, d.w)
    trees = Trees.from_sklearn(model)
    f_all = d.features(z, np.arange(len(d.y)))
    gap = float(np.abs(trees.proba(f_all) - model.predict_proba(f_all)[:, 1]).max())
    if gap > 1e-9:
        raise RuntimeError(f"numpy trees differ from sklearn by {gap}")
    print(f"  stage 2 on all lines: {time.perf_counter() - t0:.0f} s", flush=True)
    p = nested_oof(d)
    threshold = training._pick_threshold(p, d.y)
    pred = p >= threshold
    tp = int((pred & d.y).sum())
    cv = {"threshold": threshold, "precision": tp / max(int(pred.sum()), 1),
          "recall": tp / int(d.y.sum())}
    settings = dict(HGB_PARAMS)
    write_stacked(art, trees, threshold, settings, out)
    return load_stacked(out), cv


def run(after_decision: bool, save: Path | None) -> int:
    from workers.classification.classifier import read_artifact
    from workers.classification.studies import template_bank as tb

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "base"
        tb.train_on(work, list(BASE_BANKS))
        base = Classifier(read_artifact(work / "model.pkl"))
        print(f"baseline {base.version} (threshold {base.urgent_threshold}, group-CV "
              f"P {base.meta['urgent_cv']['precision']:.3f} R "
              f"{base.meta['urgent_cv']['recall']:.3f})", flush=True)
        out_dir = save if save is not None else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        if save is not None:
            (out_dir / "baseline.pkl").write_bytes((work / "model.pkl").read_bytes())
        variant, cv = build_variant(work / "corpus", work / "model.pkl", out_dir / "stacked.pkl")
    print(f"variant {variant.version} (threshold {cv['threshold']}, nested group-CV "
          f"P {cv['precision']:.3f} R {cv['recall']:.3f})")
    imp = _importance(variant)
    print("  stage-2 split counts: " + ", ".join(f"{n} {c}" for n, c in imp if c))

    tb.decide(base, variant, after_decision,
              d_hint="pytest -p with the saved variant; (e) --bench MODEL")
    return 0


def _importance(clf: StackedClassifier) -> list[tuple[str, int]]:
    """How often each stage-2 feature is split on (a rough view of what the trees use)."""
    t = clf.trees
    inner = t.left != np.arange(t.left.shape[1])
    counts = np.bincount(t.feature[inner], minlength=len(FEATURE_NAMES))
    return sorted(zip(FEATURE_NAMES, counts.tolist(), strict=True), key=lambda p: -p[1])


def bench(model: Path, n: int = 20_000, batch_size: int = 256) -> dict[str, Any]:
    """``bench.run_bench`` with the stacked model: throughput over the same unique corpus texts
    (its load time is :func:`cold_load_s`'s, measured in a fresh process)."""
    from workers.classification import classifier
    from workers.classification.bench import run_bench

    clf = load_stacked(model)
    real = classifier._load_cached
    classifier._load_cached = lambda path: clf  # type: ignore[assignment]
    try:
        res = run_bench(n=n, batch_size=batch_size, model=str(model))
    finally:
        classifier._load_cached = real
    res["size_bytes"] = model.stat().st_size
    return res


def cold_load_s(model: Path) -> float:
    """Seconds to import the run-time module and load ``model`` in a fresh process (as
    ``tests/classification/test_classifier.py`` times the shipped model)."""
    import subprocess

    code = ("import time; t = time.perf_counter(); "
            "from workers.classification.studies.stacked_model import load_stacked; "
            f"load_stacked({str(model)!r}); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return round(float(out.stdout.strip()), 3)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--after-decision", action="store_true",
                    help="also score test.jsonl and test_bankg.jsonl (only once decided)")
    ap.add_argument("--save", type=Path, help="keep baseline.pkl and stacked.pkl in this folder")
    ap.add_argument("--bench", type=Path, metavar="MODEL",
                    help="only time the stacked MODEL: cold load in this process, throughput")
    args = ap.parse_args(argv)
    if args.bench is not None:
        res = bench(args.bench)
        res["load_s"] = cold_load_s(args.bench)
        print(orjson.dumps(res).decode())
        return 0
    return run(args.after_decision, args.save)


if __name__ == "__main__":
    sys.exit(main())
