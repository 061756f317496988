"""Study (not shipped): do pre-trained Russian word vectors help the classifier generalise?

Why it exists: every lever tried on our own corpus (cues, conditioning, stacking, weights,
relabelling) moved urgency precision by less than the fold-to-fold noise, and the issue says the
classifier will be scored on labelled sets we have not seen. Word vectors trained on a billion
words of Russian news are knowledge from outside our own writing: a word the corpus never used
still lands near its synonyms. This script measures that, on the shipped recipe, without
changing it: the mean navec vector of a text's words (L2-normalised, times a scale) is added as
300 dense columns to the category model's features and to the urgency model's features.

What it prints (group CV folds hold out whole phrasings, as ``train.py`` does):
- category: group-CV macro-F1 (mean ± sd over 4 fold assignments), then errors on each held-out
  file with and without the vectors, and how many lines they fixed and broke;
- urgency: out-of-fold precision at recall 0.95 (P@R.95), paired against the shipped recipe
  over 16 fold assignments (mean gain ± standard error; assignments better), and precision /
  recall on each held-out file at the threshold ``train.py``'s rule picks.

Needs what the project does not depend on: ``pip install navec`` and navec's news vectors,
which ship inside the natasha wheel on PyPI (``pip download natasha==1.6.0 --no-deps``, then
unzip ``natasha/data/emb/navec_news_v1_1B_250K_300d_100q.tar``; 26 MB, MIT licence).

Run: ``.venv/bin/python -m workers.classification.studies.word_vectors --navec PATH.tar
[--scales 1,2]``. It takes ~1 minute per scale on this machine. Results of 2026-11-26 and the
decision are in the corpus README ("Study: pre-trained word vectors").
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from workers.classification import train as training
from workers.classification.dataio import read_labelled
from workers.classification.features import Featurizer, analyse
from workers.classification.lexicons import CATEGORIES, LEXICON_DIR, load_lexicons

HELD_OUT = ("test", "test_fresh", "test_fresh2", "test_fresh3")
_WORD = re.compile(r"[а-яёa-z]+")


class WordVectors:
    """navec's product-quantised table, looked up by lower-cased word form (ё read as е)."""

    def __init__(self, path: Path) -> None:
        try:
            navec = importlib.import_module("navec")
        except ImportError:
            raise SystemExit("this study needs the navec package: pip install navec") from None
        table = navec.Navec.load(str(path))
        self.index = {w: i for i, w in enumerate(table.vocab.words)}
        self.codes = np.asarray(table.pq.indexes)  # (words, subspaces) uint8
        self.centroids = np.asarray(table.pq.codes)  # (subspaces, 256, dims per subspace)

    def mean_vectors(self, texts: Sequence[str]) -> np.ndarray:
        subspaces, _, width = self.centroids.shape
        out = np.zeros((len(texts), subspaces * width), np.float32)
        rows = np.arange(subspaces)[None, :]
        for k, text in enumerate(texts):
            ids = [self.index[w] for w in (t.replace("ё", "е") for t in _WORD.findall(text.lower()))
                   if w in self.index]
            if ids:
                vectors = self.centroids[rows, self.codes[ids].astype(int)].reshape(len(ids), -1)
                mean = vectors.mean(axis=0)
                out[k] = mean / (np.linalg.norm(mean) + 1e-9)
        return out


def _p_at_recall(scores: np.ndarray, y: np.ndarray, recall: float = 0.95) -> float:
    order = np.argsort(-scores)
    tp = np.cumsum(y[order])
    k = int(np.searchsorted(tp, np.ceil(recall * y.sum())))
    return float(tp[k] / (k + 1))


def _fold_assignment(groups: np.ndarray, seed: int) -> np.ndarray:
    unique = np.unique(groups)
    perm = dict(zip(unique, np.random.default_rng(seed).permutation(len(unique)), strict=True))
    return np.array([perm[g] for g in groups])


def _with(x: Any, dense: np.ndarray | None, scale: float) -> Any:
    return x if dense is None else sparse.hstack([x, sparse.csr_matrix(dense * scale)]).tocsr()


def run(vectors_path: Path, scales: Sequence[float]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    vectors = WordVectors(vectors_path)
    files = training.training_files(training.CORPUS_DIR)
    examples = [e for f in files for e in read_labelled(f)]
    feat = Featurizer(lexicons=load_lexicons(LEXICON_DIR)).fit([analyse(e.text) for e in examples])
    x, _, _ = feat.transform([analyse(e.text) for e in examples])
    n_cat = feat.block_slices()["lex"].stop
    dense = vectors.mean_vectors([e.text for e in examples])
    y_cat = np.array([CATEGORIES.index(e.category) for e in examples])
    y_urg = np.array([e.urgent for e in examples], dtype=bool)
    group_list, handwritten = training._groups(files)
    groups = np.array(group_list)
    weight = np.where(np.array(handwritten, dtype=bool), training.HANDWRITTEN_WEIGHT, 1.0)
    held_out = []
    urgent_held_out = []
    for name in HELD_OUT:
        rows = read_labelled(training.CORPUS_DIR / f"{name}.jsonl")
        held_out.append((name, feat.transform([analyse(e.text) for e in rows])[0],
                         vectors.mean_vectors([e.text for e in rows]),
                         np.array([CATEGORIES.index(e.category) for e in rows])))
        urgent_held_out.append(np.array([e.urgent for e in rows], dtype=bool))

    def category(scale: float | None) -> tuple[list[float], list[np.ndarray]]:
        extra = None if scale is None else dense
        xs = _with(x[:, :n_cat], extra, scale or 0.0)
        cv = []
        for seed in range(4):
            oof = np.zeros(len(y_cat), int)
            for tr, va in GroupKFold(5).split(xs, y_cat, _fold_assignment(groups, seed)):
                m = LogisticRegression(C=training.CAT_C, max_iter=3000,
                                       random_state=training.SEED).fit(xs[tr], y_cat[tr])
                oof[va] = m.predict(xs[va])
            cv.append(float(f1_score(y_cat, oof, average="macro")))
        model = LogisticRegression(C=training.CAT_C, max_iter=3000,
                                   random_state=training.SEED).fit(xs, y_cat)
        right = [model.predict(_with(xt[:, :n_cat], None if scale is None else dt, scale or 0.0))
                 == yt for _, xt, dt, yt in held_out]
        return cv, right

    def urgency_held_out(scale: float | None) -> list[str]:
        """P / R on each held-out file at the threshold ``train.py``'s rule picks."""
        xs = _with(x, None if scale is None else dense, scale or 0.0)
        oof = np.zeros(len(y_urg))
        for tr, va in GroupKFold(5).split(xs, y_urg, groups):
            m = LogisticRegression(C=training.URG_C, max_iter=3000, class_weight="balanced",
                                   random_state=training.SEED)
            m.fit(xs[tr], y_urg[tr], sample_weight=weight[tr])
            oof[va] = m.predict_proba(xs[va])[:, 1]
        threshold = training._pick_threshold(oof, y_urg)
        model = LogisticRegression(C=training.URG_C, max_iter=3000, class_weight="balanced",
                                   random_state=training.SEED)
        model.fit(xs, y_urg, sample_weight=weight)
        out = []
        for (name, xt, dt, _), yt in zip(held_out, urgent_held_out, strict=True):
            pred = model.predict_proba(
                _with(xt, None if scale is None else dt, scale or 0.0))[:, 1] >= threshold
            tp = int((pred & yt).sum())
            out.append(f"{name} P {tp / max(int(pred.sum()), 1):.3f} / R {tp / int(yt.sum()):.3f}")
        return [f"threshold {threshold}", *out]

    def urgency(scale: float | None) -> list[float]:
        xs = _with(x, None if scale is None else dense, scale or 0.0)
        out = []
        for seed in range(16):
            oof = np.zeros(len(y_urg))
            for tr, va in GroupKFold(5).split(xs, y_urg, _fold_assignment(groups, seed)):
                m = LogisticRegression(C=training.URG_C, max_iter=3000, class_weight="balanced",
                                       random_state=training.SEED)
                m.fit(xs[tr], y_urg[tr], sample_weight=weight[tr])
                oof[va] = m.predict_proba(xs[va])[:, 1]
            out.append(_p_at_recall(oof, y_urg))
        return out

    base_cv, base_right = category(None)
    base_urg = np.array(urgency(None))
    print(f"shipped recipe: category group-CV macro-F1 {np.mean(base_cv):.3f} ± "
          f"{np.std(base_cv):.3f}; urgency P@R.95 {base_urg.mean():.3f} ± {base_urg.std():.3f}")
    print("  urgency held out: " + "; ".join(urgency_held_out(None)))
    for scale in scales:
        cv, right = category(scale)
        print(f"+ word vectors x{scale}: category group-CV macro-F1 {np.mean(cv):.3f} ± "
              f"{np.std(cv):.3f}")
        for (name, *_), now, before in zip(held_out, right, base_right, strict=True):
            print(f"    {name}: errors {int((~before).sum())} -> {int((~now).sum())} "
                  f"(fixed {int((now & ~before).sum())}, broke {int((~now & before).sum())})")
        gain = np.array(urgency(scale)) - base_urg
        print(f"  urgency P@R.95 gain {gain.mean():+.3f} ± {gain.std(ddof=1) / 4:.3f} (s.e.), "
              f"better on {int((gain > 0).sum())} of 16 fold assignments")
        print("  urgency held out: " + "; ".join(urgency_held_out(scale)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.classification.studies.word_vectors",
        description="Group CV and held-out errors of the classifier with and without "
                    "pre-trained navec word vectors (a study; the shipped model has none).")
    parser.add_argument("--navec", type=Path, required=True,
                        help="navec_news_v1_1B_250K_300d_100q.tar (inside the natasha wheel)")
    parser.add_argument("--scales", default="1,2",
                        help="comma-separated weights of the vector columns (default 1,2)")
    opts = parser.parse_args(argv)
    if not opts.navec.is_file():
        parser.error(f"--navec: no such file: {opts.navec}")
    try:
        scales = [float(s) for s in opts.scales.split(",")]
    except ValueError:
        parser.error("--scales: comma-separated numbers, e.g. 1,2")
    run(opts.navec, scales)
    return 0


if __name__ == "__main__":
    sys.exit(main())
