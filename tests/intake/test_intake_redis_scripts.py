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


def test_hset_expire_and_hgetall_many_round_trip(redis_scenario: Any) -> None:
    tag = uuid.uuid4().hex

    async def scenario(client: Any) -> tuple[list[dict[Any, Any]], int]:
        await redis_scripts.run(client, redis_scripts.HSET_EXPIRE_MANY,
                                [f"{tag}:x", f"{tag}:x", f"{tag}:y"],
                                [120, "id1", b"\x00\xffpacked", "id2", b"two", "id3", b"three"])
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
