"""``appeals worker`` whose intake stage hangs while a flag file exists.

Started as a child process by ``test_stuck_stage.py``: the real worker with every agent, with
one change, ``STUCK_INTAKE_FLAG``: while that file exists the intake stage's wait for the
broker's acknowledgements does not return (a stand-in for any await that hangs: a broker that
stops acknowledging, a Redis call without a timeout); the process, its timers and ``/metrics``
go on. ``STUCK_PROBE_INTERVAL``: seconds between end-offset probes of the lag monitor (the
shipped interval is long for a test).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys

from monitoring import metrics
from workers import lag, runtime
from workers.cli import main

FLAG = os.environ["STUCK_INTAKE_FLAG"]
lag.PROBE_INTERVAL_S = float(os.environ.get("STUCK_PROBE_INTERVAL", lag.PROBE_INTERVAL_S))
_flush = runtime.Outbox.flush


@functools.wraps(_flush)
async def _hanging_flush(self: runtime.Outbox) -> None:
    if self._ack_wait is metrics.child(metrics.BROKER_ACK_WAIT, "intake"):
        while os.path.exists(FLAG):
            await asyncio.sleep(0.1)
    await _flush(self)


runtime.Outbox.flush = _hanging_flush  # type: ignore[method-assign]
sys.exit(main(["worker"]))
