"""The read model's version guard against a real Redis (workers.sla.read_model).

The race it closes was found by the SIGKILL chaos test: the start-up rebuild wrote a snapshot
taken before an answer over the answered state the agent had written meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from workers.sla import read_model
from workers.sla.engine import State

pytestmark = pytest.mark.integration


def _state(appeal_id: str, status: str = "running", **extra: Any) -> State:
    state: State = {"id": appeal_id, "p": 0, "status": status, "auth": "22-minzdrav",
                    "regime": "fz59", "cat": "healthcare", "muni": None, "reg": 1.7e9,
                    "due": 1.7e9 + 86400, "answered": None, "alerts": [], "cycle": 0,
                    "ext": 0, "breached": None, "bdays": []}
    state.update(extra)
    return state




def test_an_older_snapshot_never_overwrites_a_newer_state(redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[Any, ...]:
        running = _state("a1")
        read_model.bump_version(running)  # v1, as the agent stored it at routing
        answered = _state("a1", "answered", answered=1.7e9 + 60, on_time=True, v=1)
        read_model.bump_version(answered)  # v2
        assert await read_model.write(client, prefix, [answered], 1.8e9) == 1
        late = await read_model.write(client, prefix, [running], 1.8e9)  # the stale snapshot
        after_stale = await client.hgetall(f"{prefix}appeal:a1")
        same = await read_model.write(client, prefix, [answered], 1.9e9)  # a replay: same v
        ttl = await client.ttl(f"{prefix}appeal:a1")
        return late, after_stale, same, ttl

    late, doc, same, ttl = redis_scenario(scenario, decode_responses=True)
    assert late == 0
    assert (doc["status"], doc["sla"], doc["version"]) == ("answered", "met", "2")
    assert doc["answered_at"] == "2023-11-14T22:14:20+00:00"
    assert same == 1
    assert 0 < ttl <= read_model.TTL_S


def test_states_without_version_and_pending_entries(redis_scenario: Any) -> None:
    """States stored before versions existed count as version 0; pending-only ones are skipped."""
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, list[str]]:
        n = await read_model.write(client, prefix, [_state("b1"), {"pending": [{"x": 1}]}],
                                   1.8e9)
        keys = sorted(await client.keys(f"{prefix}*"))
        return n, keys

    n, keys = redis_scenario(scenario, decode_responses=True)
    assert n == 1 and keys == [f"{prefix}appeal:b1"]


def test_open_breach_index_follows_the_written_state(redis_scenario: Any) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    index = f"{prefix}{read_model.OPEN_BREACHES}"

    async def scenario(client: Any) -> list[Any]:
        breached = _state("c1", breached=1.7e9 + 86400, bdays=["2023-11-15"], v=3)
        await read_model.write(client, prefix, [breached], 1.8e9)
        seen = [await client.zrange(index, 0, -1, withscores=True)]
        cured = _state("c1", "answered", answered=1.7e9 + 90000, bdays=["2023-11-15"], v=4)
        stale = dict(breached)  # an older copy wanting the entry back: refused
        await read_model.write(client, prefix, [cured], 1.8e9)
        await read_model.write(client, prefix, [stale], 1.8e9)
        seen.append(await client.zrange(index, 0, -1))
        many = [_state(f"d{i}", v=1) for i in range(read_model.CHUNK + 5)]
        seen.append(await read_model.write(client, prefix, many, 1.8e9))
        await client.script_flush()  # Redis restarted / scripts lost: loaded again by itself
        seen.append(await read_model.write(client, prefix, many[:2], 1.8e9))
        return seen

    first, after, written, reloaded = redis_scenario(scenario, decode_responses=True)
    assert first == [("c1", 1.7e9 + 86400)]
    assert after == []
    assert written == read_model.CHUNK + 5
    assert reloaded == 2


def test_open_appeals_never_expire_and_a_reopen_removes_the_expiry(
        redis_scenario: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only answered/closed records expire. An escalated open appeal is not written again
    until someone acts on it: with a 90-day expiry on every record the most neglected appeals
    vanished from the API while still counted as open and overdue. ``TTL_S`` = 1 s stands for
    the 90 days."""
    monkeypatch.setattr(read_model, "TTL_S", 1)
    prefix = f"{uuid.uuid4().hex}:"
    index = f"{prefix}{read_model.OPEN_BREACHES}"

    def key(appeal_id: str) -> str:
        return read_model.appeal_key(prefix, appeal_id)

    async def scenario(client: Any) -> dict[str, Any]:
        import asyncio

        states = [
            _state("breached", breached=1.7e9 + 86400, bdays=["2023-11-15"], v=5),
            _state("paused", "paused", v=2),
            _state("answered", "answered", answered=1.7e9 + 60, on_time=True, v=2),
            _state("closed", "closed", v=2),
            _state("reopened", "answered", answered=1.7e9 + 60, on_time=True, v=2),
        ]
        await read_model.write(client, prefix, states, 1.8e9)
        out: dict[str, Any] = {"ttl": {s["id"]: await client.ttl(key(s["id"])) for s in states}}
        reopened = _state("reopened", v=3)  # answered, then reopened: open again
        stale = _state("reopened", "answered", answered=1.7e9 + 60, on_time=True, v=2)
        await read_model.write(client, prefix, [reopened, stale], 1.8e9)  # stale: refused
        out["reopened_ttl"] = await client.ttl(key("reopened"))
        await asyncio.sleep(1.5)  # "90 days" later, nothing written meanwhile
        out["left"] = sorted(k.removeprefix(prefix) for k in await client.keys(f"{prefix}appeal:*"))
        out["index"] = await client.zrange(index, 0, -1)
        out["breached"] = await client.hgetall(key("breached"))
        return out

    out = redis_scenario(scenario, decode_responses=True)
    assert out["ttl"]["breached"] == -1 and out["ttl"]["paused"] == -1  # -1: no expiry
    assert all(0 < out["ttl"][i] <= 1 for i in ("answered", "closed", "reopened"))
    assert out["reopened_ttl"] == -1
    assert out["left"] == ["appeal:breached", "appeal:paused", "appeal:reopened"]
    assert out["index"] == ["breached"]
    assert (out["breached"]["status"], out["breached"]["sla"]) == ("running", "breached")


def test_tracked_stages_reach_the_read_model_and_the_api_shape(redis_scenario: Any) -> None:
    """The API shows each tracked stage's deadline, end and breach (``read_model._stages``)."""
    from workers.api.app import _stages

    prefix = f"{uuid.uuid4().hex}:"
    state = _state("s1", "answered", answered=1.7e9 + 60, on_time=True, regime="incident",
                   alerts=["final_answer.breach:1", "redirect.breach:0"],
                   stg=[["final_answer", 1.7e9, 1.7e9 + 7 * 86400, 1.7e9 + 5 * 86400, 1, None,
                         True, None],
                        ["redirect", 1.7e9 + 9 * 86400, 1.7e9 + 16 * 86400, 1.7e9 + 14 * 86400,
                         1, None, False, 1.7e9 + 10 * 86400]])
    read_model.bump_version(state)

    async def scenario(client: Any) -> dict[str, str]:
        await read_model.write(client, prefix, [state, _state("s2")], 1.8e9)
        one = await client.hgetall(f"{prefix}appeal:s1")
        two = await client.hgetall(f"{prefix}appeal:s2")
        return {"one": one["stages"], "two": two["stages"]}

    rows = redis_scenario(scenario, decode_responses=True)
    assert _stages(rows["two"]) == [] and _stages("not json") == []
    assert _stages(rows["one"]) == [
        {"stage": "final_answer", "run": 1, "started_at": "2023-11-14T22:13:20+00:00",
         "due_at": "2023-11-21T22:13:20+00:00", "settled_at": None, "ended_at": None,
         "breached": True, "breaches": 1},
        # The receiving body's run, settled (accepted); the late redirect's breach was run 0's.
        {"stage": "redirect", "run": 1, "started_at": "2023-11-23T22:13:20+00:00",
         "due_at": "2023-11-30T22:13:20+00:00", "settled_at": "2023-11-24T22:13:20+00:00",
         "ended_at": None, "breached": False, "breaches": 1},
    ]


def test_each_authoritys_open_breaches_follow_the_appeal_across_a_redirect(
        redis_scenario: Any) -> None:
    """Per-authority breach sets (what a filtered /v1/breaches reads): the appeal is in the
    set of the body holding it while breached, moves on a redirect, and leaves on a cure; a
    stale copy cannot put it back."""
    prefix = f"{uuid.uuid4().hex}:"

    def own(auth: str) -> str:
        return read_model.authority_breaches_key(prefix, auth)

    async def scenario(client: Any) -> list[Any]:
        seen = []
        at_a = _state("r1", breached=1.7e9, bdays=["2023-11-14"], v=1)
        at_a["auth"] = "22-A"
        await read_model.write(client, prefix, [at_a], 1.8e9)
        seen.append([await client.zrange(own(a), 0, -1) for a in ("22-A", "22-B")])
        at_b = _state("r1", breached=1.71e9, bdays=["2023-11-14", "2024-03-10"], v=2)
        at_b["auth"] = "22-B"
        await read_model.write(client, prefix, [at_b], 1.8e9)
        seen.append([await client.zrange(own(a), 0, -1) for a in ("22-A", "22-B")])
        await read_model.write(client, prefix, [at_a], 1.8e9)  # older: refused
        seen.append([await client.zrange(own(a), 0, -1) for a in ("22-A", "22-B")])
        cured = _state("r1", "answered", answered=1.72e9, bdays=at_b["bdays"], v=3)
        cured["auth"] = "22-B"
        await read_model.write(client, prefix, [cured], 1.8e9)
        seen.append([await client.zrange(own(a), 0, -1) for a in ("22-A", "22-B")])
        seen.append(await client.zrange(f"{prefix}{read_model.OPEN_BREACHES}", 0, -1))
        return seen

    placed, moved, kept, cured, everything = redis_scenario(scenario, decode_responses=True)
    assert placed == [["r1"], []]
    assert moved == [[], ["r1"]]
    assert kept == [[], ["r1"]]
    assert cured == [[], []] and everything == []


def test_a_breach_taken_back_leaves_the_open_breach_indexes(redis_scenario: Any) -> None:
    """The breach timer fired first; an extension stamped an hour before the deadline came
    after it and took the breach back. The entry stayed in both indexes for good, so
    /v1/breaches and the supervisor page listed an appeal that was never overdue (review of
    session 15)."""
    import datetime as dt

    from workers.sla.engine import SlaRules, apply_lifecycle, apply_tick, new_state

    day = 86400.0
    rules = SlaRules(due=lambda regime, start, *_: start + 10 * day,
                     extend=lambda regime, due, days, *_: due + days * day)
    prefix = f"{uuid.uuid4().hex}:"
    index = f"{prefix}{read_model.OPEN_BREACHES}"
    own = read_model.authority_breaches_key(prefix, "22-minzdrav")
    routed = {"appeal_id": "e1", "regime": "pos", "region": "22",
              "authority_id": "22-minzdrav", "category": "healthcare"}
    state, _ = new_state(routed, 0, 1.79e9, "Asia/Barnaul", rules)
    due = state["due"]

    def iso(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()

    async def scenario(client: Any) -> list[tuple[list[str], list[str]]]:
        seen = []
        apply_tick(state, "breach", state["cycle"], rules)
        for change in (None, {"event_id": "x1", "event": "extended", "at": iso(due - 3600),
                              "days": 5}):
            if change:
                apply_lifecycle(state, change, rules)
            read_model.bump_version(state)
            await read_model.write(client, prefix, [state], due + 3600)
            seen.append((await client.zrange(index, 0, -1), await client.zrange(own, 0, -1)))
        return seen

    breached, taken_back = redis_scenario(scenario, decode_responses=True)
    assert breached == (["e1"], ["e1"])
    assert not state["breached"] and state["status"] == "running"
    assert taken_back == ([], [])


def test_a_rebuild_does_not_write_a_record_past_its_keeping_time(
        redis_scenario: Any) -> None:
    """Every rebuild (each rebalance or restart) wrote the records of all stored states,
    closed ones included, with a fresh 90 days: Redis kept every appeal ever handled (review
    of session 15). An open appeal is always written; an ended one within its time too."""
    prefix = f"{uuid.uuid4().hex}:"
    closed_at = 1.7e9 + 86400
    old = _state("old", "closed", closed=closed_at, v=2)
    recent = _state("recent", "answered", answered=closed_at, on_time=True, v=2)
    running = _state("running", v=2)

    async def scenario(client: Any) -> tuple[int, list[str]]:
        now = closed_at + read_model.TTL_S + 1
        recent["answered"] = now - 86400
        written = await read_model.write(client, prefix, [old, recent, running], now,
                                         skip_expired=True)
        return written, sorted(await client.keys(f"{prefix}appeal:*"))

    written, keys = redis_scenario(scenario, decode_responses=True)
    assert written == 2
    assert keys == [f"{prefix}appeal:recent", f"{prefix}appeal:running"]


def test_an_ended_record_is_kept_until_its_end_plus_the_keeping_time(
        redis_scenario: Any) -> None:
    """Every write of an ended appeal's record (each rebuild: rebalance, restart) set a fresh
    ``TTL_S``: a record written again on day 89 after the answer was kept until day 179. It is
    kept until ``TTL_S`` after the answer or close, whenever it is written."""
    prefix = f"{uuid.uuid4().hex}:"
    day = 86400.0
    answered_at = 1.7e9 + 60
    states = {
        "answered": _state("answered", "answered", answered=answered_at, on_time=True, v=2),
        "closed": _state("closed", "closed", closed=answered_at, v=2),
        # reopened, then answered again: the later answer ends it
        "again": _state("again", "answered", closed=answered_at - 10 * day,
                        answered=answered_at, on_time=True, v=2),
        "ahead": _state("ahead", "answered", answered=answered_at + 30 * day, v=2),
        "legacy": _state("legacy", "closed", v=2),  # no moment of its end: from the write
    }

    async def scenario(client: Any) -> dict[str, Any]:
        at_answer = await read_model.write(client, prefix, states.values(), answered_at)
        first = {k: await client.ttl(read_model.appeal_key(prefix, k)) for k in states}
        for state in states.values():
            read_model.bump_version(state)
        rebuilt = await read_model.write(client, prefix, states.values(),
                                         answered_at + 89 * day, skip_expired=True)
        later = {k: await client.ttl(read_model.appeal_key(prefix, k)) for k in states}
        return {"written": (at_answer, rebuilt), "first": first, "later": later}

    out = redis_scenario(scenario, decode_responses=True)
    ttl_s = read_model.TTL_S
    assert out["written"] == (5, 5)
    assert all(ttl_s - 2 <= out["first"][k] <= ttl_s for k in states)
    for k in ("answered", "closed", "again"):  # one day of the 90 left
        assert day - 2 <= out["later"][k] <= day, (k, out["later"][k])
    # ended 30 days after the first write: kept 90 days from then, never more than TTL_S
    # from a write (the first write's TTL above, not 120 days)
    assert 31 * day - 2 <= out["later"]["ahead"] <= 31 * day
    assert ttl_s - 2 <= out["later"]["legacy"] <= ttl_s


def test_a_record_written_past_its_keeping_time_expires_at_once() -> None:
    """A live write (an event for an appeal ended long ago) has at least one second: Redis's
    EXPIRE with 0 or less would delete the record before the reply."""
    state = _state("old", "closed", closed=1.7e9, v=2)
    assert read_model._ttl(state, 1.7e9 + read_model.TTL_S + 500) == 1
    assert read_model._ttl(_state("open", v=2), 1.9e9) == 0


def test_the_keeping_time_reaches_redis_in_wall_seconds(redis_scenario: Any) -> None:
    """``TTL_S`` is SLA-clock time and Redis's EXPIRE counts wall seconds: on the demo's clock
    (a day per second) an answered appeal's record was given 90 wall days by the agent's
    writes and its rebuild, while a rebuild 91 wall seconds later counted it expired (and
    Redis kept every record of a long demo). Both the live write and the rebuild convert."""
    import time
    from types import SimpleNamespace

    from streams.clock import SlaClock
    from workers.aggregates.partials import PartitionAggregates
    from workers.sla import agent as sla_agent
    from workers.sla.engine import SlaRules

    day = 86400.0
    clock = SlaClock(day, time.time() - 10)
    prefix = f"{uuid.uuid4().hex}:"
    now = clock.now()
    live = _state("live", "answered", answered=now - 30 * day, on_time=True, v=1)
    rebuilt = _state("rebuilt", "closed", closed=now - 60 * day, v=1)

    async def scenario(client: Any) -> tuple[int, int]:
        rt = SimpleNamespace(
            ctx=SimpleNamespace(redis=client, clock=clock), prefix=prefix, index_dirty=set(),
            redis_token=None, rules=SlaRules(due=lambda *_: 0.0, extend=lambda *_: 0.0),
            partition_aggregates=lambda p: PartitionAggregates())
        await sla_agent._write_redis(rt, {b"live": live}, {})
        await sla_agent._rebuild_partition(rt, 0, [rebuilt])
        return (await client.ttl(read_model.appeal_key(prefix, "live")),
                await client.ttl(read_model.appeal_key(prefix, "rebuilt")))

    live_ttl, rebuilt_ttl = redis_scenario(scenario)
    assert 58 <= live_ttl <= 61, live_ttl  # 60 of its 90 SLA days left: 60 wall seconds
    assert 28 <= rebuilt_ttl <= 31, rebuilt_ttl
    assert read_model._ttl(live, now, clock) == 60
    assert read_model._ttl(live, now, SlaClock()) == read_model._ttl(live, now) == 60 * day


def test_a_running_stage_keeps_an_answered_appeals_record(redis_scenario: Any) -> None:
    """An incident answered with its first response while its final-answer stage still runs
    got a record that expired 90 days after that response (its stage's timers still armed,
    the index holding them): only the status was looked at. It is kept until the stage ends;
    a stage only settled (an fz59 appeal's redirect stage, settled by the answer) keeps
    nothing, and the close that ends the stage starts the keeping time."""
    import datetime as dt

    from workers.sla.deadline_service import DeadlineService, load_book
    from workers.sla.engine import apply_lifecycle, new_state

    day = 86400.0
    rules = DeadlineService(load_book()).rules()
    t0 = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC).timestamp()

    def event(n: int, kind: str, at: float) -> dict[str, Any]:
        return {"event_id": f"e{n}", "event": kind,
                "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat()}

    def answered(appeal_id: str, regime: str) -> State:
        routed = {"appeal_id": appeal_id, "regime": regime, "region": "22",
                  "authority_id": "22-mintrans", "category": "roads", "urgent": False}
        state = new_state(routed, 0, t0, "Asia/Barnaul", rules)[0]
        apply_lifecycle(state, event(1, "answered", t0 + 3600), rules)
        state["v"] = 2
        return state

    incident, letter = answered("i1", "incident"), answered("f1", "fz59")
    assert incident["status"] == letter["status"] == "answered"
    later = t0 + 91 * day
    assert read_model._ttl(incident, t0 + 9 * day) == 0
    assert not read_model._expired(incident, later)
    assert read_model._expired(letter, later)  # its settled stage keeps nothing
    closed = dict(incident, v=3, stg=list(incident["stg"]))
    apply_lifecycle(closed, event(2, "closed", t0 + 20 * day), rules)
    assert read_model._ttl(closed, t0 + 20 * day) == read_model.TTL_S
    prefix = f"{uuid.uuid4().hex}:"

    async def scenario(client: Any) -> tuple[int, int]:
        await read_model.write(client, prefix, [incident], t0 + 9 * day)
        kept = await client.ttl(read_model.appeal_key(prefix, "i1"))
        await read_model.write(client, prefix, [closed], t0 + 20 * day)
        return kept, await client.ttl(read_model.appeal_key(prefix, "i1"))

    kept, after_close = redis_scenario(scenario)
    assert kept == -1  # no expiry
    assert read_model.TTL_S - 2 <= after_close <= read_model.TTL_S
