"""Feature extraction: TF-IDF over lemmas (uni+bigrams, plus «не X» negation terms), TF-IDF over
character 3–5-grams of the normalised surface tokens, lexicon hit counts, and an urgency block
(one binary feature per urgency/calm rule known at training time + urgency cue counts).

Why a home-grown vectoriser instead of sklearn's ``TfidfVectorizer`` at inference time:
* speed — character n-grams and vocabulary look-ups are cached *per token*, so an appeal costs
  a handful of dict hits per word, and the sparse matrix for a whole batch is assembled and
  weighted with numpy in one go (≥ 5,000 appeals/s on one core);
* load time — the model file holds only plain dicts and numpy arrays, so loading it imports
  neither sklearn nor its vectoriser machinery (< 1 s including pymorphy3).
The weighting is the same as sklearn's ``TfidfVectorizer(sublinear_tf=True, smooth_idf=True,
norm="l2")``; lemmas catch inflection, character n-grams catch typos and unknown words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import sparse

from .context import CTX_NAMES
from .encoder import BatchEncoder, tfidf_inplace
from .lexicons import CUE_NAMES, LEGACY_CUE_NAMES, LexiconSet
from .normalize import MAX_TOKENS, char_ngrams, lemma, spell_fix_mask, tokenize

__all__ = ["Doc", "Featurizer", "analyse"]

# Function words: kept out of bigrams (they'd only pair everything with everything).
_STOP = frozenset({
    "и", "в", "во", "на", "не", "что", "с", "со", "а", "но", "по", "к", "ко", "у", "из", "за",
    "от", "до", "о", "об", "для", "же", "ли", "бы", "то", "это", "как", "так", "все", "уже",
    "еще", "мы", "я", "вы", "он", "она", "они", "нас", "нам", "вас", "их", "его", "ее", "мой",
    "наш", "ваш", "быть", "этот", "который",
})
_CACHE_LIMIT = 500_000


@dataclass(slots=True)
class Doc:
    """An appeal after normalisation: surface tokens and their lemmas."""

    tokens: list[str]
    lemmas: list[str]


def analyse(text: str) -> Doc:
    """Normalise one text into tokens + lemmas (cached per token in :mod:`normalize`)."""
    toks = tokenize(text or "")[:MAX_TOKENS]
    return Doc(toks, [lemma(t, m) for t, m in zip(toks, spell_fix_mask(toks), strict=True)])


_NEG = frozenset({"не", "ни"})


def word_terms(lemmas: Sequence[str]) -> list[str]:
    """Word features: every lemma, bigrams of adjacent non-function lemmas, and negation terms.

    «не»/«ни» are function words, so plain bigrams drop them; ``не~X`` keeps the polarity of the
    next word («газом не пахнет» → ``не~пахнуть``), which the urgency model needs.
    """
    terms = list(lemmas)
    content = [m for m in lemmas if m not in _STOP and len(m) > 1]
    terms.extend(f"{a} {b}" for a, b in pairwise(content))
    terms.extend(f"не~{b}" for a, b in pairwise(lemmas) if a in _NEG and b not in _STOP)
    return terms


def _idf(df: Counter[str], n_docs: int, vocab: dict[str, int]) -> np.ndarray:
    idf = np.empty(len(vocab), dtype=np.float32)
    for term, j in vocab.items():
        idf[j] = math.log((1 + n_docs) / (1 + df[term])) + 1.0
    return idf


def _select(df: Counter[str], min_df: int, max_features: int) -> dict[str, int]:
    """Most frequent terms by document frequency (ties broken alphabetically: reproducible)."""
    items = sorted((t for t in df.items() if t[1] >= min_df), key=lambda t: (-t[1], t[0]))
    return {term: j for j, term in enumerate(sorted(t for t, _ in items[:max_features]))}


@dataclass
class Featurizer:
    """Fitted vocabularies + idf weights; turns a batch of :class:`Doc` into a CSR matrix."""

    word_vocab: dict[str, int] = field(default_factory=dict)
    word_idf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    char_vocab: dict[str, int] = field(default_factory=dict)
    char_idf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lexicons: LexiconSet | None = None
    lex_weight: float = 0.5
    #: Scale of the urgency block (binary rule columns): larger = less shrunk by L2.
    urg_weight: float = 1.0
    #: Urgency/calm rule text → column in the urgency block (rules known at training time).
    rule_cols: dict[str, int] = field(default_factory=dict)
    #: Context of urgency hits (:mod:`.context`): only live hits feed the urgency hit count,
    #: the rule columns and the "rule fired" column, and a context block (hits per kind, "past
    #: only") follows the urgency block. Models trained before it load with ``False``.
    context: bool = True
    #: Urgency cue lexicons with a column, in order (a prefix of :data:`.lexicons.CUE_NAMES`).
    #: Models trained before the ``habitual`` cue (urgency rework #6) load with the first four.
    cue_names: tuple[str, ...] = CUE_NAMES
    _char_cache: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _enc: BatchEncoder | None = field(default=None, repr=False, compare=False)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, docs: Sequence[Doc], *, word_min_df: int = 2, char_min_df: int = 3,
            max_word: int = 20_000, max_char: int = 30_000) -> Featurizer:
        """Learn vocabularies and idf from training docs."""
        wdf: Counter[str] = Counter()
        cdf: Counter[str] = Counter()
        for d in docs:
            wdf.update(set(word_terms(d.lemmas)))
            cdf.update({g for t in d.tokens for g in char_ngrams(t)})
        self.word_vocab = _select(wdf, word_min_df, max_word)
        self.char_vocab = _select(cdf, char_min_df, max_char)
        self.word_idf = _idf(wdf, len(docs), self.word_vocab)
        self.char_idf = _idf(cdf, len(docs), self.char_vocab)
        self.rule_cols = {}
        if self.lexicons is not None:
            for e in self.lexicons.urgent.entries:
                self.rule_cols.setdefault("u:" + e.raw, len(self.rule_cols))
            for e in self.lexicons.calm.entries:
                self.rule_cols.setdefault("c:" + e.raw, len(self.rule_cols))
        self._char_cache = {}
        self._enc = None
        return self

    @property
    def n_lex(self) -> int:
        """Lexicon features: one per category, plus urgency hits and calm hits."""
        return (len(self.lexicons.categories) + 2) if self.lexicons is not None else 0

    @property
    def n_urg(self) -> int:
        """Urgency block: one column per known rule, one per cue lexicon, and "a rule fired and
        no calm phrase vetoed it" (the column that carries rules added after training; with
        :attr:`context`, only live hits count as fired)."""
        return ((len(self.rule_cols) + len(self.cue_names) + 1) if self.lexicons is not None
                else 0)

    @property
    def n_ctx(self) -> int:
        """Context block: live / negated / hypothetical / fixed urgency hits, "past only"."""
        return len(CTX_NAMES) if self.lexicons is not None and self.context else 0

    @property
    def n_features(self) -> int:
        return (len(self.word_vocab) + len(self.char_vocab) + self.n_lex + self.n_urg
                + self.n_ctx)

    def block_slices(self) -> dict[str, slice]:
        """Column ranges of the blocks in :meth:`transform`'s matrix."""
        a = len(self.word_vocab)
        b = a + len(self.char_vocab)
        c = b + self.n_lex
        d = c + self.n_urg
        return {"word": slice(0, a), "char": slice(a, b), "lex": slice(b, c),
                "urg": slice(c, d), "ctx": slice(d, d + self.n_ctx)}

    # -- transform -----------------------------------------------------------------------
    def _char_idx(self, token: str) -> tuple[int, ...]:
        hit = self._char_cache.get(token)
        if hit is None:
            cv = self.char_vocab
            hit = tuple(j for g in char_ngrams(token) if (j := cv.get(g)) is not None)
            if len(self._char_cache) > _CACHE_LIMIT:
                self._char_cache.clear()
            self._char_cache[token] = hit
        return hit

    @staticmethod
    def _block(rows: list[int], cols: list[int], n_rows: int, n_cols: int,
               idf: np.ndarray) -> sparse.csr_matrix:
        """Counts → sublinear tf × idf → l2-normalised rows (sklearn's TF-IDF recipe)."""
        m = sparse.csr_matrix(
            (np.ones(len(cols), np.float32), (np.asarray(rows, np.int32),
                                              np.asarray(cols, np.int32))),
            shape=(n_rows, n_cols), dtype=np.float32,
        )
        m.sum_duplicates()
        return tfidf_inplace(m, idf)

    def _encoder(self) -> BatchEncoder:
        enc = self._enc
        if enc is None or enc.signature != BatchEncoder.signature_of(self):
            enc = self._enc = BatchEncoder(self, _STOP, _NEG)
        return enc

    def transform(self, docs: Sequence[Doc]) -> tuple[sparse.csr_matrix, np.ndarray, list[int]]:
        """Feature matrix, urgency-rule flags (hit and not vetoed), known content words per doc.

        The known-word count lets the classifier tell garbage («ываыва», emoji only) from a real
        appeal the model is merely unsure about; the frost token
        (:data:`.normalize.FROST_TOKEN`) is not counted, so «-1» alone is garbage. Assembly is
        vectorised over the whole batch (:mod:`.encoder`); the columns and values are those of
        the per-text recipe: word terms
        of :func:`word_terms`, char n-grams of every token, ``log1p(hits) * lex_weight`` per
        category lexicon plus urgency and calm hits, the urgency block (one column per
        known rule that fired — urgency rules only when no calm phrase did —, ``log1p`` cue
        counts, and "a rule fired and nothing calm vetoed it") and, with :attr:`context`, the
        context block (:func:`.context.context_row`; urgency hits that are negated,
        hypothetical or fixed then count in it only).
        """
        enc = self._encoder()
        return enc.encode(*enc.ids_of_docs(docs))

    def transform_texts(
        self, texts: Sequence[object]
    ) -> tuple[sparse.csr_matrix, np.ndarray, list[int]]:
        """:meth:`transform` of ``[analyse(t) for t in texts]`` (non-strings count as ``""``),
        without building the docs: tokens and their features come from per-chunk caches."""
        enc = self._encoder()
        return enc.encode(*enc.ids_of_texts(texts))

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain-data state for the model file (lexicons are reloaded from their text files)."""
        return {
            "word_vocab": self.word_vocab, "word_idf": self.word_idf,
            "char_vocab": self.char_vocab, "char_idf": self.char_idf,
            "lex_weight": self.lex_weight, "rule_cols": self.rule_cols,
            "urg_weight": self.urg_weight, "context": self.context,
            "cue_names": list(self.cue_names),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], lexicons: LexiconSet | None) -> Featurizer:
        cues = tuple(state.get("cue_names", LEGACY_CUE_NAMES))
        if cues != CUE_NAMES[: len(cues)]:
            raise ValueError(f"model has unknown urgency cue columns {cues!r}")
        return cls(word_vocab=state["word_vocab"], word_idf=state["word_idf"],
                   char_vocab=state["char_vocab"], char_idf=state["char_idf"],
                   lexicons=lexicons, lex_weight=state["lex_weight"],
                   rule_cols=dict(state.get("rule_cols", {})),
                   urg_weight=float(state.get("urg_weight", 1.0)),
                   context=bool(state.get("context", False)), cue_names=cues)


def analyse_all(texts: Iterable[str]) -> list[Doc]:
    """Convenience: :func:`analyse` over many texts."""
    return [analyse(t) for t in texts]
