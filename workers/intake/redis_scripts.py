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

__all__ = ["FIRST_SEEN", "HGETALL_MANY", "HSET_CAPPED_MANY", "pairs_to_dict", "run"]

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

#: For each key: ``HSET key field value`` and ``EXPIRE key ttl`` (ARGV: ttl, cap, then the
#: fields and values); then every written hash holding more than ``cap`` fields keeps the ``cap``
#: whose values carry the latest timestamps (a big-endian double at the start of each value, as
#: :func:`workers.intake.near_duplicates._pack` writes it; ties: the larger field name) and drops
#: the rest. Returns how many fields were dropped. Values that don't parse count as oldest.
HSET_CAPPED_MANY = """
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local written = {}
local order = {}
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], ARGV[2 * i + 1], ARGV[2 * i + 2])
  redis.call('EXPIRE', KEYS[i], ttl)
  if not written[KEYS[i]] then
    written[KEYS[i]] = true
    order[#order + 1] = KEYS[i]
  end
end
local dropped = 0
for _, key in ipairs(order) do
  if redis.call('HLEN', key) > cap then
    local flat = redis.call('HGETALL', key)
    local entries = {}
    for j = 1, #flat, 2 do
      local ok, ts = pcall(struct.unpack, '>d', flat[j + 1])
      if not ok then ts = -math.huge end
      entries[#entries + 1] = {ts, flat[j]}
    end
    table.sort(entries, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
    for j = 1, #entries - cap do
      redis.call('HDEL', key, entries[j][2])
      dropped = dropped + 1
    end
  end
end
return dropped
"""

def pairs_to_dict(flat: list[Any]) -> dict[Any, Any]:
    """A Lua-returned ``HGETALL`` reply (field, value, field, value, ...) as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))
