"""Reload routing rules without a restart.

Why polling: inotify is Linux-only and misses edits made through config-map symlink swaps
(Kubernetes) or network mounts; a stat() of a handful of files every few seconds costs
nothing and works everywhere. Cheap ``(size, mtime_ns, inode, ctime_ns, mode)`` fingerprints
gate the content hash, the hash gates the (comparatively slow) validation, and only fully
valid rules are handed to ``on_change``. An invalid edit keeps the previous rules and logs
the validation problems (file, key path, message: rule files hold no personal data, and no
appeal data is logged). Rules that ``on_change`` refuses (``Router.swap`` without a default
region) are handled the same way: ``last_error`` says why and ``rules`` stays the version
actually in use.

Why a changed file waits one poll: a file an editor or ``cp`` is writing in place, cut at a
line boundary, is valid YAML with entries missing, and validation cannot tell it from a real
edit (rules that drop Biysk route its appeals to the regional ministry). So a change is taken
only once the fingerprint is the same on two polls in a row, and the files are stat'ed again
after reading, to drop a read that raced a new write. The inode catches a rename-replace that
keeps size and mtime (``cp -p``, ``rsync -t``). A writer that dies mid-file still leaves a
settled, shorter file: the reload that takes it warns with what it drops. Replacing the file
atomically (write a temp file, rename it over) avoids all of this.

The SLA policy file (``$APPEALS_POLICY_FILE``) is watched with the rule files: the rules carry
it as read (``RoutingRules.policy_file``) and the agents' policy book is built from it, so an
edit of it settles the same way and is taken as new rules.

Why an unreadable file is looked at again on every poll: fixing it (``chmod``, ``chown``, an
ACL, the directory's permissions) changes neither its size, mtime nor inode, so a fingerprint
taken while it could not be read would never let the fixed file be read. The ctime and mode
catch the usual ``chmod``; a poll whose read failed does not count as having taken the files,
which covers the rest (the content hash, with the unreadable file marked as such, still keeps
the rejection from being validated and logged again on every poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from workers.routing.loader import (
    RulesError,
    content_fingerprint,
    load_rules,
    policy_entry,
    policy_file_path,
    rule_files,
)
from workers.routing.model import RoutingRules

__all__ = ["POLL_INTERVAL_S", "RulesWatcher"]

log = logging.getLogger(__name__)

OnChange = Callable[[RoutingRules], Awaitable[None] | None]
StatFingerprint = tuple[tuple[str, int, int, int, int, int], ...]
"""``(file name, size, mtime_ns, inode, ctime_ns, mode)`` per rule file."""
POLL_INTERVAL_S = 5.0
"""How often the workers poll the rule files and the policy file (a change is taken once it
has stayed the same for one interval)."""
_LISTED = 10
"""Ids named in the warning about a reload that drops entries; the rest are counted."""


def _dropped(old: RoutingRules, new: RoutingRules) -> tuple[list[str], list[str]]:
    """Municipalities (``region/id``) and authorities in ``old`` that ``new`` lacks."""
    municipalities = sorted(
        f"{code}/{mun}"
        for code, region in old.regions.items()
        for mun in region.municipalities
        if code not in new.regions or mun not in new.regions[code].municipalities
    )
    authorities = sorted(a for a in old.authorities if a not in new.authorities)
    return municipalities, authorities


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:_LISTED])
    return shown + (f", … {len(ids) - _LISTED} more" if len(ids) > _LISTED else "")


class RulesWatcher:
    """Poll a rules file or directory; call ``on_change(new_rules)`` after a valid change
    that has settled (unchanged for one poll interval, so a reload takes up to two).

    Typical use with a :class:`~workers.routing.router.Router`::

        watcher = RulesWatcher(path, router.swap, interval=5.0, initial=router.rules)
        watcher.start()          # inside a running event loop
        ...
        await watcher.stop()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_change: OnChange,
        *,
        interval: float = 5.0,
        initial: RoutingRules | None = None,
        default_region: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_change = on_change
        self.interval = interval
        self.default_region = default_region
        self.rules: RoutingRules | None = initial
        self.last_error: RulesError | None = None
        self._seen: StatFingerprint | None = None
        """What the previous poll saw: a change is taken once a poll sees the same again."""
        self._taken: StatFingerprint | None = None
        """The settled files whose content was last hashed (and loaded, or rejected)."""
        self._content_fp: str | None = None
        self._task: asyncio.Task[None] | None = None
        if initial is not None:
            # Compare the disk with what the initial rules were *loaded from*, not with what
            # is there now: an edit made between load_rules() and this watcher is then
            # loaded once it has settled. ``_seen`` and ``_taken`` stay None, so the second
            # poll hashes the files once. (Rules without a fingerprint are reloaded then.)
            self._content_fp = initial.fingerprint

    def _files(self) -> list[tuple[str, Path]]:
        """(fingerprint name, path) of the rule files and the policy file, in the order
        :func:`load_rules` reads them."""
        files = [(f.name, f) for f in rule_files(self.path)]
        policy = policy_file_path()
        if policy is not None:
            files.append((policy_entry(policy), policy))
        return files

    def _stat_fingerprint(self) -> StatFingerprint:
        items = []
        for name, f in self._files():
            try:
                st = f.stat()
            except OSError:
                continue
            # ctime and mode: a chmod that makes an unreadable file readable changes nothing
            # else (see the module docstring).
            items.append(
                (name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode)
            )
        return tuple(items)

    def _content_fingerprint(self) -> tuple[str, bool]:
        """Same hash as :attr:`RoutingRules.fingerprint` for the same files, and whether
        every file could be read."""
        contents: list[tuple[str, bytes | None]] = []
        readable = True
        for name, f in self._files():
            try:
                contents.append((name, f.read_bytes()))
            except OSError:
                contents.append((name, None))
                readable = False
        return content_fingerprint(contents), readable

    def _reject(
        self, error: RulesError, content_fp: str, what: str, *, exc_info: bool = False
    ) -> None:
        """Keep the current rules; remember the content so it is not re-validated every tick."""
        self._content_fp = content_fp
        self.last_error = error
        log.error(
            "routing rules at %s %s, keeping version %s: %s",
            self.path,
            what,
            self.rules.version if self.rules else None,
            error,
            exc_info=exc_info,
        )

    async def check(self) -> bool:
        """One poll. Returns True when new rules were loaded and handed to ``on_change``.

        Without rules in use (no ``initial``) the first poll loads at once: there is nothing
        a half-written file could replace, and a later settled change is taken as usual.
        """
        stat_fp = self._stat_fingerprint()
        previous, self._seen = self._seen, stat_fp
        if self.rules is not None and (stat_fp == self._taken or stat_fp != previous):
            return False  # nothing new, or changed since the last poll: maybe mid-write
        content_fp, readable = self._content_fingerprint()
        # A file that could not be read is read again on the next poll: what makes it
        # readable may leave its stat fingerprint as it is (see the module docstring).
        self._taken = stat_fp if readable else None
        if content_fp == self._content_fp and self.rules is not None:
            return False  # touched, not changed (or still unreadable: already reported)
        try:
            # Validation builds the gazetteer (pymorphy3): keep it off the event loop.
            rules = await asyncio.to_thread(
                load_rules, self.path, default_region=self.default_region
            )
        except RulesError as exc:
            # Unreadable, non-UTF-8 and syntactically broken files: load_rules reads each file
            # once and reports every such problem as a RulesError. (A file cut at a line
            # boundary may be valid: the settling above is what keeps it out.)
            self._reject(exc, exc.fingerprint or content_fp, "rejected")
            return False
        except OSError as exc:
            # Listing the directory failed (it vanished mid-swap): retry on the next tick.
            self._taken = None
            log.warning("routing rules at %s could not be listed (%s); will retry", self.path, exc)
            return False
        except Exception as exc:
            # Not a rules problem: a bug in validation, which would repeat for the same bytes
            # on every tick. Report it once, like an invalid edit; the next edit retries.
            error = RulesError(
                [(str(self.path), "", f"could not be loaded: {type(exc).__name__}: {exc}")]
            )
            self._reject(error, content_fp, "could not be loaded", exc_info=True)
            return False
        after = self._stat_fingerprint()
        if after != stat_fp:
            # Written again while we read: what we read may be half of it. This poll counts
            # as having seen ``after``, so the next one takes it if it stays.
            self._seen, self._taken = after, None
            log.info("routing rules at %s changed while being read; will retry", self.path)
            return False
        loaded_fp = rules.fingerprint or content_fp
        try:
            result = self.on_change(rules)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        except Exception as exc:
            # E.g. Router.swap refusing a set without a default region: the consumer still
            # runs the old rules, so they stay ``self.rules`` and the refusal is the error.
            error = RulesError(
                [(rules.source, "", f"valid, but not taken into use: {exc}")],
                fingerprint=loaded_fp,
            )
            self._reject(error, loaded_fp, f"refused (version {rules.version})")
            return False
        self._content_fp = loaded_fp
        self.last_error = None
        old, self.rules = self.rules, rules
        log.info("routing rules reloaded: %s -> %s", old.version if old else None, rules.version)
        if old is not None:
            municipalities, authorities = _dropped(old, rules)
            if municipalities or authorities:
                # Valid, but maybe not meant: a file cut short by a writer that died loads
                # like an edit that removes entries, and their appeals now go elsewhere.
                log.warning(
                    "routing rules %s drop %d municipalities (%s) and %d authorities (%s) "
                    "that %s had; if that was not intended, restore the file",
                    rules.version,
                    len(municipalities),
                    _listed(municipalities),
                    len(authorities),
                    _listed(authorities),
                    old.version,
                )
        return True

    async def run(self) -> None:
        """Poll forever; errors in one tick never stop the watcher."""
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("routing rules watcher tick failed")
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        """Start polling as a task of the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"routing-rules-watcher:{self.path}"
            )
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> RulesWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
