"""What the classifier studies share: the training data as ``train.py`` sees it, its models, and
group cross-validation over random assignments of phrasings to folds.

Why a module: each study compares a variant with the shipped recipe on the same folds, so the
data, the models and the fold assignments must be exactly ``train.py``'s in every study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from workers.classification import train as training
from workers.classification.dataio import Example, read_labelled
from workers.classification.features import Featurizer, analyse
from workers.classification.lexicons import CATEGORIES, LEXICON_DIR, load_lexicons

#: Every held-out file of the corpus (``test.jsonl``, then ``test_fresh*.jsonl`` in number order).
HELD_OUT = tuple(sorted((p.stem for p in training.CORPUS_DIR.glob("test*.jsonl")),
                        key=lambda stem: (len(stem), stem)))

Splits = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class LabelledSet:
    texts: list[str]
    x: Any  # CSR matrix of the shipped featuriser
    y_cat: np.ndarray
    y_urg: np.ndarray


@dataclass
class TrainingData(LabelledSet):
    feat: Featurizer
    groups: np.ndarray  # train.py's CV groups (phrasing ids)
    weight: np.ndarray  # train.py's sample weights of the urgency model

    @property
    def n_cat(self) -> int:
        """Columns the category model reads (words, characters, lexicons)."""
        return self.feat.block_slices()["lex"].stop

    def labelled(self, name: str) -> LabelledSet:
        """A held-out file, featurised as training was."""
        rows = read_labelled(training.CORPUS_DIR / f"{name}.jsonl")
        return _labelled([e.text for e in rows], self.feat, rows)


def _labelled(texts: list[str], feat: Featurizer, rows: Sequence[Any]) -> LabelledSet:
    return LabelledSet(texts, sparse.csr_matrix(feat.transform([analyse(t) for t in texts])[0]),
                       np.array([CATEGORIES.index(e.category) for e in rows]),
                       np.array([e.urgent for e in rows], dtype=bool))


def training_data(exclude_tpl_prefix: str | tuple[str, ...] | None = None) -> TrainingData:
    """``train.py``'s training lines; ``exclude_tpl_prefix`` leaves out the lines whose phrasing
    id starts with it (e.g. a hand-written file's ``<stem>:``, to study what adding it does)."""
    files = training.training_files(training.CORPUS_DIR)
    examples = [e for f in files for e in read_labelled(f)]
    group_list, handwritten = training._groups(files)
    if exclude_tpl_prefix is not None:
        keep = [i for i, g in enumerate(group_list) if not g.startswith(exclude_tpl_prefix)]
        examples = [examples[i] for i in keep]
        group_list = [group_list[i] for i in keep]
        handwritten = [handwritten[i] for i in keep]
    weight = np.where(np.array(handwritten, dtype=bool), training.HANDWRITTEN_WEIGHT, 1.0)
    return _training_data(examples, np.array(group_list), weight)


def training_data_with(data: TrainingData, rows: Sequence[dict[str, Any]]) -> TrainingData:
    """``data`` plus hand-written ``rows`` (``read_handwritten``'s dicts) appended at the end,
    featurised afresh as ``train.py`` would fit on the combined texts."""
    examples = [Example(t, CATEGORIES[int(c)], bool(u))
                for t, c, u in zip(data.texts, data.y_cat, data.y_urg, strict=True)]
    examples += [Example(str(r["text"]), str(r["category"]), bool(r["urgent"])) for r in rows]
    groups = np.concatenate([data.groups, np.array([str(r["tpl"]) for r in rows])])
    weight = np.concatenate([data.weight, np.full(len(rows), training.HANDWRITTEN_WEIGHT)])
    return _training_data(examples, groups, weight)


def _training_data(examples: Sequence[Example], groups: np.ndarray,
                   weight: np.ndarray) -> TrainingData:
    texts = [e.text for e in examples]
    feat = Featurizer(lexicons=load_lexicons(LEXICON_DIR)).fit([analyse(t) for t in texts])
    base = _labelled(texts, feat, examples)
    return TrainingData(base.texts, base.x, base.y_cat, base.y_urg, feat, groups, weight)


def category_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=training.CAT_C, max_iter=3000, random_state=training.SEED)


def urgency_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=training.URG_C, max_iter=3000, class_weight="balanced",
                              random_state=training.SEED)


def own_splits(data: TrainingData) -> list[tuple[np.ndarray, np.ndarray]]:
    """``train.py``'s folds."""
    from sklearn.model_selection import GroupKFold

    return list(GroupKFold(training.CV_FOLDS).split(data.x, data.y_urg, data.groups))


def random_splits(data: TrainingData, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Phrasings assigned to 5 folds at random (``seed``): another equally valid split."""
    from sklearn.model_selection import GroupKFold

    unique = np.unique(data.groups)
    perm = dict(zip(unique, np.random.default_rng(seed).permutation(len(unique)), strict=True))
    folds = np.array([perm[g] for g in data.groups])
    return list(GroupKFold(5).split(data.x, data.y_urg, folds))


def oof_urgency(xs: Any, data: TrainingData, splits: Splits) -> np.ndarray:
    """Out-of-fold urgency probabilities of the shipped urgency model on features ``xs``."""
    scores = np.zeros(len(data.y_urg))
    for tr, va in splits:
        m = urgency_model().fit(xs[tr], data.y_urg[tr], sample_weight=data.weight[tr])
        scores[va] = m.predict_proba(xs[va])[:, 1]
    return scores


def oof_category_proba(xs: Any, data: TrainingData, splits: Splits) -> np.ndarray:
    """Out-of-fold category probabilities, columns in ``CATEGORIES`` order."""
    proba = np.zeros((len(data.y_cat), len(CATEGORIES)))
    for tr, va in splits:
        m = category_model().fit(xs[tr], data.y_cat[tr])
        proba[np.ix_(va, m.classes_)] = m.predict_proba(xs[va])
    return proba


def p_at_recall(scores: np.ndarray, y: np.ndarray, recall: float = 0.95) -> float:
    """Precision at the first score threshold that reaches ``recall``."""
    order = np.argsort(-scores)
    tp = np.cumsum(y[order])
    k = int(np.searchsorted(tp, np.ceil(recall * y.sum())))
    return float(tp[k] / (k + 1))


def precision_recall(pred: np.ndarray, y: np.ndarray) -> str:
    tp = int((pred & y).sum())
    return f"P {tp / max(int(pred.sum()), 1):.3f} / R {tp / int(y.sum()):.3f}"
