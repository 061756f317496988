"""An empty APPEALS_* value means the setting's default, for booleans as for numbers.

Manifests template variables as ``${X:-}``; an empty boolean was read as false, so e.g.
APPEALS_SEEK_BEFORE_RESUME="" silently turned a data-loss guard off, while an empty optional
number already meant "not set". Booleans are also read with blanks around them, as numbers are.
"""

from __future__ import annotations

import dataclasses

import pytest

from streams.processes import worker_env
from streams.settings import Settings

DEFAULTS = Settings()
TYPED = [f.name for f in dataclasses.fields(Settings)
         if f.name != "extra" and not isinstance(f.default, str)]
BOOLS = [name for name in TYPED if isinstance(getattr(DEFAULTS, name), bool)]


def test_the_guards_are_among_the_booleans() -> None:
    assert {"seek_before_resume", "verify_end_offsets", "faust_fastpath",
            "natural_batches"} <= set(BOOLS)


@pytest.mark.parametrize("name", TYPED)
@pytest.mark.parametrize("raw", ["", "  "])
def test_an_empty_value_means_the_default(name: str, raw: str) -> None:
    settings = Settings.load({f"APPEALS_{name.upper()}": raw})
    assert getattr(settings, name) == getattr(DEFAULTS, name)


@pytest.mark.parametrize("name", BOOLS)
def test_booleans_are_read_with_blanks_around_them(name: str) -> None:
    var = f"APPEALS_{name.upper()}"
    # natural batches off needs a linger above 0 (the default 0.02 is)
    assert getattr(Settings.load({var: " true"}), name) is True
    assert getattr(Settings.load({var: "False \n"}), name) is False


def test_an_empty_string_setting_stays_empty() -> None:
    assert Settings.load({"APPEALS_TOPIC_PREFIX": ""}).topic_prefix == ""
    assert Settings.load({"APPEALS_WEBHOOK_URL": ""}).webhook_url == ""


def test_worker_env_still_round_trips_unset_and_false_values() -> None:
    settings = Settings(warning_share=None, seek_before_resume=False, web_enabled=True)
    assert Settings.load(worker_env(settings, settings.metrics_port)) == settings
