"""The phrasing bootstrap weighs lines correctly and resamples whole phrasings, never lines."""

from __future__ import annotations

import numpy as np
import pytest

from workers.classification.studies.split_uncertainty import Scored, bootstrap, figures


def _scored() -> Scored:
    # Lines: (gold cat, pred cat, gold urgent, pred urgent, phrasing)
    lines = [(0, 0, True, True, 0), (0, 1, True, False, 0),   # one phrasing: a hit and a miss
             (1, 1, False, True, 1), (1, 1, False, False, 2)]
    cols = list(zip(*lines, strict=True))
    return Scored(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                  np.array(cols[4]), n_categories=2)


def test_figures_with_unit_weights() -> None:
    macro_f1, precision, recall = figures(_scored(), np.ones(4))
    # category 0: P 1/1, R 1/2 -> F1 2/3; category 1: P 2/3, R 2/2 -> F1 0.8
    assert macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert precision == pytest.approx(1 / 2)   # flagged: the hit and the false alarm
    assert recall == pytest.approx(1 / 2)


def test_a_weight_counts_like_a_copy() -> None:
    s = _scored()
    def copy_line_2(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, a[2:3]])

    doubled = Scored(copy_line_2(s.gold_cat), copy_line_2(s.pred_cat), copy_line_2(s.gold_urg),
                     copy_line_2(s.pred_urg), copy_line_2(s.group), n_categories=2)
    assert figures(s, np.array([1.0, 1.0, 2.0, 1.0])) == pytest.approx(
        figures(doubled, np.ones(5)))


def test_resamples_keep_a_phrasing_s_lines_together() -> None:
    recalls = set(np.round(bootstrap(_scored(), rounds=300)[:, 2], 6))
    # The hit and the miss share a phrasing: recall is 0.5 when it is drawn, 0 when it is not;
    # resampling single lines would also give 1.0.
    assert recalls <= {0.5, 0.0} and 0.5 in recalls
