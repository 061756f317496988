"""Running Lua scripts on Redis: one command and one reply for a whole batch of keys.

Shared by the intake (dedupe, near-duplicates) and the SLA read model. ``redis-py`` loads a
script again by itself when Redis has lost it (restart, ``SCRIPT FLUSH``), so callers need no
start-up step.
"""

from __future__ import annotations

from typing import Any

_scripts: dict[str, Any] = {}


async def run(redis: Any, source: str, keys: list[Any], args: list[Any] | None = None) -> Any:
    """Run a script on ``redis`` (EVALSHA; loaded again by redis-py when Redis lost it).

    The script object is created once per source (it only computes the SHA) and always called
    with the client in hand, so a worker that recreates its Redis client never reuses a closed
    one.
    """
    found = _scripts.get(source)
    if found is None:
        found = _scripts[source] = redis.register_script(source)
    return await found(keys=keys, args=args or [], client=redis)
