"""Redis killed and restarted empty mid-stream: timers and read model rebuilt, no deadline missed.

A private Redis (the session one is shared with other tests). The SLA clock runs a day per
second, so the 30-day answer deadline of a 59-FZ appeal falls ~30 s after registration: after
the Redis restart for appeals registered before it, and for those registered after it. Every
appeal must get its warning and its breach, each under one alert id, within 3 s (3 SLA days)
of its moment; the read model must hold every appeal again with the deadline the rules give.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.clock import SlaClock
from streams.devstack import start_redis
from streams.testing import isolated_settings, produce, read_topic, running_worker, wait_for
from tests.chaos import support as s

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

BEFORE, AFTER = 200, 100
SCALE = 86400.0
TOLERANCE_S = 3 * 86400  # SLA seconds: 3 s of wall time at this scale


def test_redis_restarted_empty(broker, tmp_path: Path) -> None:
    private = start_redis(log_dir=tmp_path)
    try:
        settings = isolated_settings(broker.url, private.url, triage_confidence=0.0,
                                     time_scale=SCALE, clock_epoch=time.time(),
                                     escalation_after=1e9)
        t.ensure_topics(settings)
        first = s.workload(BEFORE, 31, channel="fz59", fates=(("open", 1),), run_id="r1")
        second = s.workload(AFTER, 32, channel="fz59", fates=(("open", 1),), run_id="r2")
        every = first.ids | second.ids
        clock = SlaClock(settings.time_scale, settings.clock_epoch)
        with running_worker(settings, s.log_path("redis")) as worker:
            produced_from = clock.now()
            produce(settings, first.intake_messages())
            wait_for(lambda: len(s.read_model(settings, first.ids)) == BEFORE, timeout=120,
                     what="first wave tracked")
            private.restart_empty()
            assert not s.read_model(settings, first.ids), "Redis really came back empty"
            produce(settings, second.intake_messages())
            wait_for(lambda: len(s.read_model(settings, every)) == len(every), timeout=60,
                     what="read model rebuilt for both waves")
            wait_for(lambda: len({d["alert_id"] for d in s.docs(read_topic(
                settings, t.SLA_ALERTS, timeout=20, idle=0.5))}) >= 3 * len(every),
                timeout=120, interval=2,
                what="warning and breach of every appeal and of its redirect stage")
            alerts = s.docs(read_topic(settings, t.SLA_ALERTS, timeout=30, idle=1))
            assert "Traceback" not in worker.log_text()

        ids = {a["alert_id"] for a in alerts}
        # The answer's timers and the 59-FZ redirect stage's warning (never accepted), all
        # rebuilt from the table after Redis came back empty.
        assert ids == {f"{a}:{what}:0" for a in every
                       for what in ("warning", "breach", "redirect.warning")}
        for alert in alerts:
            late = (dt.datetime.fromisoformat(alert["fired_at"])
                    - dt.datetime.fromisoformat(alert["due_at"])).total_seconds()
            assert -1 <= late <= TOLERANCE_S, (alert["alert_id"], late)

        registered = {d["appeal_id"]: d for d in s.docs(read_topic(settings, t.REGISTERED,
                                                                   timeout=30, idle=1))}
        routed = {d["appeal_id"]: d for d in s.docs(read_topic(settings, t.ROUTED,
                                                               timeout=30, idle=1))}
        assert set(routed) == every
        expected = s.expected_routing(routed, registered, first.appeals + second.appeals,
                                      (produced_from, clock.now()))
        model = s.read_model(settings, every)
        for appeal_id in every:
            authority, due = expected[appeal_id]
            assert model[appeal_id]["authority_id"] == authority
            assert dt.datetime.fromisoformat(model[appeal_id]["due_at"]) == due.replace(
                microsecond=0), appeal_id
            assert model[appeal_id]["sla"] == "breached", appeal_id
        late_by = sorted(
            (dt.datetime.fromisoformat(a["fired_at"])
             - dt.datetime.fromisoformat(a["due_at"])).total_seconds() / SCALE for a in alerts)
        print(f"alerts {len(alerts)} records, {len(ids)} ids; lateness (wall s) median "
              f"{late_by[len(late_by) // 2]:.2f}, max {late_by[-1]:.2f}; "
              f"{orjson.dumps(sorted(ids)[:1]).decode()}")
    finally:
        private.stop()
