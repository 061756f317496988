"""The due-time index in Redis: one sorted set of timers per partition, scored by due moment.

Faust has no per-key timers, so deadlines live in the SLA table and this index lets every worker
find, each sweep, the timers of its own partitions that are due, in O(log n). The index is
derived data: on start-up, after a rebalance, or when its readiness marker has vanished (Redis
restarted empty) or names another Redis process (restarted from a snapshot older than the
index) it is rebuilt from the table, so losing Redis never loses a deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError

from workers.sla.engine import (
    EARLY_HOLD,
    EscalationAfter,
    State,
    Timer,
    escalation_at,
    held_timer,
    stage_timers,
)


def due_key(prefix: str, partition: int) -> str:
    return f"{prefix}sla:due:{partition}"


def ready_key(prefix: str, partition: int) -> str:
    return f"{prefix}sla:ready:{partition}"


def parse_member(member: bytes | str) -> tuple[str, str, int]:
    text = member.decode() if isinstance(member, bytes) else member
    appeal_id, kind, cycle = text.rsplit("|", 2)
    return appeal_id, kind, int(cycle)


def pending_timers(state: State, escalation_after: EscalationAfter, *,
                   early_hold: float = EARLY_HOLD) -> list[Timer]:
    """Timers an appeal still needs, from its state alone (used by the rebuild): those of the
    running answer period, of its open stages (which run on after the answer, e.g. an
    incident's final answer) and of its kept reopens and answers (``engine.held_timer``,
    whatever the status: an answered appeal's second answer waits there). ``escalation_after``
    counts the escalation only of a state stored without its moment (``engine.escalation_at``);
    ``early_hold`` (``SlaRules.early_hold``) the expiry of kept ones stored as bare moments by
    a version before 470f26f, which would otherwise never get a timer."""
    held = held_timer(state, early_hold)
    if state.get("status") != "running":
        return [*stage_timers(state), *([held] if held is not None else [])]
    cycle = state["cycle"]
    fired = set(state["alerts"])
    out = []
    breached = f"breach:{cycle}" in fired
    if f"warning:{cycle}" not in fired and not breached:  # never a warning after the breach
        out.append(Timer(state["id"], "warning", state["warn"], cycle))
    if not breached:
        out.append(Timer(state["id"], "breach", state["due"], cycle))
    elif f"escalation:{cycle}" not in fired and state.get("breached"):
        out.append(Timer(state["id"], "escalation", escalation_at(state, escalation_after),
                         cycle))
    out.extend(stage_timers(state))
    if held is not None:
        out.append(held)
    return out


class Plan:
    """A batch's timer changes for one partition, netted in the order they were made.

    Why: ``schedule`` removes before it adds, so a timer armed by one event and cancelled by a
    later one of the same batch (or by the same transition: a resume then an answer) would
    stay in the index and tick for nothing. Here the last word on each timer wins, and within
    one transition a cancel wins over an add.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[Timer, bool]] = {}

    def record(self, effects: Any) -> None:
        for timer in effects.timers:
            self._last[timer.member] = (timer, True)
        for timer in effects.cancel:
            self._last[timer.member] = (timer, False)

    def net(self) -> tuple[list[Timer], list[Timer]]:
        """(timers to add, timers to remove)."""
        add = [t for t, keep in self._last.values() if keep]
        remove = [t for t, keep in self._last.values() if not keep]
        return add, remove


def schedule(pipe: Any, prefix: str, partition: int, add: Iterable[Timer],
             remove: Iterable[Timer]) -> None:
    key = due_key(prefix, partition)
    removing = [t.member for t in remove]
    if removing:
        pipe.zrem(key, *removing)
    adding = {t.member: t.due_ts for t in add}
    if adding:
        pipe.zadd(key, adding)


#: Timer members per Redis round trip when a batch's plans are large (a recompute moves every
#: open appeal of a partition): redis-py packs a whole pipeline in one synchronous step, and
#: one of 100,000 members held the event loop for most of a second.
WRITE_CHUNK = 5000


async def write_plans(redis: Any, prefix: str, plans: dict[int, Plan],
                      chunk: int = WRITE_CHUNK) -> None:
    """Apply the net timer changes of ``plans`` to the index: one pipeline for a usual batch,
    several of at most ``chunk`` members each for a large one. Each member is either added or
    removed (``Plan.net``), so the order of the pieces does not matter."""
    ops: list[tuple[int, list[Timer], list[Timer]]] = []
    for partition, plan in plans.items():
        add, remove = plan.net()
        ops.extend((partition, [], remove[i:i + chunk]) for i in range(0, len(remove), chunk))
        ops.extend((partition, add[i:i + chunk], []) for i in range(0, len(add), chunk))
    start = 0
    while start < len(ops):
        size, end = 0, start
        while end < len(ops) and (end == start or size + _members(ops[end]) <= chunk):
            size += _members(ops[end])
            end += 1
        async with redis.pipeline(transaction=False) as pipe:
            for partition, add, remove in ops[start:end]:
                schedule(pipe, prefix, partition, add, remove)
            await pipe.execute()
        start = end


def _members(op: tuple[int, list[Timer], list[Timer]]) -> int:
    return len(op[1]) + len(op[2])


#: Merges the rebuilt timers into the live index and sets the readiness marker, only if the
#: temporary set still holds every timer written to it and the guard key set before the
#: states were read still exists: a FLUSHALL (or an eviction) in the middle of a rebuild, or
#: between the read of the states and the rebuild, left an index marked ready without the
#: timers written before the loss, and those never fired.
_FINISH = """
if redis.call('ZCARD', KEYS[2]) ~= tonumber(ARGV[1])
    or (ARGV[3] == '1' and redis.call('EXISTS', KEYS[4]) == 0) then
  redis.call('DEL', KEYS[2])
  return 0
end
if tonumber(ARGV[1]) > 0 then
  redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], KEYS[2], 'AGGREGATE', 'MIN')
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[2])
return 1
"""


async def server_token(redis: Any) -> str:
    """What identifies the Redis process: its ``run_id``, new at every start. The readiness
    marker holds it, so an index restored from an older snapshot (a restart that loaded the
    RDB or AOF file) is told from the one this worker built: its marker names the process
    that wrote it, and the timers written after that snapshot are missing."""
    try:
        info = await redis.info("server")
    except ResponseError:  # INFO disabled by a managed service
        return ""
    return str(info.get("run_id") or "")


async def set_guard(redis: Any, prefix: str, ttl_s: int = 3600) -> str:
    """A key that exists until Redis loses its data (or ``ttl_s`` passes): set before the
    states of a rebuild are read, checked when it finishes (:data:`_FINISH`)."""
    import uuid

    key = f"{prefix}sla:rebuild-guard:{uuid.uuid4().hex}"
    await redis.set(key, "1", ex=ttl_s)
    return key


def marker_matches(value: bytes | str | None, token: str | None) -> bool:
    """Whether a readiness marker says the index is complete in the Redis process ``token``
    names (any marker, while the token is not known yet)."""
    if not value:
        return False
    if not token:
        return True
    text = value.decode() if isinstance(value, bytes) else value
    return text == token


async def rebuild(redis: Any, prefix: str, partition: int, states: Iterable[State],
                  escalation_after: EscalationAfter, chunk: int = 5000,
                  token: str = "1", guard: str | None = None,
                  early_hold: float = EARLY_HOLD) -> int:
    """Replace one partition's index with the timers its states need; returns the count, or
    -1 when Redis lost part of it meanwhile (not marked ready: the caller rebuilds again).
    ``token`` (:func:`server_token`) is the readiness marker's value; ``guard`` a key the
    caller set before it read ``states`` (:func:`set_guard`), gone if Redis lost its data
    since; ``early_hold`` as in :func:`pending_timers`."""
    key = due_key(prefix, partition)
    tmp = f"{key}:rebuild"
    total = 0
    added = 0  # members new to the set, as Redis counted them (a state's twin adds none)
    batch: dict[str, float] = {}
    await redis.delete(tmp)
    for state in states:
        for timer in pending_timers(state, escalation_after, early_hold=early_hold):
            batch[timer.member] = timer.due_ts
        if len(batch) >= chunk:
            added += int(await redis.zadd(tmp, batch))
            total += len(batch)
            batch = {}
    if batch:
        added += int(await redis.zadd(tmp, batch))
        total += len(batch)
    # Merge rather than replace: the agent keeps writing the live index while this rebuild
    # awaits Redis, and a timer it added meanwhile (for a state already read here) would be
    # lost by a RENAME. Members the agent removed meanwhile may come back from the snapshot;
    # they fire as stale ticks (old cycle or closed appeal), which change nothing.
    done = await redis.eval(_FINISH, 4, key, tmp, ready_key(prefix, partition), guard or tmp,
                            added, token, "1" if guard else "0")
    return total if int(done) == 1 else -1
