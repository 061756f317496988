"""Whether the Faust patches the loss fixes rest on can be installed, and what to do if not.

Three modules replace or copy faust-streaming code and install only on the source they were
compared with (:mod:`streams.faust_sources`): :mod:`streams.fastpath` (a record below Faust's
read offset is delivered again rather than dropped), :mod:`streams.resume_order` (seek before
the streams fetch again after recovery) and :mod:`streams.natural_batches` (a batch is
acknowledged only once its body finished, not when a stop closes it). On any other source they
keep Faust's own behaviour, which lost records on table recovery and on stop (README "Faust
behaviours we work around"). That used to be a warning in the log only, so an image built with
a newer faust-streaming ran without the fixes and nobody knew.

Now a worker refuses to start when a patch it would use cannot be installed
(``APPEALS_REQUIRE_FAUST_PATCHES``, true by default), with one line naming the patches and the
installed versions; with the setting false it starts with the warnings as before. Either way
``appeals_faust_patch_active{patch}`` says which patches are in effect, and the
``AppealsFaustPatchInactive`` alert fires on a 0.
"""

from __future__ import annotations

import logging
from importlib import metadata

from streams import fastpath, natural_batches, resume_order
from streams.settings import Settings

log = logging.getLogger(__name__)

#: The patches checked against Faust's source, with the Faust code each replaces; the values of
#: the ``patch`` label of ``appeals_faust_patch_active``.
PATCHES: dict[str, str] = {
    "fastpath": "Consumer._drain_messages",
    "resume_order": "Recovery.on_recovery_completed/_resume_streams",
    "natural_batches": "Stream.take_events",
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
    raise KeyError(patch)


def wanted(settings: Settings) -> list[str]:
    """The patches ``settings`` ask for (natural_batches always: its acknowledgement is also
    what ``APPEALS_NATURAL_BATCHES=false`` runs with)."""
    enabled = {"fastpath": settings.faust_fastpath,
               "resume_order": settings.seek_before_resume,
               "natural_batches": True}
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
            "natural_batches": source_checked("natural_batches")}
