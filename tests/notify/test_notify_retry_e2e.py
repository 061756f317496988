"""Alert delivery through a real worker on the real broker while supervisors' receivers fail.

SLA alerts are produced straight onto ``appeals.sla.alerts`` (the notify agent's input), so
each test decides which receiver an alert goes to and when it arrives. Receivers are HTTP
servers on loopback that can be down (connection refused), hang (read the request, never
answer) or be up (200, recorded). Every assertion is per alert id (the Idempotency-Key).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.records import SlaAlert
from streams import topics as t
from streams.settings import Settings
from streams.testing import (
    WorkerProcess,
    isolated_settings,
    produce,
    read_topic,
    running_worker,
    wait_for,
)
from tests.chaos.support import free_port
from workers.notify.delivery import Delivery
from workers.routing import Router, load_rules
from workers.routing.loader import default_rules_path

pytestmark = pytest.mark.integration

FALLBACK_ONLY = "22-gzhi"  # no supervisor hook in the packaged rules: the fallback hook
HOOKED = "22-minzhkh"  # its supervisor's hook in the rules


class Journal:
    """Every request of every receiver, in arrival order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []  # (receiver, key, "accepted" | "held")
        self.lock = threading.Lock()

    def add(self, *entry: str) -> None:
        with self.lock:
            self.entries.append(entry)  # type: ignore[arg-type]

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return list(self.entries)

    def accepted(self, name: str) -> Counter[str]:
        return Counter(k for n, k, what in self.snapshot() if n == name and what == "accepted")


class Receiver:
    """A supervisors' webhook: ``down`` (nothing listens), ``hang`` (reads, never answers) or
    ``up`` (answers 200 and records the key as accepted)."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name, self.journal = name, journal
        self.port = free_port()
        self.mode = "down"
        self._released = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def set(self, mode: str) -> None:
        if mode == "down":
            self._stop()
        else:
            self._start()
        if self.mode == "hang" and mode != "hang":
            self._released.set()  # held requests end without an answer
        self.mode = mode

    def _start(self) -> None:
        if self._server is not None:
            return
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key", "")
                assert orjson.loads(body)["alert_id"] == key
                if receiver.mode == "hang":
                    receiver.journal.add(receiver.name, key, "held")
                    receiver._released.wait(120)
                    self.close_connection = True
                    return
                receiver.journal.add(receiver.name, key, "accepted")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        http.server.ThreadingHTTPServer.daemon_threads = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _alert(appeal_id: str, authority: str) -> SlaAlert:
    fired = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return SlaAlert(
        alert_id=f"{appeal_id}:breach:0", appeal_id=appeal_id, level="breach", regime="pos",
        region="22", authority_id=authority, notify_authority_id=authority,
        due_at=fired, fired_at=fired, severity="critical", category="housing_utilities",
        urgent=False)


def _produce(settings: Settings, alerts: list[SlaAlert]) -> None:
    produce(settings, [(t.SLA_ALERTS, a.appeal_id.encode(), a.to_json()) for a in alerts])


def _metric(worker: WorkerProcess, name: str, *labels: str) -> float:
    """Sum of a metric's samples with these label pairs (0 while /metrics is not up yet)."""
    try:
        text = worker.metrics_text()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(lb in line for lb in labels))


def _notify_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    dead = [orjson.loads(r.value) for r in read_topic(settings, t.DEADLETTER, timeout=10,
                                                      idle=1)]
    return [d for d in dead if d["stage"] == "notify"]


def _fail(worker: WorkerProcess, message: str) -> str:
    return f"{message}\n--- worker log (tail) ---\n{worker.log_text()[-4000:]}"


def test_receiver_down_longer_than_the_quick_attempts_gets_every_alert_once(
        broker: Any, redis_server: Any, tmp_path: Path) -> None:
    """Down ~15 s (the quick attempts give up after ~1 s): every alert is parked, retried and
    delivered once the receiver is back, exactly once per alert id, none dead-lettered."""
    journal = Journal()
    hook = Receiver("hook", journal)  # down from the start: connection refused
    settings = isolated_settings(
        broker.url, redis_server.url, webhook_url=hook.url, webhook_attempts=2,
        webhook_backoff=0.05, notify_inline_budget=1.0, notify_retry_backoff=0.5,
        notify_retry_backoff_max=2.0)
    assert Delivery(settings, Router(load_rules())).webhooks_for(FALLBACK_ONLY) == [hook.url]
    t.ensure_topics(settings)
    waves = [[_alert(f"e2e-down-{w}-{i}", FALLBACK_ONLY) for i in range(10)] for w in range(3)]
    want = {a.alert_id for wave in waves for a in wave}
    try:
        with running_worker(settings, tmp_path / "worker.log") as worker:
            _produce(settings, waves[0])
            wait_for(lambda: _metric(worker, "appeals_notify_parked_total") >= 10, timeout=120,
                     what="the first alerts parked")
            down_since = time.monotonic()
            _produce(settings, waves[1])
            time.sleep(4)
            _produce(settings, waves[2])  # parked while earlier ones are being retried
            wait_for(lambda: _metric(worker, "appeals_notify_parked_total") >= 30, timeout=60,
                     what="every alert parked")
            wait_for(lambda: _metric(worker, "appeals_notify_retries_total",
                                     'result="failed"') >= 30, timeout=60,
                     what="parked alerts retried and failing")
            time.sleep(max(0.0, 15 - (time.monotonic() - down_since)))
            assert not journal.snapshot()
            hook.set("up")
            wait_for(lambda: set(journal.accepted("hook")) >= want, timeout=120,
                     what="every alert delivered after the outage")
            time.sleep(3)  # a duplicate would arrive within a retry delay
            got = journal.accepted("hook")
            assert got == Counter(dict.fromkeys(want, 1)), _fail(
                worker, f"not exactly once: {sorted(k for k, n in got.items() if n != 1)}")
            assert _metric(worker, "appeals_notify_parked_total") == 30  # once per alert
            assert _metric(worker, "appeals_notify_retries_total", 'result="sent"') == 30
            assert _metric(worker, "appeals_notify_parked_oldest_age_seconds") == 0
        assert _notify_dead_letters(settings) == [], "none given up"
    finally:
        hook.set("down")


def test_hanging_receiver_does_not_hold_up_other_supervisors(
        broker: Any, redis_server: Any, tmp_path: Path) -> None:
    """Hook A hangs (takes the request, never answers; the worker's request timeout is 30 s):
    hook B's alerts, produced after A's first one, all arrive before A is asked for any alert
    a second time. The old agent held B behind A's whole retry budget (5 attempts × timeout),
    so B came after A's repeats. Once A answers, A's alerts arrive, each exactly once."""
    journal = Journal()
    hook_a, hook_b = Receiver("A", journal), Receiver("B", journal)
    hook_a.set("hang")
    hook_b.set("up")
    rules = tmp_path / "rules.yaml"
    packaged = default_rules_path() / "22-altai-krai.yaml"
    rules.write_text(packaged.read_text(encoding="utf-8").replace(
        "https://hooks.example.invalid/22/minzhkh", hook_a.url), encoding="utf-8")
    settings = isolated_settings(
        broker.url, redis_server.url, webhook_url=hook_b.url, routing_rules=str(rules),
        webhook_attempts=2, webhook_backoff=0.05, webhook_timeout=30.0,
        notify_inline_budget=2.0, notify_retry_backoff=10.0, notify_retry_backoff_max=10.0)
    delivery = Delivery(settings, Router(load_rules(rules)))
    assert delivery.webhooks_for(HOOKED) == [hook_a.url]
    assert delivery.webhooks_for(FALLBACK_ONLY) == [hook_b.url]
    t.ensure_topics(settings)
    for_a = [_alert(f"e2e-hang-a-{i}", HOOKED) for i in range(5)]
    for_b = [_alert(f"e2e-hang-b-{i}", FALLBACK_ONLY) for i in range(5)]
    try:
        with running_worker(settings, tmp_path / "worker.log") as worker:
            _produce(settings, for_a[:1])
            wait_for(lambda: any(n == "A" for n, _, _ in journal.snapshot()), timeout=120,
                     what="A holding the first alert's request")
            # B's alerts come in while A holds the first one, interleaved with more for A.
            _produce(settings, [x for pair in zip(for_b, [*for_a[1:], None], strict=True)
                                for x in pair if x is not None])
            want_b = {a.alert_id for a in for_b}
            wait_for(lambda: set(journal.accepted("B")) >= want_b, timeout=90,
                     what="B's alerts delivered while A hangs")
            entries = journal.snapshot()
            last_b = max(i for i, (n, k, w) in enumerate(entries) if n == "B")
            seen: set[str] = set()
            first_repeat_a = len(entries)
            for i, (n, k, _) in enumerate(entries):
                if n == "A":
                    if k in seen:
                        first_repeat_a = i
                        break
                    seen.add(k)
            assert last_b < first_repeat_a, _fail(
                worker, f"B waited behind A's retries: {entries}")
            hook_a.set("up")
            want_a = {a.alert_id for a in for_a}
            wait_for(lambda: set(journal.accepted("A")) >= want_a, timeout=120,
                     what="A's alerts delivered once A answers")
            time.sleep(3)
            assert journal.accepted("A") == Counter(dict.fromkeys(want_a, 1))
            assert journal.accepted("B") == Counter(dict.fromkeys(want_b, 1))
            assert _metric(worker, "appeals_notify_parked_total") >= len(for_a)
        assert _notify_dead_letters(settings) == [], "none given up"
    finally:
        hook_a.set("down")
        hook_b.set("down")


def test_a_parked_alert_survives_a_gentle_stop_of_its_retrier(
        broker: Any, redis_server: Any, tmp_path: Path) -> None:
    """SIGTERM while the retry agent waits for a parked alert's moment: the restarted worker
    delivers it. Faust's ``take_events`` acknowledged the batch when the stop closed it, the
    consumer committed on stop, and the alert was gone: not delivered, not dead-lettered
    (review of session 14)."""
    journal = Journal()
    hook = Receiver("hook", journal)  # down: the alert is parked
    settings = isolated_settings(
        broker.url, redis_server.url, webhook_url=hook.url, webhook_attempts=1,
        webhook_backoff=0.05, notify_inline_budget=1.0, notify_retry_backoff=20.0,
        notify_retry_backoff_max=20.0)
    t.ensure_topics(settings)
    alert = _alert("e2e-sigterm-0", FALLBACK_ONLY)
    try:
        with running_worker(settings, tmp_path / "worker-1.log") as worker:
            _produce(settings, [alert])
            wait_for(lambda: _metric(worker, "appeals_notify_parked_alerts") >= 1, timeout=120,
                     what="the retry agent waiting for the parked alert's moment")
        # Leaving the block stopped the worker with SIGTERM, mid-wait.
        hook.set("up")
        with running_worker(settings, tmp_path / "worker-2.log") as worker:
            wait_for(lambda: journal.accepted("hook"), timeout=120,
                     what="the parked alert delivered by the restarted worker")
            time.sleep(2)
            assert journal.accepted("hook") == Counter({alert.alert_id: 1}), _fail(
                worker, "not exactly once")
        assert _notify_dead_letters(settings) == []
    finally:
        hook.set("down")
