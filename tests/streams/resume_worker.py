"""A minimal worker that writes down every record its one agent processes.

Started as a child process by ``test_resume_order.py`` with the project's app factory (so the
same Faust patches as a real worker), settings from the environment. It holds a table, so its
start goes through Faust's table recovery and ``on_recovery_completed``, where the resume order
matters. ``RESUME_SEEK_DELAY`` makes the seek to committed offsets take that many seconds longer
(a slow broker), and the agent is slow on purpose, so that the window between Faust resuming the
partitions and clearing the stream buffers is wide and whatever falls into it shows.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.app import create_app
from streams.settings import Settings
from workers.runtime import batches

settings = Settings.load()
app = create_app(settings)
if not os.environ.get("RESUME_NO_TABLE"):  # without tables Faust resumes via _resume_streams
    table = app.Table("resume-state", partitions=settings.partitions, key_type=bytes)
source = app.topic(f"{settings.topic_prefix}resume-source", partitions=settings.partitions,
                   key_serializer="raw", value_serializer="raw")
delay = float(os.environ.get("RESUME_SEEK_DELAY", "0"))
report = open(os.environ["RESUME_REPORT"], "a", encoding="ascii")  # noqa: SIM115 - process-long

if delay:
    original_seek = faust_aiokafka.Consumer.seek_to_committed

    async def slow_seek(self: Any) -> Any:
        committed = await original_seek(self)
        await asyncio.sleep(delay)
        return committed

    faust_aiokafka.Consumer.seek_to_committed = slow_seek  # type: ignore[method-assign]


@app.agent(source)
async def consume(stream):  # type: ignore[no-untyped-def]
    async for events in batches(stream, settings):
        report.write("".join(f"{e.message.partition} {e.message.offset}\n" for e in events))
        report.flush()
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web"]
    app.main()
