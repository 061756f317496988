"""The word-vector block's arithmetic (round 4, RULE4.md) on a small synthetic table.

The real table (navec, inside the natasha wheel) is needed only to train with the block; these
tests check what makes the run-time shortcut exact: a linear model over the mean vector equals
the mean of per-word projections, token by token as the featuriser splits them.
"""

from __future__ import annotations

import numpy as np
import pytest

from workers.classification.classifier import DEFAULT_MODEL_PATH, Classifier, read_artifact
from workers.classification.embeddings import Projection, WordVectors
from workers.classification.features import analyse

WORDS = ["газ", "пахнуть", "пахнет", "подъезд", "елка", "искрит"]


def _table(seed: int = 3) -> WordVectors:
    """4 subspaces of 2 dimensions (an 8-dimensional table), random centroids and codes."""
    rng = np.random.default_rng(seed)
    wv = WordVectors.__new__(WordVectors)
    wv.words = list(WORDS)
    wv.index = {w: i for i, w in enumerate(WORDS)}
    wv.centroids = rng.normal(size=(4, 256, 2)).astype(np.float32)
    wv.codes = rng.integers(0, 256, size=(len(WORDS), 4)).astype(np.uint8)
    return wv


def _unpacked(wv: WordVectors) -> np.ndarray:
    return np.stack([np.concatenate([wv.centroids[q, wv.codes[i, q]] for q in range(4)])
                     for i in range(len(wv.words))])


def test_projection_table_is_every_word_vector_times_the_weights() -> None:
    wv = _table()
    w = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    assert np.allclose(wv.project(w), _unpacked(wv) @ w, atol=1e-5)


def test_mean_vectors_count_repeats_and_skip_unknown_tokens() -> None:
    wv = _table()
    vec = _unpacked(wv)
    out = wv.mean_vectors([["газ", "газ", "пахнет", "незнакомо"], ["незнакомо"], []])
    assert np.allclose(out[0], (2 * vec[0] + vec[2]) / 3, atol=1e-6)
    assert not out[1].any() and not out[2].any()


def test_run_time_scores_equal_the_linear_model_over_the_mean_vector() -> None:
    wv = _table()
    w = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    proj = Projection(wv.words, wv.project(w))
    texts: list[object] = ["ГАЗОМ пахнет в подъезде!!! газ", "Ёлка упала, искрит", "", None,
                           "ничего знакомого 123"]
    tokens = [analyse(t if isinstance(t, str) else "").tokens for t in texts]
    expected = wv.mean_vectors(tokens) @ w
    got = proj.scores(texts)
    assert got.shape == (5, 3)
    assert np.allclose(got, expected, atol=1e-5)
    assert got[1].any(), "ё is read as е, as the featuriser does"
    assert not got[2:].any()
    again = Projection.from_state(proj.state())
    assert np.array_equal(again.scores(texts), got)


def test_projection_refuses_a_table_of_another_size() -> None:
    with pytest.raises(ValueError, match="rows"):
        Projection(["a", "b"], np.zeros((3, 2), np.float32))


def test_classifier_adds_the_block_to_category_and_urgency_logits() -> None:
    art = read_artifact(DEFAULT_MODEL_PATH)
    base = Classifier(art)
    text = "Во дворе лежит старая елка"
    before = base.classify(text)
    assert not before.urgent
    n = len(base.classes)
    table = np.zeros((2, n + 1), np.float32)
    table[0, base.classes.index("connectivity")] = 40.0  # "елка" pushes connectivity
    table[0, n] = 40.0                                     # and urgency
    with_block = Classifier({**art, "word_vectors": {"name": "test", "scale": 1.0,
                                                     **Projection(["елка", "x"], table).state()}})
    after = with_block.classify(text)
    assert after.category == "connectivity" and after.urgent
    # Mean over tokens: one of the text's five tokens carries the whole shift.
    assert with_block.urgency_scores([text])[0] > base.urgency_scores([text])[0]
    bad = {**art, "word_vectors": Projection(["x"], np.zeros((1, 2), np.float32)).state()}
    with pytest.raises(ValueError, match="word-vector"):
        Classifier(bad)
