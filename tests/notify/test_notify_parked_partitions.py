"""Parked-alert gauges across a rebalance of ``appeals.notify.retry``.

The gauges (``appeals_notify_parked_alerts``, ``appeals_notify_parked_oldest_age_seconds``,
read by ``AppealsSupervisorAlertsStuck``) are what this worker's retry agent has seen. When a
retry partition moves to another worker, the new owner reads its records and exports them;
the old owner kept its entries for ``forget_after`` (720 s by default), so an alert was
counted twice and its age, still growing on the old owner, crossed the alert's 30 minutes
for 7 minutes after the new owner had delivered it.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from faust.types import TP

from monitoring import metrics
from streams import topics as t
from streams.settings import Settings
from tests.notify.test_notify_retry import (
    Harness,
    Receivers,
    RecordingOutbox,
    _alert,
    _event,
    _parked,
    _run,
    _settings,
)
from workers.notify import agent as notify_agent
from workers.notify.retry import ParkedTracker


def test_a_retry_partition_that_moved_leaves_the_old_owners_gauges() -> None:
    """The review's timeline: worker A retries an alert every 5 min from minute 0 (first
    failed at 0), loses the partition at minute 25, and B delivers it at 25:40."""
    settings = Settings.load({})
    forget = 2 * max(settings.notify_retry_backoff_max, settings.notify_retry_after_max) + 120
    now = [0.0]
    a = ParkedTracker(forget, lambda: now[0])
    a.keep_partitions([3, 5])
    for minute in range(0, 26, 5):
        now[0] = minute * 60.0
        a.seen("appeal-1:breach:0", ["webhook"], 0.0, partition=3)
        a.seen("appeal-2:breach:0", ["webhook"], 60.0, partition=5)
    now[0] = 25 * 60 + 20.0
    a.keep_partitions([5])  # the rebalance: partition 3 went to worker B
    for minute in (26, 30, 32, 37):
        now[0] = minute * 60.0
        assert a.count("webhook") == 1  # appeal-2, still A's, stays
        assert a.oldest_age("webhook") == now[0] - 60.0  # not appeal-1's, from minute 0
    # The end of a batch of partition 3 that outlived its revocation: left to B.
    a.seen("appeal-1:breach:0", ["webhook"], 0.0, partition=3)
    assert a.count("webhook") == 1
    # An entry of no known partition is kept whatever the assignment.
    a.seen("appeal-3:breach:0", ["alertmanager"], now[0], partition=None)
    a.keep_partitions([])
    assert (a.count("webhook"), a.count("alertmanager")) == (0, 1)


@pytest.mark.integration  # the session's Redis holds the sent markers
def test_parked_alerts_of_a_retry_partition_moved_away_are_no_longer_exported(
        redis_server: Any) -> None:
    """Through the retry agent's batch logic: the entry carries the partition its record
    came from, and the gauges drop it when a rebalance gives that partition to another
    worker, not when the worker keeps it."""
    alert, other = _alert("appeal-moving"), _alert("appeal-staying")

    def parked(partition: int, *alerts: Any) -> list[Any]:
        events = []
        for i, a in enumerate(alerts):
            event = _event(_parked(a, first_failed_at=time.time() - 3000).to_json(), i,
                           t.NOTIFY_RETRY)
            event.message.partition = partition
            events.append(event)
        return events

    def gauge() -> float | None:
        return metrics.REGISTRY.get_sample_value("appeals_notify_parked_alerts",
                                                 {"channel": "webhook"})

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503] * 20
        topic = h.notifier.retry_topic
        for partition, a in ((2, alert), (4, other)):
            out = RecordingOutbox()
            await h.notifier.retries(parked(partition, a), cast(Any, out))
            assert [p.alert.alert_id for p in out.parked()] == [a.alert_id]  # parked again
        assert gauge() == 2
        assert h.notifier.tracker.oldest_age("webhook") >= 3000
        h.notifier.partitions_assigned([TP(topic, 2), TP(topic, 4), TP("appeals.x", 7)])
        assert gauge() == 2  # a rebalance that left both here changes nothing
        h.notifier.partitions_assigned([TP(topic, 4), TP(t.SLA_ALERTS, 2)])
        assert gauge() == 1  # partition 2 of another topic is not the retry partition 2
        # A batch of partition 2 that ended after the rebalance: its new owner exports it.
        await h.notifier.retries(parked(2, alert), cast(Any, RecordingOutbox()))
        assert gauge() == 1

    _run(redis_server.url, scenario)


def test_the_worker_hands_each_rebalance_to_the_notifier(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """install() connects the notifier to Faust's on_partitions_assigned."""
    made: list[notify_agent.Notifier] = []

    class Recording(notify_agent.Notifier):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    receivers: list[Any] = []
    app = SimpleNamespace(agent=lambda source, name: lambda fun: fun,
                          on_partitions_assigned=SimpleNamespace(connect=receivers.append))
    settings = _settings()
    ctx = SimpleNamespace(settings=settings, redis=None,
                          topology=SimpleNamespace(topic=lambda base: base))
    monkeypatch.setattr(notify_agent, "Notifier", Recording)
    notify_agent.install(cast(Any, app), cast(Any, ctx), None)
    [notifier], [receiver] = made, receivers
    retry_topic = t.topic_name(settings, t.NOTIFY_RETRY)
    notifier.tracker.seen("appeal-1:breach:0", ["webhook"], time.time(), partition=1)
    asyncio.run(receiver(app, {TP(retry_topic, 1)}))
    assert notifier.tracker.count("webhook") == 1
    asyncio.run(receiver(app, {TP(retry_topic, 0)}, signal=None))
    assert notifier.tracker.count("webhook") == 0
