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
from streams import (
    ack_safety,
    changelog_flush,
    end_offsets,
    fastpath,
    faust_patches,
    faust_sources,
    fetch_snapshot,
)
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
    for patch in ("resume_order", "natural_batches", "changelog_flush", "ack_safety",
                  "fetch_snapshot", "end_offsets"):
        assert _gauge(patch) == 1, patch


#: For each patch that wraps or replaces Faust code, a function it replaces and one whose
#: private state it relies on: each is compared with the checked release.
CHECKED_TARGETS = [
    ("changelog_flush", "ProducerBuffer._send_pending"),
    ("changelog_flush", "ProducerBuffer.flush"),
    ("changelog_flush", "Topic.publish_message"),
    ("ack_safety", "Consumer.ack"),
    ("ack_safety", "Consumer.perform_seek"),
    ("ack_safety", "Consumer._new_offset"),
    ("fetch_snapshot", "ThreadDelegateConsumer._getmany"),
    ("end_offsets", "AIOKafkaConsumerThread._highwaters"),
]


@pytest.mark.parametrize(("patch", "qualname"), CHECKED_TARGETS)
def test_every_patch_is_checked_against_the_faust_code_it_touches(
        monkeypatch: pytest.MonkeyPatch, patch: str, qualname: str) -> None:
    """changelog_flush, ack_safety, fetch_snapshot and end_offsets were installed on any
    faust-streaming: a release whose hand-over, flush or acknowledgements differ was patched
    without a word, though the README says a worker refuses to start on it."""
    changed_faust(monkeypatch, qualname)
    with pytest.raises(faust_patches.FaustPatchError) as err:
        faust_patches.check(Settings())
    assert f"{patch} (" in str(err.value)
    assert faust_patches.check(Settings(require_faust_patches=False)) == [patch]


@pytest.mark.parametrize(("module", "qualname"), [
    (changelog_flush, "ProducerBuffer._send_pending"),
    (ack_safety, "Consumer.ack"),
    (fetch_snapshot, "ThreadDelegateConsumer._getmany"),
    (end_offsets, "AIOKafkaConsumerThread._highwaters"),
])
def test_an_unchecked_faust_keeps_its_own_code(monkeypatch: pytest.MonkeyPatch, module: Any,
                                               qualname: str) -> None:
    """With APPEALS_REQUIRE_FAUST_PATCHES=false the worker runs Faust's own behaviour there."""
    import faust.topics
    from faust.transport import consumer, producer
    from faust.transport.drivers import aiokafka

    owners = [producer.ProducerBuffer, aiokafka.Producer, consumer.Consumer,
              consumer.ThreadDelegateConsumer, aiokafka.AIOKafkaConsumerThread,
              faust.topics.Topic]
    before = {(owner, name): value for owner in owners for name, value in vars(owner).items()}
    changed_faust(monkeypatch, qualname)
    monkeypatch.setattr(module, "_installed", False)  # as in a fresh process
    assert module.install() is False
    assert module.installed() is False
    after = {(owner, name): value for owner in owners for name, value in vars(owner).items()}
    assert after == before


def test_a_release_without_a_patched_function_is_a_mismatch_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An AttributeError from the digest stopped the start even with the setting false."""
    from faust.transport.consumer import Consumer, ThreadDelegateConsumer

    monkeypatch.setattr(fastpath, "_faust_original", None)
    monkeypatch.setattr(fastpath, "_installed", False)
    monkeypatch.delattr(Consumer, "_drain_messages")
    monkeypatch.delattr(ThreadDelegateConsumer, "_getmany")
    with pytest.raises(faust_patches.FaustPatchError, match=r"fastpath.*fetch_snapshot"):
        faust_patches.check(Settings())
    with caplog.at_level(logging.WARNING):
        missing = faust_patches.check(Settings(require_faust_patches=False))
        assert missing == ["fastpath", "fetch_snapshot"]
        assert fastpath.install() is False
    assert "fastpath, fetch_snapshot" in caplog.text


def test_the_metric_and_the_docs_name_every_patch() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    alerts = (root / "monitoring" / "README.md").read_text()
    for patch in faust_patches.PATCHES:
        assert f"`{patch}`" in readme, patch
        assert f"`{patch}`" in alerts, patch
    assert set(faust_patches.active()) == set(faust_patches.PATCHES)
