"""Pre-trained Russian word vectors as one more feature block (issue 4, round 4: RULE4.md).

Every other feature of the classifier is learnt from our own corpus, so a phrasing whose words
never occur in training carries almost no signal. navec's news vectors (250,000 word forms, 300
dimensions, trained by the Natasha project on a billion words of Russian news, MIT licence) place
an unseen word near the seen ones it is used like. They ship inside the ``natasha`` wheel on
PyPI; this module reads the file from there without importing natasha (whose own imports need
pymorphy2, which does not import on Python 3.11).

Why a projection table instead of the vectors at run time: the block is the plain mean of a
text's word vectors times one constant ``s``, and it only ever enters linear models, so
``w · (s · mean_t v_t) = mean_t (s · w · v_t)``. Each word's contribution to each logit is
computed once at training time and stored in the model file (one float per class and one for
urgency), and inference needs neither navec nor its 26 MB file, only a look-up per token.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from .normalize import chunk_tokens, split_chunks

__all__ = ["NAVEC_NAME", "Projection", "WordVectors", "navec_path"]

NAVEC_NAME = "navec_news_v1_1B_250K_300d_100q"
_CACHE_LIMIT = 500_000


def navec_path() -> Path:
    """The navec news vectors inside the installed ``natasha`` package (found, not imported)."""
    spec = importlib.util.find_spec("natasha")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "training with word vectors needs the natasha wheel, which carries navec's news "
            "vectors: pip install 'natasha>=1.6.0' 'navec>=0.10.0'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emb" / f"{NAVEC_NAME}.tar"
    if not path.is_file():
        raise FileNotFoundError(f"the natasha package has no {path.name} (looked at {path})")
    return path


class WordVectors:
    """navec's product-quantised table: training-time access to the vectors by word form."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            navec = importlib.import_module("navec")
        except ImportError:
            raise ImportError("training with word vectors needs navec: "
                              "pip install 'navec>=0.10.0'") from None
        table = navec.Navec.load(str(path if path is not None else navec_path()))
        self.words: list[str] = list(table.vocab.words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.codes = np.asarray(table.pq.indexes)  # (words, subspaces) uint8
        self.centroids = np.asarray(table.pq.codes, np.float32)  # (subspaces, 256, width)

    @property
    def dim(self) -> int:
        subspaces, _, width = self.centroids.shape
        return int(subspaces * width)

    def mean_vectors(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Per text: the mean vector of its tokens that have one (with repeats); zeros if none."""
        out = np.zeros((len(token_lists), self.dim), np.float32)
        rows = np.arange(self.centroids.shape[0])[None, :]
        for k, tokens in enumerate(token_lists):
            ids = [i for t in tokens if (i := self.index.get(t)) is not None]
            if ids:
                vectors = self.centroids[rows, self.codes[ids].astype(np.intp)]
                out[k] = vectors.reshape(len(ids), -1).mean(axis=0)
        return out

    def project(self, weights: np.ndarray) -> np.ndarray:
        """``V @ weights`` for every word ``V`` of the table, shape (words, outputs), computed
        subspace by subspace (256 centroids each) without unpacking the 300 MB float table."""
        subspaces, _, width = self.centroids.shape
        w = np.asarray(weights, np.float32).reshape(subspaces, width, -1)
        out = np.zeros((len(self.words), w.shape[2]), np.float32)
        for q in range(subspaces):
            out += (self.centroids[q] @ w[q])[self.codes[:, q]]
        return out


class Projection:
    """Run-time side: each word form's contribution to each logit, and the per-text mean.

    Columns are the category classes in the model's order, then urgency. Tokens are those of
    :func:`.normalize.tokenize` (lower case, ё read as е), cached per whitespace chunk.
    """

    def __init__(self, words: Sequence[str], table: np.ndarray) -> None:
        if len(words) != table.shape[0]:
            raise ValueError(f"{len(words)} words for a table of {table.shape[0]} rows")
        self.index = {w: i for i, w in enumerate(words)}
        self.table = np.ascontiguousarray(table, np.float32)
        self._cache: dict[str, tuple[int, ...]] = {}

    @property
    def n_outputs(self) -> int:
        return int(self.table.shape[1])

    def state(self) -> dict[str, Any]:
        """Plain data for the model file: words as one string (quick to pickle and load)."""
        words = [""] * len(self.index)
        for w, i in self.index.items():
            words[i] = w
        return {"words": "\n".join(words), "table": self.table}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Projection:
        return cls(str(state["words"]).split("\n"), np.asarray(state["table"]))

    def _ids(self, chunk: str) -> tuple[int, ...]:
        hit = self._cache.get(chunk)
        if hit is None:
            index = self.index
            hit = tuple(i for t in chunk_tokens(chunk) if (i := index.get(t)) is not None)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[chunk] = hit
        return hit

    def scores(self, texts: Sequence[object]) -> np.ndarray:
        """(texts, outputs): the mean contribution of each text's known tokens (zeros if none);
        non-strings count as empty text, as in the featuriser."""
        indptr = [0]
        cols: list[int] = []
        data: list[float] = []
        for text in texts:
            ids = [i for c in split_chunks(text if isinstance(text, str) else "")
                   for i in self._ids(c)]
            if ids:
                cols.extend(ids)
                data.extend([1.0 / len(ids)] * len(ids))
            indptr.append(len(cols))
        m = sparse.csr_matrix((np.asarray(data, np.float32), np.asarray(cols, np.int32),
                               np.asarray(indptr, np.int32)),
                              shape=(len(texts), self.table.shape[0]))
        return np.asarray(m @ self.table)
