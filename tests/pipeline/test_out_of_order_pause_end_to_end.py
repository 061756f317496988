"""A resume that overtakes its pause on the real broker: the appeal is tracked again.

The resume is sent keyed by its appeal id (applied where it is read), the pause with another
key (re-published keyed once, so it reaches the SLA state later): the order an authority's sync
that keys some events and not others produces. Before, the resume was dropped as ``not_open``
and the appeal stayed paused, with no deadline, for good.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import orjson
import pytest
import redis

from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker
from workers.sla.read_model import appeal_key, key_prefix

pytestmark = pytest.mark.integration

TEXT = "На улице Ленина в Барнауле не убирают мусор во дворе уже неделю"


def _lifecycle(appeal_id: str, n: int, event: str, at: dt.datetime, key: bytes
               ) -> tuple[str, bytes, bytes]:
    doc = {"schema_version": 1, "event_id": f"{appeal_id}:{n}", "appeal_id": appeal_id,
           "event": event, "at": at.isoformat(timespec="seconds")}
    return (t.LIFECYCLE, key, orjson.dumps(doc))


def _counted(metrics_text: str, event: str, outcome: str) -> float:
    pattern = (rf'^appeals_lifecycle_events_total\{{event="{event}",outcome="{outcome}"\}} '
               r"([0-9.e+]+)$")
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _wait_for(worker: object, event: str, outcome: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _counted(worker.metrics_text(), event, outcome) >= 1:  # type: ignore[attr-defined]
            return
        time.sleep(0.2)
    raise AssertionError(f"no {event}/{outcome} in the worker's metrics within {timeout} s")


def test_a_resume_before_its_pause_leaves_the_appeal_running(broker, redis_server,
                                                              tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url)
    t.ensure_topics(settings)
    submitted = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, [(t.intake_topic("web"), None, orjson.dumps({
            "schema_version": 1, "channel": "web", "external_id": "ooo-1",
            "submitted_at": submitted.isoformat(), "region": "22", "text": TEXT}))])
        [routed] = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=1)]
        appeal_id = routed["appeal_id"]
        store = redis.Redis.from_url(redis_server.url)
        key = appeal_key(key_prefix(settings.app_id), appeal_id)
        deadline = time.monotonic() + 60
        while not store.hget(key, "due_at") and time.monotonic() < deadline:
            time.sleep(0.2)
        due_before = store.hget(key, "due_at")
        assert due_before, "the appeal is tracked"

        paused_at = submitted + dt.timedelta(hours=1)
        resumed_at = submitted + dt.timedelta(days=3)
        produce(settings, [_lifecycle(appeal_id, 2, "resumed", resumed_at, appeal_id.encode())])
        _wait_for(worker, "resumed", "early")
        produce(settings, [_lifecycle(appeal_id, 1, "paused", paused_at, b"not-the-appeal-id")])
        _wait_for(worker, "paused", "applied")
        deadline = time.monotonic() + 30
        while store.hget(key, "status") != b"running" and time.monotonic() < deadline:
            time.sleep(0.2)
        status, due_after = store.hget(key, "status"), store.hget(key, "due_at")
        log = worker.log_text()
    assert status == b"running", "the pause ended with the resume that came first"
    assert due_after is not None and due_after > due_before, "the pause moved the deadline"
    assert "Traceback" not in log
