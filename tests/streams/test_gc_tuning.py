"""The worker's GC settings (streams.gc_tuning) and their validation."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams import gc_tuning
from streams.settings import ConfigError, Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_freezes_start_up_objects_and_sets_thresholds(restore_gc: None) -> None:
    settings = Settings.load({"APPEALS_GC_THRESHOLD": "40000,20,500"})
    start_up = [{"model": i} for i in range(1000)]  # stands for the classifier and caches
    assert gc_tuning.tune(settings) == (40000, 20, 500)
    assert gc.get_threshold() == (40000, 20, 500)
    assert gc.get_freeze_count() >= len(start_up)


def test_python_leaves_the_collector_alone(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    frozen = gc.get_freeze_count()
    assert gc_tuning.tune(Settings.load({"APPEALS_GC_THRESHOLD": "python"})) is None
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == frozen


def test_default_thresholds() -> None:
    assert Settings.load({}).gc_threshold == "50000,50,1000"


@pytest.mark.parametrize("value", ["50000,50", "a,b,c", "-1,10,10", "1,2,3,4", ""])
def test_bad_thresholds_are_refused_with_the_variable_named(value: str) -> None:
    with pytest.raises(ConfigError, match="APPEALS_GC_THRESHOLD"):
        Settings.load({"APPEALS_GC_THRESHOLD": value})
