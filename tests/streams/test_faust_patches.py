"""A Faust patch that cannot be installed stops the worker (or, if allowed, shows in a metric).

The three patches the loss fixes rest on install only on the faust-streaming source they were
checked against; on another one they fell back to Faust's own behaviour (which lost records on
table recovery and on stop) with a warning in the log only, so an image built with a newer
Faust ran without them unnoticed. A mismatch is simulated as a new release would look: the
digest of the replaced Faust function differs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from monitoring import metrics
from streams import fastpath, faust_patches, faust_sources
from streams.settings import ConfigError, Settings

REAL_DIGEST = faust_sources.digest


def changed_faust(monkeypatch: pytest.MonkeyPatch, *qualnames: str) -> None:
    """Make the named Faust functions (``Stream.take_events`` ...) look like another release."""

    def digest(function: Callable[..., Any]) -> str:
        if getattr(function, "__qualname__", "") in qualnames:
            return "0" * 64
        return REAL_DIGEST(function)

    monkeypatch.setattr(faust_sources, "digest", digest)


def test_the_installed_faust_fits_every_patch() -> None:
    """The tested faust-streaming (docker/constraints.txt) is the one the patches were checked
    against: an upgrade fails here until someone compares and adds the digests."""
    assert all(faust_patches.source_checked(patch) for patch in faust_patches.PATCHES)
    assert faust_patches.check(Settings()) == []


def test_the_setting_is_a_validated_boolean_defaulting_to_true() -> None:
    assert Settings.load({}).require_faust_patches is True
    assert Settings.load({"APPEALS_REQUIRE_FAUST_PATCHES": ""}).require_faust_patches is True
    assert Settings.load({"APPEALS_REQUIRE_FAUST_PATCHES": "false"}).require_faust_patches is False
    with pytest.raises(ConfigError, match="APPEALS_REQUIRE_FAUST_PATCHES='sometimes'"):
        Settings.load({"APPEALS_REQUIRE_FAUST_PATCHES": "sometimes"})


def test_a_mismatch_is_refused_naming_the_patch_and_the_versions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    changed_faust(monkeypatch, "Stream.take_events")
    with pytest.raises(faust_patches.FaustPatchError) as err:
        faust_patches.check(Settings())
    message = str(err.value)
    assert "\n" not in message
    assert "natural_batches (Stream.take_events)" in message
    assert "fastpath" not in message and "resume_order" not in message
    assert f"faust-streaming {metadata.version('faust-streaming')}" in message
    assert f"aiokafka {metadata.version('aiokafka')}" in message
    assert "APPEALS_REQUIRE_FAUST_PATCHES=false" in message


def test_a_patch_turned_off_is_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    changed_faust(monkeypatch, "Consumer._drain_messages", "Recovery._resume_streams")
    assert faust_patches.check(Settings(faust_fastpath=False, seek_before_resume=False)) == []
    with pytest.raises(faust_patches.FaustPatchError, match=r"resume_order \(Recovery"):
        faust_patches.check(Settings(faust_fastpath=False))


def test_allowed_the_mismatch_is_a_warning(monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    changed_faust(monkeypatch, "Stream.take_events")
    with caplog.at_level(logging.WARNING, logger="streams.faust_patches"):
        missing = faust_patches.check(Settings(require_faust_patches=False))
    assert missing == ["natural_batches"]
    assert "natural_batches" in caplog.text
    assert f"faust-streaming {metadata.version('faust-streaming')}" in caplog.text


def test_create_app_refuses_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry point that builds the app, not only the CLI, stops before patching."""
    from streams.app import create_app

    changed_faust(monkeypatch, "Recovery.on_recovery_completed")
    with pytest.raises(faust_patches.FaustPatchError, match="resume_order"):
        create_app(Settings(app_id="faust-patches-refused"))


def _gauge(patch: str) -> float | None:
    return metrics.REGISTRY.get_sample_value("appeals_faust_patch_active", {"patch": patch})


def test_the_worker_exports_which_patches_are_active(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from workers.pipeline import build_worker

    changed_faust(monkeypatch, "Consumer._drain_messages")
    # As in a fresh process: whether an earlier test installed the fast path must not matter.
    monkeypatch.setattr(fastpath, "_installed", False)
    build_worker(Settings(app_id="faust-patches-gauge", data_dir=str(tmp_path),
                          require_faust_patches=False))
    assert fastpath.installed() is False
    assert _gauge("fastpath") == 0
    assert _gauge("resume_order") == 1
    assert _gauge("natural_batches") == 1
