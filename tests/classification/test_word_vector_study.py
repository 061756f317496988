"""The word-vector study's own arithmetic (the study needs data the project does not ship)."""

from __future__ import annotations

import numpy as np

from workers.classification.studies.cv import p_at_recall
from workers.classification.studies.word_vectors import WordVectors


def test_precision_at_recall_stops_at_the_first_score_reaching_the_recall() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.array([True, False, True, True, False])
    assert p_at_recall(scores, y, 0.95) == 0.75  # all 3 urgent found within the top 4
    assert p_at_recall(scores, y, 0.30) == 1.0


def test_mean_vectors_decode_the_quantised_table_and_skip_unknown_words() -> None:
    table = WordVectors.__new__(WordVectors)
    table.index = {"газ": 0, "пахнет": 1}
    # 2 subspaces of 1 dimension, 256 centroids each: centroid k of subspace s is 10*s + k.
    table.centroids = (np.arange(256)[None, :, None] + np.array([0, 10])[:, None, None]
                       ).astype(np.float32)
    table.codes = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    out = table.mean_vectors(["Пахнет ГАЗ!!", "ничего знакомого", ""])
    mean = np.array([(1 + 3) / 2, (12 + 14) / 2])
    assert np.allclose(out[0], mean / np.linalg.norm(mean))
    assert not out[1].any() and not out[2].any()
