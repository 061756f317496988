"""Reload routing rules without a restart.

Why polling: inotify is Linux-only and misses edits made through config-map symlink swaps
(Kubernetes) or network mounts; a stat() of a handful of files every few seconds costs
nothing and works everywhere. Cheap ``(mtime_ns, size)`` fingerprints gate the content hash,
the hash gates the (comparatively slow) validation, and only fully valid rules are handed to
``on_change``. An invalid edit keeps the previous rules and logs the validation problems
(file, key path, message: rule files hold no personal data, and no appeal data is logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from workers.routing.loader import RulesError, load_rules, rule_files
from workers.routing.model import RoutingRules

__all__ = ["RulesWatcher"]

log = logging.getLogger(__name__)

OnChange = Callable[[RoutingRules], Awaitable[None] | None]


class RulesWatcher:
    """Poll a rules file or directory; call ``on_change(new_rules)`` after a valid change.

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
        self._stat_fp: tuple[tuple[str, int, int], ...] | None = None
        self._content_fp: str | None = None
        self._task: asyncio.Task[None] | None = None
        if initial is not None:
            # Remember what is on disk now, so the first poll doesn't reload needlessly.
            self._stat_fp = self._stat_fingerprint()
            self._content_fp = self._content_fingerprint()

    def _stat_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        items = []
        for f in rule_files(self.path):
            try:
                st = f.stat()
            except OSError:
                continue
            items.append((f.name, st.st_mtime_ns, st.st_size))
        return tuple(items)

    def _content_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for f in rule_files(self.path):
            digest.update(f.name.encode())
            try:
                digest.update(f.read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
        return digest.hexdigest()

    async def check(self) -> bool:
        """One poll. Returns True when new rules were loaded and handed to ``on_change``."""
        stat_fp = self._stat_fingerprint()
        if stat_fp == self._stat_fp and self.rules is not None:
            return False
        self._stat_fp = stat_fp
        content_fp = self._content_fingerprint()
        if content_fp == self._content_fp and self.rules is not None:
            return False  # touched, not changed
        try:
            # Validation builds the gazetteer (pymorphy3): keep it off the event loop.
            rules = await asyncio.to_thread(
                load_rules, self.path, default_region=self.default_region
            )
        except RulesError as exc:
            self._content_fp = content_fp  # don't re-validate the same bad content every tick
            self.last_error = exc
            log.error(
                "routing rules at %s rejected, keeping version %s: %s",
                self.path,
                self.rules.version if self.rules else None,
                exc,
            )
            return False
        except Exception:  # I/O races (file replaced mid-read): retry on the next tick
            self._stat_fp = None
            log.exception("routing rules at %s could not be loaded; will retry", self.path)
            return False
        self._content_fp = content_fp
        self.last_error = None
        previous = self.rules.version if self.rules else None
        self.rules = rules
        result = self.on_change(rules)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result
        log.info("routing rules reloaded: %s -> %s", previous, rules.version)
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
