"""Classification of Russian-language citizens' appeals: category, urgency, confidence.

Public API::

    from workers.classification import load_classifier
    clf = load_classifier()                 # cached; the model shipped in the package
    res = clf.classify("Нет отопления, на улице -30")
    res.category, res.urgent, res.confidence, res.top3, res.model_version
    clf.classify_batch(texts)               # same results, much faster per appeal

See ``corpus/README.md`` for the labelling guide and ``cli.py`` for ``appeals classify``.
"""

from __future__ import annotations

from .classifier import (
    DEFAULT_MODEL_PATH,
    DEFAULT_TRIAGE_THRESHOLD,
    Classification,
    Classifier,
    load_classifier,
)

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DEFAULT_TRIAGE_THRESHOLD",
    "Classification",
    "Classifier",
    "load_classifier",
]
