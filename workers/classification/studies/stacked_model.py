"""Run-time side of round 5's variant (``corpus/bank_s9/RULE5.md``): a stacked urgency decision.

The shipped model is kept whole (featuriser, category weights, linear urgency weights); a small
gradient-boosted tree model then turns 20 dense features of each text — the linear urgency
logit, the rule layer's live / calm hit counts, cue columns, "a rule fired", context counts,
and five shape figures of the raw text — into the urgency probability. The trees are stored as
plain numpy arrays and evaluated here without importing scikit-learn, so the model loads like
the shipped one. Studied only: nothing in the package loads this (see ``studies/stacking.py``).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.classification.classifier import Classifier, read_artifact
from workers.classification.features import Featurizer

__all__ = ["FEATURE_NAMES", "StackedClassifier", "Trees", "load_stacked", "stage2_features"]

#: Stage-2 columns, in order (RULE5.md: 1 + 2 + 5 + 1 + 6 + 5 = 20).
FEATURE_NAMES: tuple[str, ...] = (
    "z_linear",
    "lex_urgent_live", "lex_calm",
    "cue_past", "cue_planned", "cue_hypo", "cue_now", "cue_habitual",
    "fired",
    "ctx_live", "ctx_neg", "ctx_hypo", "ctx_fixed", "ctx_past", "ctx_past_only",
    "chars", "words", "upper_share", "n_exclam", "n_question",
)


def _columns(feat: Featurizer) -> list[int]:
    """Columns of the featuriser's matrix that stage 2 reads (rows 2-5 of RULE5.md's list)."""
    b = feat.block_slices()
    lex, urg, ctx = b["lex"], b["urg"], b["ctx"]
    n_cues = len(feat.cue_names)
    if n_cues != 5 or ctx.stop - ctx.start != 6:
        raise ValueError("stage 2 needs the five cues and the context block")
    fired = urg.stop - 1
    return [lex.stop - 2, lex.stop - 1, *range(fired - n_cues, fired), fired,
            *range(ctx.start, ctx.stop)]


def shape_features(texts: Sequence[object]) -> np.ndarray:
    """Characters, whitespace words, upper-case share of letters, «!» and «?» counts."""
    out = np.zeros((len(texts), 5))
    for i, t in enumerate(texts):
        s = t if isinstance(t, str) else ""
        letters = sum(map(str.isalpha, s))
        upper = sum(map(str.isupper, s))
        out[i] = (len(s), len(s.split()), upper / letters if letters else 0.0,
                  s.count("!"), s.count("?"))
    return out


def stage2_features(feat: Featurizer, x: Any, z: np.ndarray,
                    texts: Sequence[object]) -> np.ndarray:
    """The 20 stage-2 columns of a batch: linear logit ``z``, rule-layer columns of ``x``
    (the featuriser's matrix of ``texts``), shape of the raw texts."""
    dense = np.asarray(x[:, _columns(feat)].toarray(), dtype=np.float64)
    return np.hstack([np.asarray(z, dtype=np.float64)[:, None], dense, shape_features(texts)])


@dataclass(frozen=True)
class Trees:
    """A binary log-loss tree ensemble as padded arrays (one row per tree). A leaf points to
    itself on both sides, so every row can take ``depth`` steps."""

    feature: np.ndarray  # (T, N) int
    threshold: np.ndarray  # (T, N) float64; go left iff x <= threshold
    left: np.ndarray  # (T, N) int
    right: np.ndarray  # (T, N) int
    value: np.ndarray  # (T, N) float64, leaf values (shrinkage applied)
    base: float
    depth: int

    @classmethod
    def from_sklearn(cls, model: Any) -> Trees:
        """From a fitted binary ``HistGradientBoostingClassifier`` (numerical features only)."""
        preds = [p[0] for p in model._predictors]
        n = max(len(p.nodes) for p in preds)
        t = len(preds)
        feature = np.zeros((t, n), np.intp)
        threshold = np.full((t, n), np.inf)
        left = np.tile(np.arange(n), (t, 1))
        right = left.copy()
        value = np.zeros((t, n))
        depth = 0
        for i, p in enumerate(preds):
            nodes = p.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            m = len(nodes)
            inner = ~nodes["is_leaf"].astype(bool)
            idx = np.flatnonzero(inner)
            feature[i, idx] = nodes["feature_idx"][idx]
            threshold[i, idx] = nodes["num_threshold"][idx]
            left[i, idx] = nodes["left"][idx]
            right[i, idx] = nodes["right"][idx]
            value[i, :m] = np.where(inner, 0.0, nodes["value"])
            depth = max(depth, int(nodes["depth"].max()))
        return cls(feature, threshold, left, right, value,
                   float(np.ravel(model._baseline_prediction)[0]), depth)

    def raw(self, f2: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) of rows ``f2`` (B, n_features): ``depth`` steps of every tree
        at once, over flat node indices (tree * N + node)."""
        b, n_feat = f2.shape
        if not b:
            return np.zeros(0)
        n_trees, n = self.feature.shape
        start = np.arange(n_trees) * n
        feature = self.feature.ravel()
        threshold = self.threshold.ravel()
        left = (self.left + start[:, None]).ravel()
        right = (self.right + start[:, None]).ravel()
        flat = np.ascontiguousarray(f2, dtype=np.float64).ravel()
        row = (np.arange(b) * n_feat)[:, None]
        node = np.broadcast_to(start, (b, n_trees)).copy()
        for _ in range(self.depth):
            go_left = flat[row + feature[node]] <= threshold[node]
            node = np.where(go_left, left[node], right[node])
        return np.asarray(self.base + self.value.ravel()[node].sum(axis=1))

    def proba(self, f2: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.raw(f2))))

    def state(self) -> dict[str, Any]:
        return {"feature": self.feature.astype(np.int16), "threshold": self.threshold,
                "left": self.left.astype(np.int16), "right": self.right.astype(np.int16),
                "value": self.value, "base": self.base, "depth": self.depth}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Trees:
        return cls(s["feature"].astype(np.intp), s["threshold"], s["left"].astype(np.intp),
                   s["right"].astype(np.intp), s["value"], float(s["base"]), int(s["depth"]))

    def digest(self) -> str:
        h = hashlib.sha256()
        for a in (self.feature, self.threshold, self.left, self.right, self.value):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr((self.base, self.depth)).encode())
        return h.hexdigest()


class StackedClassifier(Classifier):
    """The shipped classifier with the urgency probability replaced by the stage-2 trees'."""

    def __init__(self, artifact: dict[str, Any]) -> None:
        super().__init__(artifact)
        stack = artifact["stack"]
        self.trees = Trees.from_state(stack["trees"])
        self.urgent_threshold = float(stack["threshold"])
        self.data_hash = hashlib.sha256(
            (self.data_hash + repr(stack["settings"]) + self.trees.digest()).encode()
        ).hexdigest()
        self.version = f"{self.version.split('+')[0]}+{self.data_hash[:12]}"

    def linear_logit(self, x: Any) -> np.ndarray:
        """The shipped linear urgency logit of a batch's features ``x``."""
        return np.asarray(x @ self._w_urg + self._b_urg, dtype=np.float64)

    def _scores(self, x: Any, texts: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
        logits = np.asarray(x @ self._w_cat + self._b_cat)
        f2 = stage2_features(self.featurizer, x, self.linear_logit(x), texts)
        return logits, self.trees.proba(f2)


def write_stacked(base_artifact: dict[str, Any], trees: Trees, threshold: float,
                  settings: dict[str, Any], out: Path) -> None:
    art = dict(base_artifact)
    art["stack"] = {"trees": trees.state(), "threshold": threshold, "settings": settings,
                    "features": list(FEATURE_NAMES)}
    with Path(out).open("wb") as fh:
        pickle.dump(art, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_stacked(path: str | Path) -> StackedClassifier:
    """A model file written by :func:`write_stacked` (our own file: pickle runs code)."""
    return StackedClassifier(read_artifact(Path(path)))
