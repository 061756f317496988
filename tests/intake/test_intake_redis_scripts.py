"""The intake's Lua scripts against a real Redis: same answers as the commands they replace."""

from __future__ import annotations

import uuid
from typing import Any

from workers.intake import redis_scripts


def test_first_seen_tells_new_replay_and_resend_apart(redis_scenario: Any) -> None:
    tag = uuid.uuid4().hex

    async def scenario(client: Any) -> list[list[int]]:
        def first_seen(keys: list[str], args: list[Any]) -> Any:
            return redis_scripts.run(client, redis_scripts.FIRST_SEEN, keys, args)

        keys = [f"{tag}:a", f"{tag}:b", f"{tag}:a"]  # "a" twice in one batch: a resend
        first = await first_seen(keys, [60, "t:0:1", "t:0:2", "t:0:3"])
        # The same messages replayed after a crash (same positions): recognised as themselves;
        # "a" from another position: a resend.
        replay = await first_seen(keys[:2], [60, "t:0:1", "t:0:2"])
        resend = await first_seen([f"{tag}:a"], [60, "t:1:9"])
        ttl = await client.ttl(f"{tag}:a")
        return [list(first), list(replay), list(resend), [int(0 < ttl <= 60)]]

    assert redis_scenario(scenario) == [[1, 1, 0], [1, 1], [0], [1]]


def test_hset_capped_and_hgetall_many_round_trip(redis_scenario: Any) -> None:
    tag = uuid.uuid4().hex

    async def scenario(client: Any) -> tuple[list[dict[Any, Any]], int]:
        await redis_scripts.run(client, redis_scripts.HSET_CAPPED_MANY,
                                [f"{tag}:x", f"{tag}:x", f"{tag}:y"],
                                [120, 5, "id1", b"\x00\xffpacked", "id2", b"two", "id3",
                                 b"three"])
        got = await redis_scripts.run(client, redis_scripts.HGETALL_MANY,
                                      [f"{tag}:x", f"{tag}:y", f"{tag}:missing"])
        return [redis_scripts.pairs_to_dict(g) for g in got], await client.ttl(f"{tag}:y")

    maps, ttl = redis_scenario(scenario)
    assert maps == [{b"id1": b"\x00\xffpacked", b"id2": b"two"}, {b"id3": b"three"}, {}]
    assert 0 < ttl <= 120


def test_scripts_survive_a_script_flush(redis_scenario: Any) -> None:
    """A Redis restart forgets loaded scripts; redis-py reloads them on NOSCRIPT."""
    tag = uuid.uuid4().hex

    async def scenario(client: Any) -> list[int]:
        await redis_scripts.run(client, redis_scripts.FIRST_SEEN, [f"{tag}:k"], [60, "m1"])
        await client.script_flush()
        return list(await redis_scripts.run(client, redis_scripts.FIRST_SEEN,
                                            [f"{tag}:k", f"{tag}:new"], [60, "m1", "m2"]))

    assert redis_scenario(scenario) == [1, 1]


def test_hset_capped_keeps_the_entries_with_the_latest_timestamps(redis_scenario: Any) -> None:
    """Past the cap a bucket keeps the newest event times (not the last written), ties by the
    larger field; values without a timestamp go first; other keys are left alone."""
    import struct

    tag = uuid.uuid4().hex

    def packed(ts: float) -> bytes:
        return struct.pack(">dH", ts, 1) + b"r"

    async def scenario(client: Any) -> tuple[list[int], list[set[Any]]]:
        run = redis_scripts.run
        drops = [await run(client, redis_scripts.HSET_CAPPED_MANY, [f"{tag}:b"] * 3,
                           [60, 3, "a", packed(30.0), "b", packed(10.0), "c", packed(20.0)])]
        # Written last but oldest: it is the one dropped, together with nothing else.
        drops.append(await run(client, redis_scripts.HSET_CAPPED_MANY, [f"{tag}:b"],
                               [60, 3, "d", packed(5.0)]))
        drops.append(await run(client, redis_scripts.HSET_CAPPED_MANY,
                               [f"{tag}:b", f"{tag}:b", f"{tag}:other"],
                               [60, 3, "e", packed(20.0), "z", b"?", "q", packed(1.0)]))
        keys = [f"{tag}:b", f"{tag}:other"]
        kept = [set(await client.hkeys(k)) for k in keys]
        # A tie at the cut (c, e, f at 20): the smallest name goes.
        drops.append(await run(client, redis_scripts.HSET_CAPPED_MANY, [f"{tag}:b"],
                               [60, 3, "f", packed(20.0)]))
        kept.append(set(await client.hkeys(f"{tag}:b")))
        return drops, kept

    drops, kept = redis_scenario(scenario)
    assert drops == [0, 1, 2, 1]
    assert kept == [{b"a", b"c", b"e"}, {b"q"}, {b"a", b"e", b"f"}]
