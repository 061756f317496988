"""The extra-lines study's exam must be the lines the model already had, for both variants."""

from __future__ import annotations

import numpy as np

from workers.classification import train as training
from workers.classification.corpusgen.generate import read_handwritten
from workers.classification.studies import cv

NEW = training.CORPUS_DIR / "handwritten_urgency4_train.tsv"


def test_the_exam_leaves_out_the_new_file_and_the_variant_appends_it_at_the_end() -> None:
    every = cv.training_data()
    old = cv.training_data(exclude_tpl_prefix=f"{NEW.stem}:")
    rows = read_handwritten(NEW)
    # The file is in the shipped training data; the exam is everything else.
    assert len(old.y_urg) == len(every.y_urg) - len(rows) > 0
    assert not any(str(g).startswith(f"{NEW.stem}:") for g in old.groups)
    both = cv.training_data_with(old, rows)
    n = len(old.y_urg)
    assert both.texts[:n] == old.texts
    assert both.texts[n:] == [r["text"] for r in rows]
    assert (both.y_urg[:n] == old.y_urg).all() and (both.y_cat[:n] == old.y_cat).all()
    assert both.y_urg[n:].tolist() == [bool(r["urgent"]) for r in rows]
    assert list(both.groups[n:]) == [r["tpl"] for r in rows]
    assert np.all(both.weight[n:] == training.HANDWRITTEN_WEIGHT)
    assert (both.weight[:n] == old.weight).all()
    # Featurised afresh on the combined texts, as train.py would fit them.
    assert both.x.shape[0] == n + len(rows) and both.x.shape[1] >= old.x.shape[1]


def test_several_files_are_left_out_of_the_exam_together() -> None:
    second = training.CORPUS_DIR / "handwritten_general5_train.tsv"
    every = cv.training_data()
    old = cv.training_data(exclude_tpl_prefix=(f"{NEW.stem}:", f"{second.stem}:"))
    assert len(old.y_urg) == (len(every.y_urg) - len(read_handwritten(NEW))
                              - len(read_handwritten(second)))
    assert not any(str(g).startswith((f"{NEW.stem}:", f"{second.stem}:")) for g in old.groups)
