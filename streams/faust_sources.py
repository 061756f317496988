"""The fingerprint of a faust-streaming function that one of our patches was checked against.

Seven modules replace, wrap or copy Faust code (:data:`streams.faust_patches.PATCHES`). Each
keeps the sha256 of the sources it was written against (the functions it replaces and those
whose internals it relies on) and keeps Faust's own behaviour on any other release, so an
upgrade cannot silently run a patch against code it was never compared with. Reading a source
means reading a file, so a function's digest is computed once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, cast


@functools.cache
def digest(function: Callable[..., Any]) -> str:
    """sha256 of ``inspect.getsource(function)``."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def digest_or_none(get: Callable[[], Callable[..., Any]]) -> str | None:
    """:func:`digest` of what ``get`` returns; None when a release has no such function (or
    module, or readable source): a patch of it counts as not checked rather than failing the
    start with a traceback, which ``APPEALS_REQUIRE_FAUST_PATCHES=false`` could not get past."""
    try:
        return digest(get())
    except (ImportError, AttributeError, OSError, TypeError):
        return None


def target_digest(target: str, originals: Mapping[str, Any] | None = None) -> str | None:
    """Digest of ``target`` (``module:Class.method``) as Faust ships it: the saved original
    once a patch replaced it (a replacement made with ``functools.wraps`` reads as the
    original anyway)."""

    def get() -> Callable[..., Any]:
        saved = (originals or {}).get(target)
        if saved is not None:
            return cast(Callable[..., Any], saved)
        module, _, qualname = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return cast(Callable[..., Any], obj)

    return digest_or_none(get)


def mismatched(known: Mapping[str, frozenset[str]],
               originals: Mapping[str, Any] | None = None) -> list[str]:
    """The targets of ``known`` whose installed source is none of their checked digests
    (absent ones included)."""
    return [target for target, digests in known.items()
            if target_digest(target, originals) not in digests]
