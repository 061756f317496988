"""The supervisors' webhook is down for a while: alerts are retried and delivered once it's back.

The receiver starts down (connection refused); late answers make breach alerts; the quick
attempts fail within the batch's budget and the alerts are parked on appeals.notify.retry;
once the retry agent has retried parked alerts, the receiver stays down a few seconds more,
then comes up. Every alert for the hook must arrive exactly once, under its own alert id,
with its own body, and none may be dead-lettered.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from streams import topics as t
from streams.testing import (
    WorkerProcess,
    isolated_settings,
    produce,
    read_topic,
    running_worker,
    wait_for,
)
from tests.chaos import support as s

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

N = 150


def _metric(worker: WorkerProcess, name: str, *labels: str) -> float:
    """Sum of a webhook metric's samples (0 while the worker's /metrics is not up yet)."""
    try:
        metrics_text = worker.metrics_text()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith(name + "{") and 'channel="webhook"' in line
               and all(label in line for label in labels))


def _retries(worker: WorkerProcess) -> float:
    """Retries of parked webhook alerts that failed so far."""
    return _metric(worker, "appeals_notify_retries_total", 'result="failed"')


def test_webhook_down_then_back(broker, redis_server, tmp_path: Path) -> None:
    receiver = s.WebhookReceiver()  # not up yet: the receiver is down from the start
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=0.0,
                                 webhook_url=receiver.url, webhook_attempts=2,
                                 webhook_backoff=0.1, notify_inline_budget=1.0,
                                 notify_retry_backoff=0.5, notify_retry_backoff_max=3.0,
                                 sla_future_tolerance=s.FUTURE_TOLERANCE)
    t.ensure_topics(settings)
    work = s.workload(N, 41, fates=(("on_time", 1), ("late", 1)))
    try:
        with running_worker(settings, s.log_path("webhook")) as worker:
            produce(settings, work.intake_messages())
            produce(settings, work.answer_messages())
            wait_for(lambda: _retries(worker) > 0, timeout=120,
                     what="a parked alert being retried")
            time.sleep(5)
            alerts = s.docs(read_topic(settings, t.SLA_ALERTS, until=len(work.late),
                                       timeout=120, idle=1))
            assert {a["alert_id"] for a in alerts} == {f"{a}:breach:0" for a in work.late}
            to_hook = s.hooked(settings, receiver.url, (a["notify_authority_id"] for a in alerts))
            want = {a["alert_id"] for a in alerts if a["notify_authority_id"] in to_hook}
            assert want, "the routing rules send some alerts to the fallback hook"
            # While the receiver refused every connection, the worker took no attempt for a
            # delivery: nothing counted sent to the webhook, no hook alert marked sent (a
            # marked alert is never tried again, so it would be lost, not late).
            sent_while_down = (_metric(worker, "appeals_notifications_total", 'result="sent"')
                               + _metric(worker, "appeals_notify_retries_total",
                                         'result="sent"'))
            assert sent_while_down == 0, sent_while_down
            assert s.sent_markers(settings, sorted(want)) == 0
            receiver.up()
            wait_for(lambda: set(receiver.keys()) >= want, timeout=180,
                     what="every alert delivered after the outage")
            time.sleep(3)  # a second delivery would come within a retry delay
            assert receiver.keys() == Counter(dict.fromkeys(want, 1)), "each exactly once"
            bodies = {k: b for k, b in receiver.requests}
            for alert_id in want:
                assert bodies[alert_id]["alert_id"] == alert_id
            dead = s.docs(read_topic(settings, t.DEADLETTER, timeout=10, idle=1))
            assert not [d for d in dead if d["stage"] == "notify"], "none given up"
            parked = _metric(worker, "appeals_notify_parked_total")
            assert parked > 0, "the alerts went through the retry topic"
            print(f"{len(want)} alerts delivered; {parked:.0f} parked, {_retries(worker):.0f} "
                  "failed retries")
    finally:
        receiver.down()
