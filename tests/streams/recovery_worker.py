"""A minimal worker whose only job is to recover one table and say how much it holds.

Started as a child process by ``test_end_offsets.py`` with the project's app factory (so the
same consumer patches as a real worker), settings from the environment. After recovery it writes
``<count>`` of keys in the table to ``RECOVERY_REPORT`` and keeps running until stopped.
``RECOVERY_PROBE_FAILS=1``: every end-offset probe times out (a broker that does not answer).
"""

from __future__ import annotations

import os
import sys

from streams import end_offsets
from streams.app import create_app
from streams.settings import Settings

if os.environ.get("RECOVERY_PROBE_FAILS") == "1":
    async def _no_answer(*args: object, **kwargs: object) -> dict[object, int | None]:
        raise TimeoutError("no fetch answer for 1 partitions")

    end_offsets.true_end_offsets = _no_answer  # type: ignore[assignment]
    end_offsets.PROBE_RETRY_PAUSE_S = 0.1

settings = Settings.load()
app = create_app(settings)
table = app.Table("recovered", partitions=settings.partitions, key_type=bytes)
# A table only recovers for partitions its source topic is assigned; an agent gives it one.
source = app.topic(f"{settings.topic_prefix}recovery-source", partitions=settings.partitions)


@app.agent(source)
async def touch(stream):  # type: ignore[no-untyped-def]
    async for _ in stream:
        pass


@app.timer(0.2)
async def report() -> None:
    if app.tables.recovery.completed.is_set():
        with open(os.environ["RECOVERY_REPORT"], "w", encoding="ascii") as fh:
            fh.write(str(len(table)))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web"]
    app.main()
