"""Appeal classifier: category (12 codes), urgency flag and confidence.

The category comes from a linear model (multinomial logistic regression) over TF-IDF lemma and
character n-gram features plus lexicon hit counts. Urgency is a logistic model over the same
features plus the rule layer: every urgency rule (``lexicons/urgent.txt``) and calm phrase
(``lexicons/calm.txt``) is a feature with its own weight, next to cue lexicons for
past/resolved events, planned works, hypotheticals, "happening now / to vulnerable
people" and habitual / recurring wording (``lexicons/cue_*.txt``). The model,
not a single keyword, decides — so «газом не пахнет» or «вчера прорвало, уже заварили» are not
emergencies: each urgency-rule hit is also given a context (:mod:`.context`: live, negated,
hypothetical, fixed or past) and only live hits count as emergency evidence. Rules are read at
load time; a rule added after training counts through the
"some rule fired and nothing calm vetoed it" column (retrain to give it its own weight).

Inference is plain numpy/scipy over weights stored in the model file (no sklearn import), which
is what keeps model load under a second and throughput in the thousands per second.
"""

from __future__ import annotations

import math
import pickle
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .embeddings import Projection
from .features import Featurizer, analyse
from .lexicons import CATEGORIES, LexiconSet, load_lexicons

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DEFAULT_TRIAGE_THRESHOLD",
    "MODEL_FORMAT",
    "Classification",
    "Classifier",
    "load_classifier",
]

DEFAULT_MODEL_PATH = Path(__file__).with_name("model") / "classifier.pkl"
MODEL_FORMAT = 2
#: Below this confidence an appeal should go to the human triage queue (routing decides,
#: with APPEALS_TRIAGE_CONFIDENCE, whose default this is; it said 0.5 against that 0.45).
DEFAULT_TRIAGE_THRESHOLD = 0.45
#: Confidence reported for empty text or text with no known word at all.
GARBAGE_CONFIDENCE = 0.05


@dataclass(frozen=True, slots=True)
class Classification:
    """Result for one appeal; immutable so it can be shared and cached safely."""

    category: str
    urgent: bool
    confidence: float
    top3: tuple[tuple[str, float], ...]
    model_version: str

    def needs_triage(self, threshold: float = DEFAULT_TRIAGE_THRESHOLD) -> bool:
        """True when a human should pick the category instead of routing on a guess."""
        # Written so that a NaN confidence (a damaged model) goes to a human, not to routing.
        return not self.confidence >= threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (top3 as a list of ``[category, probability]`` pairs)."""
        return {
            "category": self.category,
            "urgent": self.urgent,
            "confidence": round(self.confidence, 4),
            "top3": [[c, round(p, 4)] for c, p in self.top3],
            "model_version": self.model_version,
        }


class Classifier:
    """A loaded model: featuriser + category weights + urgency weights and threshold."""

    def __init__(self, artifact: dict[str, Any], lexicons: LexiconSet | None = None) -> None:
        if artifact.get("format") != MODEL_FORMAT:
            raise ValueError(f"unsupported model format {artifact.get('format')!r}")
        self.version: str = artifact["version"]
        self.data_hash: str = artifact["data_hash"]
        self.classes: tuple[str, ...] = tuple(artifact["classes"])
        self._w_cat: np.ndarray = artifact["w_cat"]  # (n_features, n_classes) float32
        self._b_cat: np.ndarray = artifact["b_cat"]
        self._w_urg: np.ndarray = artifact["w_urg"]  # (n_features,) float32
        self._b_urg: float = float(artifact["b_urg"])
        self.urgent_threshold: float = float(artifact["urgent_threshold"])
        self.lexicons = lexicons if lexicons is not None else load_lexicons()
        self.featurizer = Featurizer.from_state(artifact["featurizer"], self.lexicons)
        self._other = self.classes.index("other") if "other" in self.classes else 0
        self.meta: dict[str, Any] = artifact.get("meta", {})
        #: Held while a batch is featurised and scored: the encoder's per-token and per-chunk
        #: caches (:mod:`.encoder`) are appended to and dropped when full, and
        #: :func:`load_classifier` hands every caller the same instance, so two threads
        #: classifying at once got exceptions and wrong results (review of session 18).
        self._lock = threading.Lock()
        vectors = artifact.get("word_vectors")
        #: Word-vector block (:mod:`.embeddings`): per word, its share of each class logit and
        #: of the urgency logit. ``None`` for models trained without it.
        self._vectors = Projection.from_state(vectors) if vectors is not None else None
        if self._vectors is not None and self._vectors.n_outputs != len(self.classes) + 1:
            raise ValueError("model's word-vector table does not match its classes")
        self._check()

    def _check(self) -> None:
        """Refuse a damaged model at load: its weights must fit its features and classes, be
        finite, its threshold a probability, and one probe text must classify. Only unpickling
        and keys were checked: cut weight rows loaded and crashed at the first appeal, a short
        class list raised IndexError, NaN weights gave confidence nan (``nan < 0.45`` is False,
        so the appeal was routed on it) and a NaN threshold made nothing urgent (review of
        session 18)."""
        n_feat, n_cls = self.featurizer.n_features, len(self.classes)
        if len(self.classes) != len(CATEGORIES) or set(self.classes) != set(CATEGORIES):
            raise ValueError(f"model's classes {list(self.classes)!r} are not the "
                             f"{len(CATEGORIES)} category codes")
        shapes = {"w_cat": (self._w_cat, (n_feat, n_cls)), "b_cat": (self._b_cat, (n_cls,)),
                  "w_urg": (self._w_urg, (n_feat,))}
        for name, (arr, shape) in shapes.items():
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                got = getattr(arr, "shape", type(arr).__name__)
                raise ValueError(f"model's {name} has shape {got}, expected {shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"model's {name} has non-finite weights")
        if not math.isfinite(self._b_urg):
            raise ValueError("model's b_urg is not finite")
        if not 0.0 < self.urgent_threshold < 1.0:
            raise ValueError(f"model's urgent_threshold {self.urgent_threshold!r} is not "
                             "between 0 and 1")
        probe = self.classify("В подъезде пахнет газом")
        if not (0.0 <= probe.confidence <= 1.0) or probe.category not in CATEGORIES:
            raise ValueError("model gives no valid classification of a probe text")

    def classify(self, text: str) -> Classification:
        """Classify one appeal; never raises on odd input (None/empty/garbage → ``other``)."""
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        """Classify many appeals at once: one sparse matrix product for the whole batch."""
        if not texts:
            return []
        with self._lock:
            x, rule, known = self.featurizer.transform_texts(texts)
            logits, p_urg = self._scores(x, texts)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        order = np.argsort(-probs, axis=1)[:, :3]
        # Plain Python values for the whole batch at once (no per-element numpy scalars).
        top_p = np.take_along_axis(probs, order, axis=1).tolist()
        urgent = (p_urg >= self.urgent_threshold).tolist()
        garbage = ((np.asarray(known) == 0) & ~rule).tolist()
        classes = self.classes
        version = self.version
        out: list[Classification] = []
        for js, ps, urg, junk in zip(order.tolist(), top_p, urgent, garbage, strict=True):
            if junk:
                # Nothing we recognise: an honest "don't know" rather than a confident guess.
                out.append(Classification("other", False, GARBAGE_CONFIDENCE,
                                          (("other", GARBAGE_CONFIDENCE),), version))
                continue
            top3 = tuple(zip([classes[j] for j in js], ps, strict=True))
            out.append(Classification(top3[0][0], urg, ps[0], top3, version))
        return out

    def urgency_scores(self, texts: Sequence[str]) -> np.ndarray:
        """The urgency probability of each text, before the threshold (for studies that rank
        by it: average precision, precision at a recall)."""
        with self._lock:
            x, _rule, _known = self.featurizer.transform_texts(texts)
            return np.asarray(self._scores(x, texts)[1], dtype=float)

    def _scores(self, x: Any, texts: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
        """Category logits and urgency probability of a batch (its features ``x``)."""
        logits = np.asarray(x @ self._w_cat + self._b_cat)
        urg_logit = np.asarray(x @ self._w_urg + self._b_urg)
        if self._vectors is not None:
            extra = self._vectors.scores(texts)
            logits = logits + extra[:, :-1]
            urg_logit = urg_logit + extra[:, -1]
        return logits, 1.0 / (1.0 + np.exp(-urg_logit))

    def explain(self, text: str) -> dict[str, Any]:
        """Which lexicon entries fired — for people debugging a surprising decision."""
        doc = analyse(text)
        lex = self.lexicons
        return {
            "lemmas": doc.lemmas,
            "category_hits": {c: lex.categories[c].matches(doc.lemmas) for c in CATEGORIES
                              if lex.categories[c].matches(doc.lemmas)},
            "urgent_hits": lex.urgent_hits(doc.lemmas),
            "calm_hits": lex.calm_hits(doc.lemmas),
        }


def read_artifact(path: Path) -> dict[str, Any]:
    """Unpickle a model file written by :func:`workers.classification.train.train`.

    The file is produced by our own ``train`` command; never load model files from untrusted
    sources (pickle executes code).
    """
    from .dataio import DataError

    with Path(path).open("rb") as fh:
        try:
            art = pickle.load(fh)
        except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError,
                TypeError, ValueError) as exc:
            # A truncated or foreign file ended in a traceback that never named it
            # (``EOFError: Ran out of input``; review of session 15).
            raise DataError(f"{path}: not a classifier model "
                            f"({type(exc).__name__}: {exc})"[:300]) from None
    if not isinstance(art, dict):
        raise DataError(f"{path}: not a classifier model (a pickled {type(art).__name__})")
    return art


@lru_cache(maxsize=8)
def _load_cached(path: str) -> Classifier:
    from .dataio import DataError

    artifact = read_artifact(Path(path))
    # Lexicons first, outside the model-format check: a lexicon error (a file not in UTF-8, a
    # malformed line) is a ValueError too, and was reported as a model this version can't read.
    lexicons = load_lexicons()
    try:
        return Classifier(artifact, lexicons)
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a model this version reads ({exc})") from None


def load_classifier(path: str | Path | None = None) -> Classifier:
    """The classifier stored at ``path`` (default: the model shipped in the package), cached."""
    return _load_cached(str(Path(path) if path is not None else DEFAULT_MODEL_PATH))
