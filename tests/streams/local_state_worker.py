"""A worker with one RocksDB table that remembers each key of its source topic once.

Started as a child process by ``test_rocksdb_clean_stop.py`` with the project's app factory
(so the same store, patches and clean-stop marker as a real worker), settings from the
environment. A key already in the table is a duplicate and writes nothing, as the SLA agent
treats a replayed routed record. ``LOCAL_STATE_REPORT``: the table's keys, one per line,
rewritten every 0.2 s once recovery is done. ``HOLD_CHANGELOG_FLAG``: while that file exists the
table's changelog records wait before they are handed to the broker (a slow broker ack), so a
kill lands between the local write and the changelog's acknowledgement.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from typing import Any

import faust.topics

from streams import ack_safety
from streams.app import create_app
from streams.settings import Settings

HOLD = os.environ.get("HOLD_CHANGELOG_FLAG", "")
_publish = faust.topics.Topic.publish_message


@functools.wraps(_publish)  # the Faust patch check reads the wrapped function's source
async def _held_publish(self: Any, fut: Any, wait: bool = False) -> Any:
    if HOLD and self.get_topic_name().endswith("-seen-changelog"):
        while os.path.exists(HOLD):
            await asyncio.sleep(0.05)
    return await _publish(self, fut, wait=wait)


faust.topics.Topic.publish_message = _held_publish  # type: ignore[method-assign]

logging.basicConfig(level=logging.INFO)  # as the worker CLI: create_app's lines are shown
settings = Settings.load()
app = create_app(settings)
table = app.Table("seen", partitions=settings.partitions, key_type=bytes, value_type=bytes,
                  use_partitioner=True)
source = app.topic(f"{settings.topic_prefix}local-state-source", partitions=settings.partitions,
                   key_type=bytes, value_type=bytes)


@app.agent(source)
async def remember(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        ack_safety.handed_to_body([event])  # processed by our code: it may be acknowledged
        if table.get(event.key) is None:
            table[event.key] = event.value


@app.timer(0.2)
async def report() -> None:
    if app.tables.recovery.completed.is_set():
        keys = sorted(key.decode() for key in table)
        with open(os.environ["LOCAL_STATE_REPORT"], "w", encoding="ascii") as fh:
            fh.write("".join(f"{key}\n" for key in keys))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web"]
    app.main()
