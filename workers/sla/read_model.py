"""The appeals read model in Redis: one hash per appeal, written only forward in state versions.

Why versions: two writers can hold different copies of one appeal's state. The SLA agent writes
each batch's new states; the rebuild after a restart (or after Redis lost its data) writes a
snapshot of the whole table over several round trips while the agent goes on; during a
rebalance the partition's previous owner may still finish a batch. Whoever writes last would
win, so a snapshot taken before an answer could put the appeal back to "running" for good
(seen in ``tests/chaos/test_chaos_kill.py``). Each state carries a version the agent raises on
every change it stores; the script below keeps a hash's fields unless the incoming version is at
least the stored one. The open-breach index follows the same decision.

Retention: only records of answered or closed appeals expire, ``TTL_S`` after the appeal
ended (its answer or close), whenever the record is written. ``TTL_S`` is on the SLA clock,
Redis's ``EXPIRE`` counts wall seconds: the expiry is converted through the clock, so on the
demo's sped-up clock a record lives as many SLA days as a rebuild keeps it (it lived as many
wall days, and Redis kept every record of a long demo). An open appeal's record never
expires: once an appeal is escalated nothing writes it
again until someone acts on it, so an expiry would drop exactly the most neglected appeals from
``/v1/appeals/{id}``, the open-breach list and the supervisor page while the figures still count
them as open and overdue. A write that makes an appeal open again (reopen) removes the expiry.
An answered appeal with a tracked stage still running (an incident's final answer after its
first response) is still open in that sense: its record is kept until the stage ends, and the
close that ends it starts the keeping time (it expired 90 days after the first response, with
the stage's breach and timers still live).

One script call per chunk of states is also cheaper for the worker than ``HSET`` + ``EXPIRE``
(+ ``ZADD``/``ZREM``) pipelined per appeal: one command to pack and one reply to parse.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from streams.clock import SlaClock
from workers.redis_lua import run
from workers.sla.engine import OPEN_STATUSES, State, stage_running

log = logging.getLogger(__name__)

TTL_S = 90 * 86400
CHUNK = 1000
OPEN_BREACHES = "breaches:open"
VERSION_FIELD = "version"
FIELDS = ("status", "sla", "authority_id", "regime", "category", "municipality",
          "registered_at", "due_at", "answered_at", "updated_at", "stages", "duplicate_of")

#: KEYS[1] the open-breach sorted set, KEYS[2..] one appeal hash per state.
#: ARGV: number of fields F, the F field names, then per state: version, appeal id, ttl in
#: seconds (0: never expires), breach action ("add", "rem" or ""), due score, the F values.
#: Returns how many were written. Besides the set of all open breaches it keeps one per
#: authority, ``KEYS[1]:<authority_id>`` (:func:`authority_breaches_key`), so that a listing
#: filtered by authority reads only that body's breaches: the filtered listing used to page
#: through the whole index, 4.5 s of API CPU per supervisor page when one body had 100,000
#: overdue appeals, and stopped short there (review of session 13). A redirect moves the
#: appeal: the authority the hash held before the write loses it. These keys are built in the
#: script, which a Redis Cluster would refuse; the deployment runs one Redis.
WRITE_IF_NOT_OLDER = """
local f = tonumber(ARGV[1])
local stride = 5 + f
local written = 0
local aidx = 0
for j = 1, f do
  if ARGV[1 + j] == 'authority_id' then aidx = j end
end
for i = 2, #KEYS do
  local o = 2 + f + (i - 2) * stride
  local version = tonumber(ARGV[o])
  local stored = redis.call('HGET', KEYS[i], 'version')
  if (not stored) or tonumber(stored) <= version then
    local id = ARGV[o + 1]
    local auth = ''
    local before = false
    if aidx > 0 then
      auth = ARGV[o + 4 + aidx]
      before = redis.call('HGET', KEYS[i], 'authority_id')
    end
    local args = {'version', ARGV[o]}
    for j = 1, f do
      args[#args + 1] = ARGV[1 + j]
      args[#args + 1] = ARGV[o + 4 + j]
    end
    redis.call('HSET', KEYS[i], unpack(args))
    local ttl = tonumber(ARGV[o + 2])
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      redis.call('PERSIST', KEYS[i])
    end
    local action = ARGV[o + 3]
    if before and before ~= '' and before ~= auth then
      redis.call('ZREM', KEYS[1] .. ':' .. before, id)
    end
    if action == 'add' then
      redis.call('ZADD', KEYS[1], ARGV[o + 4], id)
      if auth ~= '' then redis.call('ZADD', KEYS[1] .. ':' .. auth, ARGV[o + 4], id) end
    elseif action == 'rem' then
      redis.call('ZREM', KEYS[1], id)
      if auth ~= '' then redis.call('ZREM', KEYS[1] .. ':' .. auth, id) end
    end
    written = written + 1
  end
end
return written
"""


def key_prefix(app_id: str) -> str:
    """The prefix of every read-model key of the application ``app_id`` (the SLA agent's)."""
    return f"{app_id}:"


def authority_breaches_key(prefix: str, authority_id: str) -> str:
    """The open breaches of one authority (kept by :data:`WRITE_IF_NOT_OLDER`)."""
    return f"{prefix}{OPEN_BREACHES}:{authority_id}"


def appeal_key(prefix: str, appeal_id: str) -> str:
    """The Redis hash of one appeal's read model; ``prefix`` as from :func:`key_prefix`."""
    return f"{prefix}appeal:{appeal_id}"


def bump_version(state: State) -> None:
    """Mark a state about to be stored as newer than every copy stored before it."""
    state["v"] = int(state.get("v") or 0) + 1


def sla_status(state: State) -> str:
    if state["status"] == "answered":
        return "met" if state.get("on_time") else "breached_late"
    if state["status"] == "paused":
        return "paused"
    if state["status"] == "closed":
        return "closed"
    if state.get("breached"):
        return "breached"
    if f"warning:{state['cycle']}" in state["alerts"]:
        return "warning"
    return "extended" if _period_extended(state) else "running"


def _period_extended(state: State) -> bool:
    """Whether the running answer period was extended: an extension among its adjustments.

    Not ``ext``: that counts the body's extensions across reopens (a reopen gives no second
    one), and a reopened period with the plain deadline showed as "extended". A state written
    before a period's adjustments were kept (no ``adj``) has only ``ext`` to go by."""
    adj = state.get("adj")
    if adj is None:
        return bool(state.get("ext"))
    return any(entry[0] == "e" for entry in adj)


def _iso(ts: float | None) -> str:
    """``ts`` as an ISO UTC moment ("" for none)."""
    return _iso_moment(ts) if ts else ""


@lru_cache(maxsize=16384)
def _iso_moment(ts: float) -> str:
    """Remembered: an appeal's registration and deadline are written again with every change
    of its state. Errors are never cached."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _breach_action(state: State) -> str:
    """Open breaches for the API, sorted by deadline: all of them, and per authority (the
    write script moves an appeal between authorities' sets on a redirect).

    Every other state is removed, not only those with a recorded breach day: a breach taken
    back by an event stamped before the deadline (the engine's ``_retract_breach``) empties
    ``bdays`` too, and its entry stayed listed by ``/v1/breaches`` and the supervisor page for
    good (review of session 15). Only a state that ever had a breach can be listed, so the
    others (most writes) skip the removal: its alert stays recorded after a retraction."""
    if state["status"] in OPEN_STATUSES and state.get("breached"):
        return "add"
    if state.get("bdays") or any(a.startswith("breach:") for a in state.get("alerts", ())):
        return "rem"
    return ""


def _ended_at(state: State) -> float | None:
    """When an ended appeal ended (its latest answer or close, SLA clock); None if unknown."""
    ended = [float(m) for m in (state.get("closed"), state.get("answered")) if m]
    return max(ended) if ended else None


def _expired(state: State, now: float) -> bool:
    """An ended appeal whose record's keeping time has run out by ``now`` (SLA clock): every
    rebuild of its partition (each rebalance or restart) wrote it again with a fresh 90 days,
    so Redis kept the record of every appeal ever handled (review of session 15)."""
    if _kept_open(state):
        return False
    ended = _ended_at(state)
    return ended is not None and ended + TTL_S <= now


def _kept_open(state: State) -> bool:
    """A record kept with no expiry: the appeal, or one of its tracked stages, still runs."""
    return state.get("status") in OPEN_STATUSES or stage_running(state)


def _ttl(state: State, now: float, clock: SlaClock | None = None) -> int:
    """Wall-clock seconds this state's record is kept after a write at ``now`` (SLA clock), as
    ``clock`` converts them (None: the SLA clock runs at wall speed); 0: kept while the appeal
    or a tracked stage of it runs (:func:`_kept_open`).

    An ended appeal's record is kept until ``TTL_S`` after it ended, not after the write: a
    rebuild (every rebalance or restart) gave it a fresh ``TTL_S`` each time, so a record
    written again on day 89 was kept until day 179. At least a second (Redis's ``EXPIRE``
    with 0 or less deletes at once), and at most ``TTL_S`` (an end stamped ahead of the
    clock is not kept longer than a write now would keep it). An ended state without its
    moment (stored by an older version) keeps ``TTL_S`` from the write.
    """
    if _kept_open(state):
        return 0
    ended = _ended_at(state)
    kept = float(TTL_S) if ended is None else min(float(TTL_S), ended + TTL_S - now)
    if clock is not None:
        kept = clock.wall_time_of(now + kept) - clock.wall_time_of(now)
    return max(1, math.ceil(round(kept, 3)))  # the conversion's rounding adds no second


def _values(state: State, updated_at: str) -> list[Any]:
    return [state["status"], sla_status(state), state["auth"], state["regime"],
            state.get("cat") or "", state.get("muni") or "", _iso(state["reg"]),
            _iso(state["due"]), _iso(state["answered"]), updated_at, _stages(state),
            state.get("dup") or ""]


def _stages(state: State) -> str:
    """The tracked stages (``engine`` ``stg``) as JSON text for the API; "" for none.

    Each stage's current run (``run``: 0, then one more per restart at a receiving body or a
    reopen): its deadline, when it was settled (a 59-FZ body accepted or answered the appeal:
    no timers any more, but a later redirect is still judged against the deadline) or ended,
    whether this run's breach was reported, and ``breaches`` over every run (a late redirect's
    breach belongs to the run it ended, which the receiving body's run replaces).
    """
    entries = state.get("stg")
    if not entries:
        return ""
    alerts = state["alerts"]
    out = []
    for name, start, due, _warn, k, ended, _timer, settled in entries:
        breach = f"{name}.breach:"
        out.append({"stage": name, "run": k, "started_at": _iso(start), "due_at": _iso(due),
                    "settled_at": _iso(settled) or None, "ended_at": _iso(ended) or None,
                    "breached": f"{breach}{k}" in alerts,
                    "breaches": sum(1 for a in alerts if a.startswith(breach))})
    return orjson.dumps(out).decode()


class UnwritableState(ValueError):
    """A stored state that no read-model record can be made of (see :func:`script_args`)."""


def script_args(state: State, updated_at: str, now: float,
                clock: SlaClock | None = None) -> list[Any]:
    """One state's arguments to the write script (written at ``now``, SLA clock; ``clock`` as
    for :func:`_ttl`): version, appeal id, ttl, breach action, due score, then the values of
    :data:`FIELDS`.

    Raises :class:`UnwritableState` for a state that cannot be written: no appeal id, a moment
    outside what a date can show, a value Redis cannot take. Such a state was once stored (a
    routed appeal without an id; an answer applied halfway), and Redis refusing it was taken
    for an outage: every write and rebuild of its partition failed again.
    """
    appeal_id = state.get("id")
    if not isinstance(appeal_id, str) or not appeal_id:
        raise UnwritableState("the state has no appeal id")
    try:
        due = state["due"]
        args = [int(state.get("v") or 0), appeal_id, _ttl(state, now, clock),
                _breach_action(state), due, *_values(state, updated_at)]
    except (LookupError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise UnwritableState(f"{type(exc).__name__}: {exc}") from None
    if isinstance(due, bool) or not isinstance(due, int | float) or not math.isfinite(due):
        raise UnwritableState("the due moment is not a number")
    if not all(isinstance(v, str) for v in args[5:]):
        raise UnwritableState("a field of the record is not text")
    return args


async def write(redis: Any, prefix: str, states: Iterable[State], now: float, *,
                clock: SlaClock | None = None, skip_expired: bool = False) -> int:
    """Store the read model of these (routed) states; returns how many hashes were written.

    ``now`` is on the SLA clock, and ``clock`` (the worker's) turns the records' keeping time
    into the wall seconds Redis counts; None only where the SLA clock runs at wall speed.

    A state that cannot be written is left out, with an error in the log naming its appeal,
    so that it cannot fail the records of every other state written with it.
    ``skip_expired`` (a rebuild from the whole table): an ended appeal whose record's keeping
    time has run out by ``now`` is left out too (:func:`_expired`).
    """
    updated_at = _iso(now)
    head: list[Any] = [len(FIELDS), *FIELDS]
    written = 0
    chunk: list[tuple[str, list[Any]]] = []
    for state in states:
        if "id" not in state:
            continue  # only events waiting for the routing: nothing to show yet
        if skip_expired and _expired(state, now):
            continue
        try:
            args = script_args(state, updated_at, now, clock)
        except UnwritableState as exc:
            log.error("read model of appeal %r not written, its state is unusable: %s",
                      str(state.get("id"))[:80], exc)
            continue
        chunk.append((appeal_key(prefix, args[1]), args))
        if len(chunk) >= CHUNK:
            written += await _write_chunk(redis, prefix, head, chunk)
            chunk = []
    if chunk:
        written += await _write_chunk(redis, prefix, head, chunk)
    return written


async def _write_chunk(redis: Any, prefix: str, head: list[Any],
                       rows: Sequence[tuple[str, list[Any]]]) -> int:
    keys = [f"{prefix}{OPEN_BREACHES}"]
    args = list(head)
    for key, state_args in rows:
        keys.append(key)
        args += state_args
    return int(await run(redis, WRITE_IF_NOT_OLDER, keys, args))
