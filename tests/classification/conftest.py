"""Shared fixtures: the shipped classifier (loaded once) and corpus paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.classification.classifier import Classifier, load_classifier

CORPUS = Path(__file__).resolve().parents[2] / "workers" / "classification" / "corpus"


@pytest.fixture(scope="session")
def clf() -> Classifier:
    return load_classifier()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS
