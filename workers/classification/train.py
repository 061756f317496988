"""Reproducible training of the shipped model (``appeals classify train``).

Everything that could vary is pinned: file order, a fixed seed, deterministic solvers and
vocabulary tie-breaks, no timestamps in the artifact. The artifact records a hash of the
training data and the lexicons, so a model can always be traced to the exact corpus it saw.
The urgency threshold is chosen by cross-validation on the *training* data only (highest
threshold whose CV recall stays ≥ 0.97): the held-out split never influences the model.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import DEFAULT_MODEL_PATH, MODEL_FORMAT
from .dataio import Example, read_labelled
from .features import Featurizer, analyse
from .lexicons import CATEGORIES, LEXICON_DIR, load_lexicons

__all__ = ["CORPUS_DIR", "SEED", "train", "training_files"]

CORPUS_DIR = Path(__file__).with_name("corpus")
SEED = 1729
CAT_C = 10.0
URG_C = 4.0
TARGET_CV_RECALL = 0.97


def training_files(data_dir: Path) -> list[Path]:
    """All ``*.jsonl`` in ``data_dir`` except held-out files (names starting with ``test``).

    Exported triage feedback dropped into the corpus directory is picked up automatically.
    """
    files = sorted(p for p in Path(data_dir).glob("*.jsonl") if not p.name.startswith("test"))
    if not files:
        raise FileNotFoundError(f"no training *.jsonl files in {data_dir}")
    return files


def _hash(files: Sequence[Path], lexicon_dir: Path) -> str:
    h = hashlib.sha256()
    for p in [*files, *sorted(lexicon_dir.glob("*.txt"))]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _pick_threshold(p: np.ndarray, rule: np.ndarray, y: np.ndarray) -> float:
    """Highest model threshold keeping (rule OR p ≥ t) recall ≥ TARGET_CV_RECALL."""
    best = 0.5
    pos = y.sum()
    if pos == 0:
        return best
    for t in np.arange(0.9, 0.05, -0.01):
        pred = rule | (p >= t)
        if (pred & y).sum() / pos >= TARGET_CV_RECALL:
            return float(round(t, 2))
    return 0.1 if pos else best


def train(data_dir: Path | None = None, out: Path | None = None, *, seed: int = SEED,
          verbose: bool = True) -> dict[str, Any]:
    """Fit featuriser, category model and urgency model; write the artifact; return its meta."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    data_dir = Path(data_dir) if data_dir is not None else CORPUS_DIR
    out = Path(out) if out is not None else DEFAULT_MODEL_PATH
    files = training_files(data_dir)
    examples: list[Example] = []
    for f in files:
        examples.extend(read_labelled(f))
    docs = [analyse(e.text) for e in examples]
    lexicons = load_lexicons(LEXICON_DIR)
    feat = Featurizer(lexicons=lexicons).fit(docs)
    x, rule, _ = feat.transform(docs)
    y_cat = np.array([CATEGORIES.index(e.category) for e in examples])
    y_urg = np.array([e.urgent for e in examples], dtype=bool)

    cat_model = LogisticRegression(C=CAT_C, max_iter=3000, random_state=seed)
    cat_model.fit(x, y_cat)
    # Urgency sees lemmas and lexicon hits only: character n-grams mostly encode channel style
    # and topic, which let the small urgent model overfit to *how* appeals are written.
    n_word, n_char = len(feat.word_vocab), len(feat.char_vocab)
    keep = np.r_[np.arange(n_word), np.arange(n_word + n_char, x.shape[1])]
    xu = x[:, keep]
    urg_model = LogisticRegression(C=URG_C, max_iter=3000, class_weight="balanced",
                                   random_state=seed)
    urg_model.fit(xu, y_urg)
    w_urg = np.zeros(x.shape[1], dtype=np.float32)
    w_urg[keep] = urg_model.coef_[0]

    # Out-of-fold urgency probabilities → threshold (training data only).
    oof = np.zeros(len(examples))
    skf = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for tr, va in skf.split(xu, y_urg):
        m = LogisticRegression(C=URG_C, max_iter=3000, class_weight="balanced",
                               random_state=seed)
        m.fit(xu[tr], y_urg[tr])
        oof[va] = m.predict_proba(xu[va])[:, 1]
    threshold = _pick_threshold(oof, rule, y_urg)

    classes = [CATEGORIES[i] for i in cat_model.classes_]
    data_hash = _hash(files, LEXICON_DIR)
    meta = {
        "n_train": len(examples),
        "files": [p.name for p in files],
        "n_word_features": len(feat.word_vocab),
        "n_char_features": len(feat.char_vocab),
        "seed": seed,
        "cat_C": CAT_C,
        "urg_C": URG_C,
    }
    artifact = {
        "format": MODEL_FORMAT,
        "version": f"{MODEL_FORMAT}.0+{data_hash[:12]}",
        "data_hash": data_hash,
        "classes": classes,
        "w_cat": np.ascontiguousarray(cat_model.coef_.T, dtype=np.float32),
        "b_cat": cat_model.intercept_.astype(np.float32),
        "w_urg": w_urg,
        "b_urg": float(urg_model.intercept_[0]),
        "urgent_threshold": threshold,
        "featurizer": feat.state(),
        "meta": meta,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(artifact, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(out)
    from .classifier import _load_cached

    _load_cached.cache_clear()
    info = {"out": str(out), "version": artifact["version"], "urgent_threshold": threshold,
            "size_bytes": out.stat().st_size, **meta}
    if verbose:
        print(f"trained on {len(examples)} examples from {', '.join(p.name for p in files)}; "
              f"version {artifact['version']}; urgent threshold {threshold}; "
              f"{info['size_bytes'] / 1e6:.2f} MB -> {out}")
    return info
