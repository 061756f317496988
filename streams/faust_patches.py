"""Whether the Faust patches the loss fixes rest on can be installed, and what to do if not.

Seven modules replace, wrap or copy faust-streaming code and install only on the source they
were compared with (:mod:`streams.faust_sources`): :mod:`streams.fastpath` (a record below
Faust's read offset is delivered again rather than dropped), :mod:`streams.resume_order` (seek
before the streams fetch again after recovery), :mod:`streams.natural_batches` (a batch is
acknowledged only once its body finished, not when a stop closes it),
:mod:`streams.changelog_flush` (a commit waits until every changelog record is delivered),
:mod:`streams.ack_safety` (no acknowledgement of records no stream processed),
:mod:`streams.fetch_snapshot` (a fetch drains only the partitions it asked for) and
:mod:`streams.end_offsets` (recovery reads up to the true end of a changelog). On any other
source they keep Faust's own behaviour, which lost records on table recovery and on stop
(README "Faust behaviours we work around"). That used to be a warning in the log only, so an
image built with a newer faust-streaming ran without the fixes and nobody knew; and the last
four were installed on any release, over code nobody had compared them with, and a release
without a patched function stopped the worker with a traceback whatever the setting.

Now a worker refuses to start when a patch it would use cannot be installed
(``APPEALS_REQUIRE_FAUST_PATCHES``, true by default), with one line naming the patches and the
installed versions; with the setting false it starts with the warnings as before. Either way
``appeals_faust_patch_active{patch}`` says which patches are in effect, and the
``AppealsFaustPatchInactive`` alert fires on a 0.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from streams import (
    ack_safety,
    changelog_flush,
    end_offsets,
    fastpath,
    fetch_snapshot,
    natural_batches,
    resume_order,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

#: The patches checked against Faust's source, with the Faust code each replaces; the values of
#: the ``patch`` label of ``appeals_faust_patch_active``.
PATCHES: dict[str, str] = {
    "fastpath": "Consumer._drain_messages",
    "resume_order": "Recovery.on_recovery_completed/_resume_streams",
    "natural_batches": "Stream.take_events",
    "changelog_flush": "ProducerBuffer._send_pending/flush, Producer.flush",
    "ack_safety": "Consumer.ack/perform_seek",
    "fetch_snapshot": "ThreadDelegateConsumer._getmany",
    "end_offsets": "AIOKafkaConsumerThread._highwaters",
}


class FaustPatchError(RuntimeError):
    """A patch the worker would use does not match the installed faust-streaming."""


def source_checked(patch: str) -> bool:
    """Whether the installed Faust code ``patch`` replaces is the code it was checked against."""
    if patch == "fastpath":
        return fastpath.source_digest() in fastpath.KNOWN_SOURCES
    if patch == "resume_order":
        return all(resume_order.source_digest(name) in digests
                   for name, digests in resume_order.KNOWN_SOURCES.items())
    if patch == "natural_batches":
        return natural_batches.source_digest() in natural_batches.KNOWN_SOURCES
    if patch in _CHECKED_BY_MODULE:
        return _CHECKED_BY_MODULE[patch].source_checked()
    raise KeyError(patch)


#: The patches whose module checks every Faust function it replaces or relies on itself.
_CHECKED_BY_MODULE: dict[str, Any] = {
    "changelog_flush": changelog_flush,
    "ack_safety": ack_safety,
    "fetch_snapshot": fetch_snapshot,
    "end_offsets": end_offsets,
}


def wanted(settings: Settings) -> list[str]:
    """The patches ``settings`` ask for (natural_batches always: its acknowledgement is also
    what ``APPEALS_NATURAL_BATCHES=false`` runs with; end_offsets unless
    ``APPEALS_VERIFY_END_OFFSETS=0``)."""
    enabled = {"fastpath": settings.faust_fastpath,
               "resume_order": settings.seek_before_resume,
               "natural_batches": True,
               "changelog_flush": True,
               "ack_safety": True,
               "fetch_snapshot": True,
               "end_offsets": settings.verify_end_offsets}
    return [patch for patch in PATCHES if enabled[patch]]


def versions() -> str:
    """``faust-streaming X, aiokafka Y``: what a mismatch is about."""
    parts = []
    for dist in ("faust-streaming", "aiokafka"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def check(settings: Settings, *, warn: bool = True) -> list[str]:
    """The wanted patches that cannot be installed; raises :class:`FaustPatchError` for them
    unless ``APPEALS_REQUIRE_FAUST_PATCHES`` is false (then a warning, if ``warn``)."""
    missing = [patch for patch in wanted(settings) if not source_checked(patch)]
    if missing and settings.require_faust_patches:
        named = ", ".join(f"{patch} ({PATCHES[patch]})" for patch in missing)
        raise FaustPatchError(
            f"{versions()} installed, and the Faust patches that do not match this "
            f"faust-streaming cannot be installed: {named}. Without them records can be lost "
            "on table recovery and on stop: install the versions of docker/constraints.txt, or "
            "set APPEALS_REQUIRE_FAUST_PATCHES=false to start with Faust's own behaviour")
    if missing and warn:
        log.warning("APPEALS_REQUIRE_FAUST_PATCHES=false: running without Faust patch %s on "
                    "%s (records can be lost on table recovery and on stop)",
                    ", ".join(missing), versions())
    return missing


def active() -> dict[str, bool]:
    """Which patches are in effect in this process (after :func:`streams.app.create_app`)."""
    return {"fastpath": fastpath.installed(),
            "resume_order": resume_order.installed(),
            "natural_batches": source_checked("natural_batches"),
            **{patch: module.installed() for patch, module in _CHECKED_BY_MODULE.items()}}
