"""pytest plugin for round 5's condition (d) (``corpus/bank_s9/RULE5.md``): every
``load_classifier()`` in the test session returns the stacked variant saved by
``python -m workers.classification.studies.stacking --save DIR`` (path in ``$R5_MODEL``).

Run: ``R5_MODEL=DIR/stacked.pkl python -m pytest -p
workers.classification.studies.stacked_plugin tests/classification/test_classifier.py``.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    from workers.classification import classifier
    from workers.classification.studies.stacked_model import load_stacked

    clf = load_stacked(os.environ["R5_MODEL"])
    classifier._load_cached = lambda path: clf  # type: ignore[assignment]
    config.stash[_KEY] = clf.version


def pytest_report_header(config: pytest.Config) -> str:
    return f"round 5: load_classifier() returns the stacked variant {config.stash[_KEY]}"


_KEY = pytest.StashKey[str]()
