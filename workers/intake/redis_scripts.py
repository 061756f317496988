"""Lua scripts for the intake agent's per-batch Redis work: one command and one reply per batch.

Why scripts: a batch of 500 appeals needed ~2,000 pipelined commands (dedupe ``SET NX`` + ``GET``,
near-duplicate ``HGETALL``, ``HSET`` + ``EXPIRE``), and redis-py spends several microseconds of
the worker's CPU packing each command and parsing each reply; that was ~20% of the worker's CPU
in the issue #7 profile. A script does the same commands inside Redis, atomically per batch, and
answers with a single array. ``redis-py`` loads a script again by itself when Redis has lost it
(restart, ``SCRIPT FLUSH``), so these need no start-up step.
"""

from __future__ import annotations

from typing import Any

from workers.redis_lua import run

__all__ = ["FIRST_SEEN", "HGETALL_MANY", "HSET_EXPIRE_MANY", "pairs_to_dict", "run"]

#: For each key: ``SET key mark NX EX ttl``; 1 if this call stored ``mark`` or the key already
#: holds it (a replay of the very message), else 0 (a resend).
FIRST_SEEN = """
local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local mark = ARGV[i + 1]
  if redis.call('SET', KEYS[i], mark, 'NX', 'EX', ttl) then
    out[i] = 1
  elseif redis.call('GET', KEYS[i]) == mark then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

#: ``HGETALL`` of every key, as one array of flat field/value arrays.
HGETALL_MANY = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGETALL', KEYS[i])
end
return out
"""

#: For each key: ``HSET key field value`` and ``EXPIRE key ttl`` (fields and values in ARGV).
HSET_EXPIRE_MANY = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], ARGV[2 * i], ARGV[2 * i + 1])
  redis.call('EXPIRE', KEYS[i], ttl)
end
return #KEYS
"""

def pairs_to_dict(flat: list[Any]) -> dict[Any, Any]:
    """A Lua-returned ``HGETALL`` reply (field, value, field, value, ...) as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))
