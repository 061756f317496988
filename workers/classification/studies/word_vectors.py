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
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from workers.classification import embeddings
from workers.classification import train as training
from workers.classification.studies import cv

_WORD = re.compile(r"[а-яёa-z]+")


class WordVectors(embeddings.WordVectors):
    """navec's table (loaded by :mod:`..embeddings`), with this study's own recipe: words by a
    plain regex and an L2-normalised mean (the shipped option, round 4, uses neither)."""

    @staticmethod
    def _words(text: str) -> list[str]:
        return [t.replace("ё", "е") for t in _WORD.findall(text.lower())]

    def coverage(self, texts: Sequence[str]) -> float:
        """Share of the texts' words that have a vector."""
        words = [w for text in texts for w in self._words(text)]
        return sum(w in self.index for w in words) / max(len(words), 1)

    def mean_vectors(self, texts: Sequence[str]) -> np.ndarray:  # type: ignore[override]
        """This study's recipe: the shared mean over the regex words, then L2-normalised."""
        out = super().mean_vectors([self._words(text) for text in texts])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / (norms + 1e-9)


def _with(x: Any, dense: np.ndarray, scale: float) -> Any:
    """``x`` with the vector columns times ``scale`` appended; scale 0 = the shipped features."""
    return x if scale == 0 else sparse.hstack([x, sparse.csr_matrix(dense * scale)]).tocsr()


def run(vectors_path: Path, scales: Sequence[float]) -> None:
    from sklearn.metrics import f1_score

    vectors = WordVectors(vectors_path)
    data = cv.training_data()
    n_cat = data.n_cat
    dense = vectors.mean_vectors(data.texts)
    print(f"training tokens with a vector: {vectors.coverage(data.texts):.1%}")
    held_out = [(name, data.labelled(name)) for name in cv.HELD_OUT]
    held_dense = [vectors.mean_vectors(h.texts) for _, h in held_out]

    def category(scale: float) -> tuple[list[float], list[np.ndarray]]:
        xs = _with(data.x[:, :n_cat], dense, scale)
        scores = []
        for seed in range(4):
            oof = np.zeros(len(data.y_cat), int)
            for tr, va in cv.random_splits(data, seed):
                oof[va] = cv.category_model().fit(xs[tr], data.y_cat[tr]).predict(xs[va])
            scores.append(float(f1_score(data.y_cat, oof, average="macro")))
        model = cv.category_model().fit(xs, data.y_cat)
        right = [model.predict(_with(h.x[:, :n_cat], d, scale)) == h.y_cat
                 for (_, h), d in zip(held_out, held_dense, strict=True)]
        return scores, right

    def urgency_held_out(scale: float) -> list[str]:
        """P / R on each held-out file at the threshold ``train.py``'s rule picks."""
        xs = _with(data.x, dense, scale)
        threshold = training._pick_threshold(cv.oof_urgency(xs, data, cv.own_splits(data)),
                                             data.y_urg)
        model = cv.urgency_model().fit(xs, data.y_urg, sample_weight=data.weight)
        out = [f"threshold {threshold}"]
        for (name, h), d in zip(held_out, held_dense, strict=True):
            pred = model.predict_proba(_with(h.x, d, scale))[:, 1] >= threshold
            out.append(f"{name} {cv.precision_recall(pred, h.y_urg)}")
        return out

    def urgency(scale: float) -> list[float]:
        xs = _with(data.x, dense, scale)
        return [cv.p_at_recall(cv.oof_urgency(xs, data, cv.random_splits(data, seed)),
                               data.y_urg) for seed in range(16)]

    base_cv, base_right = category(0.0)
    base_urg = np.array(urgency(0.0))
    print(f"shipped recipe: category group-CV macro-F1 {np.mean(base_cv):.3f} ± "
          f"{np.std(base_cv):.3f}; urgency P@R.95 {base_urg.mean():.3f} ± {base_urg.std():.3f}")
    print("  urgency held out: " + "; ".join(urgency_held_out(0.0)))
    for scale in scales:
        scores, right = category(scale)
        print(f"+ word vectors x{scale}: category group-CV macro-F1 {np.mean(scores):.3f} ± "
              f"{np.std(scores):.3f}")
        for (name, _), now, before in zip(held_out, right, base_right, strict=True):
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
    if any(s <= 0 for s in scales):
        parser.error("--scales: positive numbers (the shipped recipe is always the baseline)")
    run(opts.navec, scales)
    return 0


if __name__ == "__main__":
    sys.exit(main())
