"""Events that overtake the one before them on the real broker give the in-order state.

The later event is sent keyed by its appeal id (applied where it is read), the earlier one with
another key (re-published keyed once, so it reaches the SLA state later): the order an
authority's sync that keys some events and not others produces.
- A resume before its pause: it was dropped as ``not_open`` and the appeal stayed paused, with
  no deadline, for good.
- A close before its answer: the answer was dropped as ``not_open`` and the appeal counted as
  closed unanswered; the body lost an on-time answer from its rating.
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
from streams.settings import Settings
from streams.testing import isolated_settings, produce, read_topic, running_worker
from workers.intake.core import appeal_id_for
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


def _submit(settings: Settings, external_id: str, submitted: dt.datetime, count: int) -> str:
    """Submit one appeal (the ``count``-th); its id once routed."""
    produce(settings, [(t.intake_topic("web"), None, orjson.dumps({
        "schema_version": 1, "channel": "web", "external_id": external_id,
        "submitted_at": submitted.isoformat(), "region": "22", "text": TEXT}))])
    appeal_id = appeal_id_for("web", external_id)
    routed = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=count)]
    assert appeal_id in {r["appeal_id"] for r in routed}
    return appeal_id


def _tracked(store: redis.Redis[bytes], key: str) -> bytes:
    deadline = time.monotonic() + 60
    while not store.hget(key, "due_at") and time.monotonic() < deadline:
        time.sleep(0.2)
    due = store.hget(key, "due_at")
    assert due, "the appeal is tracked"
    return bytes(due)


def _settled(store: redis.Redis[bytes], key: str, status: bytes) -> None:
    deadline = time.monotonic() + 30
    while store.hget(key, "status") != status and time.monotonic() < deadline:
        time.sleep(0.2)


def test_events_that_overtake_their_predecessor_give_the_in_order_state(
        broker, redis_server, tmp_path: Path) -> None:
    # The events are stamped up to three days after submission, ahead of the real clock the
    # worker runs on: it is told to accept events that far ahead (the refusal of future
    # stamps is checked in tests/sla/test_sla_future_stamps.py).
    settings = isolated_settings(broker.url, redis_server.url,
                                 sla_future_tolerance=7 * 86400.0)
    t.ensure_topics(settings)
    submitted = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store = redis.Redis.from_url(redis_server.url)
    prefix = key_prefix(settings.app_id)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        paused_id = _submit(settings, "ooo-1", submitted, 1)
        paused_key = appeal_key(prefix, paused_id)
        due_before = _tracked(store, paused_key)
        produce(settings, [_lifecycle(paused_id, 2, "resumed", submitted + dt.timedelta(days=3),
                                      paused_id.encode())])
        _wait_for(worker, "resumed", "early")
        produce(settings, [_lifecycle(paused_id, 1, "paused", submitted + dt.timedelta(hours=1),
                                      b"not-the-appeal-id")])
        _wait_for(worker, "paused", "applied")
        _settled(store, paused_key, b"running")

        closed_id = _submit(settings, "ooo-2", submitted, 2)
        closed_key = appeal_key(prefix, closed_id)
        _tracked(store, closed_key)
        produce(settings, [_lifecycle(closed_id, 2, "closed", submitted + dt.timedelta(hours=3),
                                      closed_id.encode())])
        _wait_for(worker, "closed", "applied")
        produce(settings, [_lifecycle(closed_id, 1, "answered",
                                      submitted + dt.timedelta(hours=2), b"not-the-appeal-id")])
        _wait_for(worker, "answered", "applied")
        _settled(store, closed_key, b"answered")
        paused_after = store.hmget(paused_key, "status", "due_at")
        closed_after = store.hmget(closed_key, "status", "sla", "answered_at")
        log = worker.log_text()
    assert paused_after[0] == b"running", "the pause ended with the resume that came first"
    assert paused_after[1] is not None and paused_after[1] > due_before, "the pause moved it"
    answered_at = (submitted + dt.timedelta(hours=2)).isoformat(timespec="seconds").encode()
    assert closed_after == [b"answered", b"met", answered_at], "answered in time, then closed"
    assert "Traceback" not in log
