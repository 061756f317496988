"""``evaluate.score``: the figures agree with scikit-learn's definitions."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import f1_score

from workers.classification.classifier import Classification
from workers.classification.dataio import Example
from workers.classification.evaluate import score
from workers.classification.lexicons import CATEGORIES


def _score(gold: list[str], pred: list[str]) -> float:
    examples = [Example(f"t{i}", g, False) for i, g in enumerate(gold)]
    preds = [Classification(p, False, 0.9, ((p, 0.9),), "m") for p in pred]
    return float(score(examples, preds)["macro_f1"])


def test_a_predicted_category_absent_from_the_file_counts_in_macro_f1() -> None:
    # Two lines wrongly put in categories the file has none of: they were left out of the
    # average (0.762), which hid those errors; scikit-learn counts them with F1 = 0 (0.593).
    gold = ["roads", "housing_utilities", "housing_utilities", "transport", "safety", "other",
            "safety", "connectivity", "roads", "education"]
    pred = ["roads", "housing_utilities", "housing_utilities", "transport", "healthcare",
            "other", "safety", "connectivity", "landscaping", "healthcare"]
    assert _score(gold, pred) == pytest.approx(f1_score(gold, pred, average="macro"))
    assert _score(gold, pred) == pytest.approx(16 / 27)


def test_a_category_neither_in_the_file_nor_predicted_is_left_out() -> None:
    assert _score(["roads", "transport"], ["roads", "transport"]) == 1.0


@pytest.mark.parametrize("seed", range(20))
def test_macro_f1_equals_scikit_learn_on_random_labels(seed: int) -> None:
    rng = random.Random(seed)
    cats = rng.sample(CATEGORIES, rng.randint(1, len(CATEGORIES)))
    n = rng.randint(1, 60)
    gold = [rng.choice(cats) for _ in range(n)]
    pred = [g if rng.random() < 0.6 else rng.choice(CATEGORIES) for g in gold]
    assert _score(gold, pred) == pytest.approx(
        f1_score(gold, pred, average="macro", zero_division=0), abs=1e-12)
