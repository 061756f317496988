"""Publishing a partition's figures while the SLA agent keeps changing them (real Redis)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.exceptions

from workers.aggregates.partials import PartitionAggregates, publish
from workers.aggregates.readmodel import read_figures

PREFIX = "publish-test:"


class _DeltaDuringExecute:
    """The real client, except that ``hook`` runs while a MULTI is in flight: what the SLA
    agent does when it applies a batch during the publisher's await."""

    def __init__(self, client: Any, hook: Callable[[], None]) -> None:
        self.client, self.hook = client, hook

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self.client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            self.hook()
            return await execute(*args, **kwargs)

        pipe.execute = hooked
        return pipe


def _received(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(f.received for f in read_figures(client, PREFIX, 1).values())
    finally:
        client.close()


def test_a_change_during_the_write_is_published_by_the_next_round(
        redis_server: Any, redis_scenario: Callable[..., object]) -> None:
    agg = PartitionAggregates()
    agg.apply_delta([], [("auth-1", "2026-11-26", "received")])
    late = [("auth-1", "2026-11-26", "received"), ("auth-1", "2026-11-26", "received")]

    async def scenario(client: Any) -> None:
        hooked = _DeltaDuringExecute(client, lambda: agg.apply_delta(late[:1], late))
        await publish(hooked, PREFIX, 0, agg)
        # The snapshot written had 1; the change made meanwhile must still be pending.
        assert agg.dirty
        if agg.dirty:  # what the SLA agent's 2 s maintenance does
            await publish(client, PREFIX, 0, agg)
        assert not agg.dirty

    redis_scenario(scenario)
    assert _received(redis_server.url) == 2


def test_a_failed_write_leaves_the_figures_pending(redis_scenario: Callable[..., object]) -> None:
    agg = PartitionAggregates()
    agg.apply_delta([], [("auth-1", "2026-11-26", "received")])

    def fail() -> None:
        raise redis.exceptions.ConnectionError("down")

    async def scenario(client: Any) -> None:
        with pytest.raises(redis.exceptions.ConnectionError):
            await publish(_DeltaDuringExecute(client, fail), PREFIX + "f:", 0, agg)

    redis_scenario(scenario)
    assert agg.dirty


def test_the_published_hashes_are_the_snapshot_exactly(
        redis_scenario: Callable[..., object]) -> None:
    """The script writes what ``to_redis`` gives, field for field: more pairs than one slice
    of the script's ``unpack`` takes, non-ASCII names, sketches; a later publish drops fields
    the partition no longer has (the old MULTI's ``DEL``), and an empty partition leaves no
    hashes behind."""
    agg = PartitionAggregates()
    subjects = ["auth-1", "muni:Белокуриха", "cat:roads \"quoted\" \\ back"]
    keys = [(s, f"2026-11-{d:02d}", c) for s in subjects for d in range(1, 29)
            for c in ("received", "answered", "open", "open_overdue")]
    for n, key in enumerate(keys * 2):  # 336 keys, then counts above 1
        agg.apply_delta([], [key])
        if n % 3 == 0:
            agg.add_response(key[0], key[1], 60.0 * (n + 1))
    for i in range(1200):  # 1,536 counters in all: 3,072 values, two slices of 2,000
        agg.apply_delta([], [(f"auth-{i}", "2026-11-30", "received")])
    prefix = PREFIX + "exact:"

    async def hashes(client: Any) -> tuple[dict[bytes, bytes], dict[bytes, bytes], set[bytes]]:
        return (await client.hgetall(f"{prefix}agg:2"), await client.hgetall(f"{prefix}aggsk:2"),
                await client.smembers(f"{prefix}agg:partitions"))

    def expected() -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        counters, sketches = agg.to_redis()
        return ({k.encode(): str(v).encode() for k, v in counters.items()},
                {k.encode(): v for k, v in sketches.items()})

    async def scenario(client: Any) -> None:
        await publish(client, prefix, 2, agg)
        counters, sketches, partitions = await hashes(client)
        assert (counters, sketches) == expected()
        assert len(counters) == 1536 and partitions == {b"2"}
        agg.apply_delta([("auth-7", "2026-11-30", "received")], [])
        agg.add_response("auth-1", "2026-11-01", 5.0)
        await publish(client, prefix, 2, agg)
        counters, sketches, _ = await hashes(client)
        assert (counters, sketches) == expected()
        assert b"auth-7|2026-11-30|received" not in counters
        await publish(client, prefix, 2, PartitionAggregates())
        assert await client.exists(f"{prefix}agg:2", f"{prefix}aggsk:2") == 0

    redis_scenario(scenario)


def test_the_api_parses_the_published_hashes_off_the_event_loop(
        redis_scenario: Callable[..., object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing a region's hashes took about 0.6 s on the API's event loop at every refresh:
    /healthz and cached answers waited (review of session 15). It runs in a worker thread, and
    the figures it parses are the ones published."""
    import threading

    import workers.aggregates.readmodel as readmodel

    threads: list[threading.Thread] = []
    parse = readmodel.parse_maps

    def watched(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return parse(*args)

    monkeypatch.setattr(readmodel, "parse_maps", watched)
    prefix = "loop-test:"

    async def scenario(client: Any) -> Any:
        agg = PartitionAggregates()
        agg.apply_delta([], [("22-minzdrav", "2026-11-20", "received")] * 3)
        agg.add_response("22-minzdrav", "2026-11-20", 3600.0)
        await publish(client, prefix, 0, agg)
        return threading.current_thread(), await readmodel.fetch_maps(client, prefix, 1)

    loop_thread, parsed = redis_scenario(scenario)
    assert threads and all(t is not loop_thread for t in threads)
    figures = readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20),
                                            "all", "any")
    assert figures["22-minzdrav"].received == 3


def test_a_subject_with_a_bar_and_an_unreadable_field_do_not_break_the_figures(
        redis_scenario: Callable[..., object]) -> None:
    """A routed record from another producer may name a municipality ``barnaul|old``: split
    from the left, its keys made every read of the figures raise, so every figures endpoint,
    the ratings and ``/metrics`` answered 500 (review of session 16). Keys split from the
    right keep that subject; a field that does not parse at all is left out."""
    import workers.aggregates.readmodel as readmodel

    prefix = "bar-test:"

    async def scenario(client: Any) -> Any:
        agg = PartitionAggregates()
        agg.apply_delta([], [("muni:barnaul|old", "2026-11-20", "received"),
                             ("22-minzdrav", "2026-11-20", "received")])
        agg.add_response("muni:barnaul|old", "2026-11-20", 60.0)
        await publish(client, prefix, 0, agg)
        await client.hset(f"{prefix}agg:0", mapping={"no-bars": "1", "a|2026-11-20|x": "nan",
                                                     "c|not-a-day|received": "1"})
        await client.hset(f"{prefix}aggsk:0", mapping={"no-bars": "{}", "b|2026-11-20": "[1]",
                                                       "d|2026-13-01": "{}"})
        return await readmodel.fetch_maps(client, prefix, 1)

    parsed = redis_scenario(scenario)
    figures = readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20), "all", "any")
    assert readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20), "1d", "any")
    assert figures["muni:barnaul|old"].received == 1
    assert figures["muni:barnaul|old"].sketch.count == 1
    assert figures["22-minzdrav"].received == 1
    assert len(parsed.counters) == 2 and len(parsed.sketches) == 1


def test_the_rating_refresher_outlives_an_error_that_is_not_redis(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresher caught Redis errors only: one ValueError ended its task for good and the
    published ratings expired with nobody refreshing them (review of session 16)."""
    import asyncio
    import contextlib

    from streams.settings import Settings
    from workers.api import app as api_app
    from workers.routing import load_rules

    settings = Settings.load({"APPEALS_RATING_REFRESH": "0.01"})
    web_app = api_app.create_app(settings, object(), load_rules())
    calls: list[int] = []

    async def snapshot(**_: Any) -> None:
        calls.append(1)
        raise ValueError("a field the API cannot read")

    async def close() -> None:
        return None

    class Client:
        async def aclose(self) -> None:
            return None

    svc = web_app[api_app.SERVICE]
    monkeypatch.setattr(svc, "snapshot", snapshot)
    monkeypatch.setattr(svc, "close", close)
    svc.redis = Client()

    async def main() -> None:
        gen = api_app._refresher(web_app)
        await gen.__anext__()
        await asyncio.sleep(0.2)
        with contextlib.suppress(StopAsyncIteration):
            await gen.__anext__()

    asyncio.run(main())
    assert len(calls) >= 3



def test_a_windowed_field_without_a_day_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    """``22-minzdrav||answered`` (a windowed counter without its day) passed the parse and
    then raised in the window cut (``fromisoformat("")``): every figures endpoint and
    ``/metrics`` answered 500. It is left out with a warning naming it; the current counters
    (which have no day) still count."""
    import logging

    import workers.aggregates.readmodel as readmodel

    counters = {b"22-minzdrav|2026-11-20|answered": b"1", b"22-minzdrav||open": b"1",
                b"22-minzdrav||answered": b"1", b"22-minzdrav||whatever": b"1"}
    sketches = {b"22-minzdrav|": b"{}"}
    with caplog.at_level(logging.WARNING, logger="workers.aggregates.readmodel"):
        parsed = readmodel.parse_maps([counters], [sketches])
    figures = readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20), "1d", "any")
    assert figures["22-minzdrav"].answered == 1
    assert figures["22-minzdrav"].open == 1
    assert parsed.sketches == []
    assert "'22-minzdrav||" in " ".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("odd", [b'{"100000": 100}', b'{"99999999999999999999": 1}',
                                 b'{"300": 1.5}', b'{"300": true}', b'{"300": 0}', b'{"300": -3}',
                                 b'{"x": 1}', b'[1, 2]', b'{"300": "7"}'])
def test_a_sketch_out_of_the_mapping_or_with_odd_counts_is_left_out(
        odd: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """A bin ``100000`` (written by hand) passed the parse, then ``_MAPPING.value`` raised
    OverflowError in the quantile: the region's rating, its pages and the rating refresher
    failed each time. Such a sketch, and one whose counts are no positive integers, is left
    out with a warning naming its key; the other sketches still count."""
    import logging

    import orjson

    import workers.aggregates.readmodel as readmodel
    from workers.aggregates.sketch import Sketch

    good = Sketch()
    good.add(3600.0)
    sketches = {b"22-minsoc|2026-11-20": odd,
                b"22-minzdrav|2026-11-20": orjson.dumps(good.to_json_map())}
    with caplog.at_level(logging.WARNING, logger="workers.aggregates.readmodel"):
        parsed = readmodel.parse_maps([], [sketches])
    assert [s for s, _d, _k in parsed.sketches] == ["22-minzdrav"]
    figures = readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20), "1d", "any")
    assert figures["22-minzdrav"].median_response_s is not None
    assert "22-minsoc|2026-11-20" in " ".join(r.getMessage() for r in caplog.records)


def test_a_sketch_as_the_writer_makes_it_is_read_whole() -> None:
    """The check refuses nothing the writer publishes: its lowest and highest bins read back."""
    import orjson

    import workers.aggregates.readmodel as readmodel
    from workers.aggregates.sketch import Sketch

    sketch = Sketch()
    for seconds in (0.0, 1e-9, 1.0, 3600.0, 86400.0 * 365 * 50):
        sketch.add(seconds)
    sketch.add(60.0, weight=3)
    parsed = readmodel.parse_maps([], [{b"22-minzdrav|2026-11-20":
                                        orjson.dumps(sketch.to_json_map())}])
    assert len(parsed.sketches) == 1
    assert parsed.sketches[0][2].bins == sketch.bins


def test_a_member_of_the_partitions_set_that_is_no_number_is_left_out(
        redis_scenario: Callable[..., object], caplog: pytest.LogCaptureFixture) -> None:
    """A member ``x`` of agg:partitions raised in ``int()``: every figures endpoint answered
    500. It is left out with a warning naming the key and the member."""
    import logging

    import workers.aggregates.readmodel as readmodel

    prefix = "odd-member-test:"

    async def scenario(client: Any) -> Any:
        await client.delete(f"{prefix}agg:partitions")
        agg = PartitionAggregates()
        agg.apply_delta([], [("22-minzdrav", "2026-11-20", "answered")])
        await publish(client, prefix, 3, agg)
        await client.sadd(f"{prefix}agg:partitions", "x", "-1", "\u0663")
        return await readmodel.fetch_maps(client, prefix, 1)

    with caplog.at_level(logging.WARNING, logger="workers.aggregates.readmodel"):
        parsed = redis_scenario(scenario)
    figures = readmodel.figures_from_parsed(parsed, dt.date(2026, 11, 20), "1d", "any")
    assert figures["22-minzdrav"].answered == 1  # partition 3, listed in the set, is read
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert f"{prefix}agg:partitions" in messages and "'x'" in messages
