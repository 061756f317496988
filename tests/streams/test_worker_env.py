"""A worker process gets exactly its parent's settings, unset optional numbers included."""

from __future__ import annotations

import time

from streams.processes import worker_env
from streams.settings import Settings


def test_settings_survive_the_trip_through_the_environment() -> None:
    for settings in (Settings(), Settings(warning_share=0.5, escalation_after=60.0,
                                          time_scale=86400.0, clock_epoch=time.time(),
                                          natural_batches=False)):
        env = worker_env(settings, metrics_port=settings.metrics_port)
        assert Settings.load(env) == settings
    assert worker_env(Settings(), 0)["APPEALS_WARNING_SHARE"] == ""
