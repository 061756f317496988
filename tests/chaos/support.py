"""Shared pieces of the chaos tests: workloads, a webhook receiver, and per-appeal checks.

The checks compare what the system holds *per appeal* with what the test computed from its own
input (routing rules, deadline rules, fates), so a lost or doubled appeal shows up by id, not as
a count that happens to add up.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from streams import topics as t
from streams.settings import Settings
from workers.aggregates.readmodel import read_figures
from workers.deadlines.compute import answer_due, registration_due
from workers.demo.generator import GeneratedAppeal, Generator
from workers.geo.regions import region_timezone
from workers.route.agent import route_input
from workers.routing import Router, load_rules
from workers.sla.deadline_service import load_book

LOG_DIR = Path(os.environ.get("APPEALS_TEST_LOG_DIR", "var/test-logs")) / "chaos"
FIELDS = ("received", "answered", "answered_on_time", "breaches", "open", "open_overdue")
LATE = dt.timedelta(days=400)  # later than any deadline of any regime
#: APPEALS_SLA_FUTURE_TOLERANCE for workers that get :func:`workload`'s answers: the late ones
#: are stamped ``LATE`` ahead of the real clock the workers run on, and would be refused as
#: ``future_timestamp`` (tests/sla/test_sla_future_stamps.py checks that refusal).
FUTURE_TOLERANCE = (LATE + dt.timedelta(days=1)).total_seconds()


@dataclass
class Workload:
    """Appeals with a fate each, and the authorities' answers that realise the fates."""

    appeals: list[GeneratedAppeal]
    fates: dict[str, str]
    answers: dict[str, bytes] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return {a.appeal_id for a in self.appeals}

    @property
    def late(self) -> set[str]:
        return {a for a, f in self.fates.items() if f == "late"}

    def intake_messages(self) -> list[tuple[str, bytes | None, bytes]]:
        return [(t.intake_topic(a.channel), None, a.value) for a in self.appeals]

    def answer_messages(self) -> list[tuple[str, bytes | None, bytes]]:
        return [(t.LIFECYCLE, a.encode(), v) for a, v in self.answers.items()]


def workload(n: int, seed: int, channel: str | None = None,
             fates: tuple[tuple[str, int], ...] = (("on_time", 1), ("late", 1), ("open", 1)),
             run_id: str = "") -> Workload:
    """``n`` appeals; answers dated on time (a minute after submission) or late (400 days)."""
    rng = random.Random(seed)
    gen = Generator(seed=seed, malformed_share=0.0, run_id=run_id or f"chaos{seed}")
    now = time.time()
    appeals = [gen.appeal(now, channel=channel) for _ in range(n)]
    names = [f for f, _ in fates]
    weights = [w for _, w in fates]
    fate = {a.appeal_id: rng.choices(names, weights)[0] for a in appeals}
    answers = {}
    submitted = dt.datetime.fromtimestamp(now, dt.UTC)
    for appeal_id, f in fate.items():
        if f == "open":
            continue
        at = submitted + (dt.timedelta(minutes=1) if f == "on_time" else LATE)
        answers[appeal_id] = orjson.dumps({
            "schema_version": 1, "event_id": f"{appeal_id}:answer", "appeal_id": appeal_id,
            "event": "answered", "at": at.isoformat(timespec="seconds")})
    return Workload(appeals, fate, answers)


def docs(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def by_appeal(records: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in docs(records):
        out[doc["appeal_id"]].append(doc)
    return out


def read_model(settings: Settings, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    client = redis.Redis.from_url(settings.redis)
    ids = list(ids)
    pipe = client.pipeline(transaction=False)
    for appeal_id in ids:
        pipe.hgetall(f"{settings.app_id}:appeal:{appeal_id}")
    out = {}
    for appeal_id, raw in zip(ids, pipe.execute(), strict=True):
        if raw:
            out[appeal_id] = {k.decode(): v.decode() for k, v in raw.items()}
    return out


def read_model_keys(settings: Settings) -> set[str]:
    client = redis.Redis.from_url(settings.redis)
    prefix = f"{settings.app_id}:appeal:"
    return {k.decode()[len(prefix):] for k in client.scan_iter(match=f"{prefix}*", count=5000)}


EXPECTED_SLA = {"on_time": "met", "late": "breached_late", "open": "running"}
EXPECTED_STATUS = {"on_time": "answered", "late": "answered", "open": "running"}


def unsettled_report(settings: Settings, work: Workload) -> str:
    """What differs from the expected outcomes, for a failure message a person can act on."""
    model = read_model(settings, work.ids)
    missing = Counter(f for a, f in work.fates.items() if a not in model)
    wrong = Counter(
        (f, model[a].get("status")) for a, f in work.fates.items()
        if a in model and model[a].get("status") != EXPECTED_STATUS[f])
    samples = sorted(a for a, f in work.fates.items()
                     if a not in model or model[a].get("status") != EXPECTED_STATUS[f])[:5]
    return (f"not in the read model, by fate: {dict(missing)}; wrong status, by (fate, "
            f"status): {dict(wrong)}; e.g. {samples}\n{trace_appeals(settings, samples)}")


def outcomes_settled(settings: Settings, work: Workload) -> bool:
    """Every appeal in the read model with the status its fate gives."""
    model = read_model(settings, work.ids)
    return len(model) == len(work.fates) and all(
        model[a].get("status") == EXPECTED_STATUS[f] for a, f in work.fates.items())


def expected_routing(routed: dict[str, dict[str, Any]], registered: dict[str, dict[str, Any]],
                     appeals: Iterable[GeneratedAppeal],
                     registered_between: tuple[float, float],
                     ) -> dict[str, tuple[str, dt.datetime]]:
    """(authority, answer deadline) per appeal, from the routing and deadline rules applied to
    what the generator sent, after checking the routed record against that truth.

    The deadline is not computed from the routed record's own regime, region or urgency: those
    are outputs of the code under test, so a wrong regime (a 59-FZ appeal routed as "pos", 14
    days instead of 30) would give the same wrong deadline on both sides. The regime comes from
    the generator (its channel's regime), the region and importance from the message it sent;
    the registration time must be the registered record's and be the legal registration
    moment, at most the reading: ``min(read, legal)`` with the reading within
    ``registered_between`` (SLA-clock Unix seconds: before the first message was produced,
    after the record was read back) and ``legal`` the message's ``submitted_at`` (a 59-FZ
    appeal: noon of the last day of the policy's registration stage, three days from it with
    the day-off shift, art. 8 p. 2; the generator names no registration date). The
    generator stamps ``submitted_at`` when it makes the workload, before it is produced, so a
    platform message is registered at its submission. Only two inputs are taken from the
    pipeline, both the classifier's (separately tested) call on the text: the category, and
    the urgency of an appeal not marked ``importance: high`` (one that is must be routed
    urgent, DESIGN §2).
    """
    router = Router(load_rules())
    # The same book the SLA agent uses: the policy file plus the authorities' own `sla:`
    # blocks from the routing rules (e.g. a ministry's 8 working days for platform messages).
    book = load_book(router.rules.authorities.values())
    truth = {a.appeal_id: a for a in appeals}
    low, high = registered_between
    out = {}
    for appeal_id, rec in routed.items():
        src = registered[appeal_id]
        sent = truth[appeal_id]
        message = orjson.loads(sent.value)
        region = message["region"]
        assert rec["regime"] == sent.regime, (appeal_id, sent.channel, rec["regime"])
        assert src["regime"] == sent.regime, (appeal_id, sent.channel, src["regime"])
        assert rec["region"] == region, (appeal_id, rec["region"])
        if message.get("importance") == "high":
            assert rec["urgent"] is True, (appeal_id, "importance high routed not urgent")
        urgent = True if message.get("importance") == "high" else rec["urgent"]
        assert rec["registered_at"] == src["registered_at"], appeal_id
        registered_at = dt.datetime.fromisoformat(rec["registered_at"])
        received = dt.datetime.fromisoformat(message["submitted_at"])
        legal = received.timestamp()
        if sent.regime == "fz59":
            fz59 = book.resolve("fz59", region=region)
            zone = fz59.timezone or region_timezone(region)
            last_day = registration_due(received, zone, fz59)
            legal = max(legal, dt.datetime.combine(last_day.date(), dt.time(12),
                                                   last_day.tzinfo).timestamp())
        # Registered with millisecond precision: a millisecond of slack on either side.
        if legal <= low:
            assert abs(registered_at.timestamp() - legal) <= 0.001, (
                appeal_id, rec["registered_at"], "not the legal registration", legal)
        else:
            assert low - 0.001 <= registered_at.timestamp() <= min(legal, high) + 0.001, (
                appeal_id, rec["registered_at"], low, high, legal)
        decision = router.route(route_input(src, rec["category"]))
        policy = book.resolve(sent.regime, region=region, authority=decision.authority_id,
                              category=rec["category"], subcategory=rec.get("subcategory"))
        due = answer_due(sent.regime, registered_at, region_timezone(region), policy,
                         urgent=urgent)
        out[appeal_id] = (decision.authority_id, due)
    return out


def truth_figures(work: Workload, authority: dict[str, str]) -> dict[str, dict[str, int]]:
    truth: dict[str, Counter[str]] = defaultdict(Counter)
    for appeal_id, fate in work.fates.items():
        c = truth[authority[appeal_id]]
        c["received"] += 1
        if fate == "open":
            c["open"] += 1
        else:
            c["answered"] += 1
        if fate == "on_time":
            c["answered_on_time"] += 1
        if fate == "late":
            c["breaches"] += 1
    return {a: {f: c.get(f, 0) for f in FIELDS} for a, c in truth.items()}


def figures(settings: Settings) -> dict[str, dict[str, int]]:
    client = redis.Redis.from_url(settings.redis)
    got = read_figures(client, f"{settings.app_id}:", settings.partitions)
    return {a: {f: getattr(v, f) for f in FIELDS} for a, v in got.items()
            if ":" not in a}  # authority rows only (muni:/cat: rows are second keys)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookReceiver:
    """A supervisors' webhook on loopback that records every request; can go down and back.

    "Down" closes the listening socket, so senders see connection refused, as with a crashed
    receiver (not a polite 503).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append((self.headers.get("Idempotency-Key", ""),
                                              orjson.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> Counter[str]:
        with self._lock:
            return Counter(k for k, _ in self.requests)


def hooked(settings: Settings, receiver_url: str, authorities: Iterable[str]) -> set[str]:
    """The authorities whose alerts go to the test's webhook (and not only elsewhere).

    One routing-rules load for all of them: a load per alert (thousands) took longer than the
    test's whole budget once the rules' load-time checks grew.
    """
    from workers.notify.delivery import Delivery, _reserved_host

    delivery = Delivery(settings, Router(load_rules()))
    return {a for a in set(authorities)
            if [u for u in delivery.webhooks_for(a) if not _reserved_host(u)] == [receiver_url]}


def log_path(name: str) -> Path:
    """A worker log that outlives pytest's rotating tmp dirs (CI keeps var/test-logs)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def sent_markers(settings: Settings, alert_ids: list[str]) -> int:
    """How many of these alerts the notify agent has marked as delivered (diagnostics)."""
    client = redis.Redis.from_url(settings.redis)
    return sum(bool(client.exists(f"{settings.app_id}:alert:sent:{a}")) for a in alert_ids)


def trace_appeals(settings: Settings, ids: list[str]) -> str:
    """Where each appeal's routing, answer and SLA state are on the broker (diagnostics).

    For an appeal left with the wrong status this tells "the answer never reached the SLA
    topic" from "the SLA agent read it but its state was not kept" (changelog without it).
    """
    from streams.testing import read_topic

    wanted = {a.encode() for a in ids}
    lines: dict[str, list[str]] = defaultdict(list)
    changelog_base = f"{settings.app_id}-sla-state-changelog"
    sources = [(t.ROUTED, "routed"), (t.SLA_LIFECYCLE, "sla-lifecycle"),
               (t.LIFECYCLE, "lifecycle")]
    for base, label in sources:
        for rec in read_topic(settings, base, timeout=60, idle=2):
            if rec.key in wanted:
                lines[rec.key.decode()].append(
                    f"{label}[{rec.partition}]@{rec.offset} t={rec.timestamp / 1000:.1f}")
    raw = settings.replace(topic_prefix="")
    for rec in read_topic(raw, changelog_base, timeout=60, idle=2):
        if rec.key in wanted:
            try:
                state = orjson.loads(rec.value)
                what = state.get("status") or f"pending x{len(state.get('pending', []))}"
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                what = repr(rec.value)[:40]
            lines[rec.key.decode()].append(
                f"changelog[{rec.partition}]@{rec.offset} t={rec.timestamp / 1000:.1f} {what}")
    return "\n".join(f"{a}: " + "; ".join(lines.get(a, ["nothing"])) for a in ids)
