"""The notify agents' batch logic: parking, retrying, giving up, and alerts that must not crash.

Driven through :class:`workers.notify.agent.Notifier` (what both agents run per batch) with real
HTTP receivers on loopback and the session's real Redis (sent markers); the outbox is a
recorder, since here the question is what the agents *send*, not whether the broker keeps it
(the end-to-end tests in test_notify_retry_e2e.py run the real worker on the real broker).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from monitoring import metrics
from schemas.records import SlaAlert
from schemas.validation import validate_incoming
from streams import topics as t
from streams.devstack import free_port
from streams.settings import ConfigError, Settings
from workers.notify.agent import Notifier
from workers.notify.delivery import Delivery, Target, alertmanager_alert
from workers.notify.retry import Parked, ParkedTracker, retry_delay
from workers.routing.model import Authority, Supervisor

pytestmark = pytest.mark.integration  # the session's Redis holds the sent markers


# ------------------------------------------------------------------------------ receivers


@dataclass
class Receivers:
    """Webhooks and an Alertmanager on one loopback server; each path answers from a script
    of status codes or (status, headers) (then 200) and records (key, body) of every
    request."""

    scripts: dict[str, list[int | tuple[int, dict[str, str]]]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def keys(self, path: str) -> list[str]:
        return [k for p, k, _ in self.requests if p == path]

    def bodies(self, path: str) -> list[Any]:
        return [b for p, _, b in self.requests if p == path]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests.append((path, request.headers.get("Idempotency-Key", ""),
                              orjson.loads(await request.read())))
        script = self.scripts.get(path, [])
        answer = script.pop(0) if script else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)


async def _with_receivers(body: Callable[[Receivers], Awaitable[Any]]) -> Any:
    rec = Receivers()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.base = f"http://127.0.0.1:{port}"
    try:
        return await body(rec)
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------------------ fakes


@dataclass
class RecordingOutbox:
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    dead: list[tuple[str, str, bytes, str | None]] = field(default_factory=list)
    flushed: int = 0

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((base, key, value))

    async def dead_letter(self, event: Any, *, stage: str, reason: str,
                          detail: str | None = None) -> None:
        metrics.DEADLETTER.labels(stage, reason).inc()
        self.dead.append((stage, reason, event.message.value, detail))

    async def flush(self) -> None:
        self.flushed += 1

    def parked(self) -> list[Parked]:
        return [Parked.from_bytes(v) for base, _, v in self.sent if base == t.NOTIFY_RETRY]


class Router:
    def __init__(self, hooks: dict[str, list[str]]) -> None:
        self.hooks = hooks

    @property
    def rules(self) -> Any:
        """What :meth:`Delivery.has_receivers` reads of the real router's rules."""
        return SimpleNamespace(authorities={a: self.authority(a) for a in self.hooks})

    def authority(self, authority_id: str) -> Authority:
        if authority_id not in self.hooks:
            raise KeyError(authority_id)
        return Authority(id=authority_id, name=authority_id, kind="ministry", region_code="22",
                         timezone="Asia/Barnaul",
                         supervisors=tuple(Supervisor(f"r{i}", h)
                                           for i, h in enumerate(self.hooks[authority_id])))


def _event(value: bytes, offset: int = 0, topic: str = "appeals.sla.alerts") -> Any:
    msg = SimpleNamespace(value=value, key=b"k", topic=topic, partition=0, offset=offset,
                          timestamp=time.time())
    return SimpleNamespace(message=msg)


def _alert(appeal_id: str, authority: str = "22-a", level: str = "breach",
           fired_at: str = "2026-12-10T17:00:00+00:00") -> SlaAlert:
    return SlaAlert(
        alert_id=f"{appeal_id}:{level}:0", appeal_id=appeal_id, level=level, regime="pos",
        region="22", authority_id=authority, notify_authority_id=authority,
        due_at="2026-12-10T16:59:59+00:00", fired_at=fired_at, severity="critical",
        category="housing_utilities", urgent=False)


def _settings(**changes: Any) -> Settings:
    base = Settings.load({}).replace(
        app_id=f"notify-unit-{uuid.uuid4().hex[:8]}", webhook_attempts=2, webhook_backoff=0.01,
        webhook_timeout=2.0, notify_inline_budget=1.0, notify_retry_backoff=5.0,
        notify_retry_backoff_max=60.0, public_url="https://appeals.example")
    return base.replace(**changes)


def _count(metric: Any, *labels: str) -> float:
    return float(metric.labels(*labels)._value.get())


class Harness:
    """A Notifier over the receivers, a recording outbox per batch and the real Redis."""

    def __init__(self, settings: Settings, redis_url: str, router: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.redis = aioredis.Redis.from_url(redis_url)
        self.delivery = Delivery(settings, router, rng=random.Random(1))
        self.sleeps: list[float] = []
        ctx = SimpleNamespace(settings=settings, redis=self.redis)
        self.notifier = Notifier(cast(Any, ctx), self.delivery, clock=clock, sleep=self._sleep,
                                 rng=random.Random(2))

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def alerts(self, *values: bytes) -> RecordingOutbox:
        outbox = RecordingOutbox()
        await self.notifier.alerts([_event(v, i) for i, v in enumerate(values)],
                                   cast(Any, outbox))
        return outbox

    async def retries(self, *records: Parked | bytes) -> RecordingOutbox:
        outbox = RecordingOutbox()
        events = [_event(r if isinstance(r, bytes) else r.to_json(), i, t.NOTIFY_RETRY)
                  for i, r in enumerate(records)]
        await self.notifier.retries(events, cast(Any, outbox))
        return outbox

    async def sent(self, alert: SlaAlert) -> bool:
        key = f"{self.settings.app_id}:alert:sent:{alert.alert_id}"
        return bool(await self.redis.exists(key))

    async def close(self) -> None:
        await self.delivery.close()
        await self.redis.aclose()


def _run(redis_url: str, scenario: Callable[[Receivers, Harness], Awaitable[Any]],
         router_hooks: Callable[[Receivers], dict[str, list[str]]] | None = None,
         clock: Callable[[], float] = time.time, **settings: Any) -> Any:
    async def body(rec: Receivers) -> Any:
        hooks = router_hooks(rec) if router_hooks else {"22-a": [rec.url("/a")]}
        s = _settings(**{k: (v(rec) if callable(v) else v) for k, v in settings.items()})
        harness = Harness(s, redis_url, Router(hooks), clock=clock)
        try:
            return await scenario(rec, harness)
        finally:
            await harness.close()

    return asyncio.run(_with_receivers(body))


# ------------------------------------------------------------------------------ poison alerts


def test_poison_fired_at_is_dead_lettered_and_the_loop_goes_on(redis_server) -> None:
    """fired_at 0001-01-01T00:30:00+01:00 is schema-valid but has no UTC moment: it used to
    raise OverflowError in the batch and end the worker (exit 70) on every replay."""
    poison = _alert("appeal-poison", fired_at="0001-01-01T00:30:00+01:00")
    good1, good2 = _alert("appeal-good-1"), _alert("appeal-good-2")
    counted = _count(metrics.DEADLETTER, "notify", "bad_timestamp")

    async def scenario(rec: Receivers, h: Harness) -> None:
        first = await h.alerts(poison.to_json(), good1.to_json())
        second = await h.alerts(good2.to_json())  # the next batch runs: the loop goes on
        assert [(s, r, v) for s, r, v, _ in first.dead] == [
            ("notify", "bad_timestamp", poison.to_json())]
        assert "0001-01-01T00:30:00+01:00" in (first.dead[0][3] or "")
        assert not second.dead and not first.parked() and not second.parked()
        assert rec.keys("/a") == [good1.alert_id, good2.alert_id]
        assert len(rec.keys("/api/v2/alerts")) == 2  # Alertmanager got both good ones
        assert await h.sent(good1) and await h.sent(good2) and not await h.sent(poison)

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)
    assert _count(metrics.DEADLETTER, "notify", "bad_timestamp") == counted + 1


def test_lower_case_t_and_z_in_fired_at_are_delivered(redis_server) -> None:
    """RFC 3339 allows ``t`` and ``z`` in lower case and the schema accepts them; only an
    upper-case ``Z`` was replaced before parsing, so such an alert was dead-lettered as
    ``bad_timestamp`` ("has no UTC moment") and no supervisor heard of it."""
    alert = _alert("appeal-lower-z", fired_at="2026-03-10t17:00:00z")
    validate_incoming("sla-alert", alert.to_dict())

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(alert.to_json())
        assert not out.dead and not out.parked()
        assert rec.keys("/a") == [alert.alert_id]
        assert rec.bodies("/a")[0]["fired_at"] == "2026-03-10t17:00:00z"  # passed as sent
        ((posted,),) = rec.bodies("/api/v2/alerts")
        assert posted["startsAt"] == "2026-03-10T17:00:00Z"
        assert await h.sent(alert)

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


def test_unexpected_error_of_one_alert_is_dead_lettered_not_fatal(redis_server) -> None:
    bad, good = _alert("appeal-bug"), _alert("appeal-fine")

    async def scenario(rec: Receivers, h: Harness) -> None:
        real = h.delivery._payload

        def payload(target: Target, alert: SlaAlert) -> Any:
            if alert.alert_id == bad.alert_id:
                raise RuntimeError("a bug in building the request")
            return real(target, alert)

        h.delivery._payload = payload  # type: ignore[method-assign]
        out = await h.alerts(bad.to_json(), good.to_json(), b"{not json")
        assert sorted((r, v) for _, r, v, _ in out.dead) == [
            ("delivery_error", bad.to_json()), ("not_json", b"{not json")]
        assert rec.keys("/a") == [good.alert_id]
        assert await h.sent(good) and not await h.sent(bad)

    _run(redis_server.url, scenario)


# ------------------------------------------------------------------------------ parking


def test_failed_target_is_parked_with_the_targets_already_served(redis_server) -> None:
    alert = _alert("appeal-two-hooks")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/down"] = [503] * 10
        parked_before = _count(metrics.NOTIFY_PARKED, "webhook")
        out = await h.alerts(alert.to_json())
        assert not out.dead
        (record,) = out.parked()
        ((base, key, _),) = out.sent
        assert base == t.NOTIFY_RETRY and key == alert.appeal_id.encode()
        assert record.alert == alert and record.attempt == 1
        assert record.done == [Target("webhook", rec.url("/up")).key]
        assert record.channels == ["webhook"]
        assert record.first_failed_at == now
        assert now + 2.5 <= record.not_before <= now + 5.0  # 5 s base, upper half jittered
        assert rec.keys("/down") == [alert.alert_id] * 2  # the quick attempts, no more
        assert rec.keys("/up") == [alert.alert_id]
        assert not await h.sent(alert)
        assert _count(metrics.NOTIFY_PARKED, "webhook") == parked_before + 1
        # No URL in the record: hooks may carry secrets.
        assert b"/down" not in out.sent[0][2] and b"/up" not in out.sent[0][2]

    _run(redis_server.url, scenario, clock=lambda: now,
         router_hooks=lambda rec: {"22-a": [rec.url("/up"), rec.url("/down")]})


def test_rejected_delivery_is_dead_lettered_not_parked(redis_server) -> None:
    alert = _alert("appeal-404")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [404]
        out = await h.alerts(alert.to_json())
        assert [(r, v) for _, r, v, _ in out.dead] == [("delivery_rejected", alert.to_json())]
        assert "HTTP 404" in (out.dead[0][3] or "")
        assert not out.parked()
        assert rec.keys("/a") == [alert.alert_id]  # a 4xx is not retried
        # Not marked sent: the runbook's "fix the receiver, replay the dead letter" must
        # deliver it (test_replaying_a_rejected_alert_reaches_only_the_receivers_that_refused).
        assert not await h.sent(alert)

    _run(redis_server.url, scenario)


def test_a_409_request_in_progress_is_retried_not_rejected(redis_server) -> None:
    """A receiver implementing Idempotency-Key answers 409 to a repeat that arrives while the
    first request with the key is still being processed. It was taken as a refusal for
    good: dead-lettered as ``delivery_rejected`` and never tried again, so the alert was lost
    if that first request then failed."""
    alert = _alert("appeal-409")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [409] * 4
        out = await h.alerts(alert.to_json())
        assert not out.dead
        (record,) = out.parked()
        assert record.channels == ["webhook"] and record.rejected == []
        assert rec.keys("/a") == [alert.alert_id] * 2  # both quick attempts, with backoff
        again = await h.retries(record)
        assert not again.dead
        (record,) = again.parked()  # still in progress at both attempts: parked again
        done = await h.retries(record)
        assert not done.dead and not done.parked()
        assert rec.keys("/a") == [alert.alert_id] * 5
        assert await h.sent(alert)

    _run(redis_server.url, scenario)


def test_replaying_a_rejected_alert_reaches_only_the_receivers_that_refused(
        redis_server) -> None:
    """A 4xx dead-lettered the alert (delivery_rejected) and marked it sent as well, so the
    dead letter replayed once the receiver was fixed was dropped as a duplicate for 90 days."""
    alert = _alert("appeal-refused-then-fixed")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/refuses"] = [401]  # a wrong token in the rules, fixed afterwards
        out = await h.alerts(alert.to_json())
        assert [(r, v) for _, r, v, _ in out.dead] == [("delivery_rejected", alert.to_json())]
        assert not out.parked() and not await h.sent(alert)
        replay = await h.alerts(out.dead[0][2])  # the operator replays the dead letter
        assert not replay.dead and not replay.parked()
        assert rec.keys("/refuses") == [alert.alert_id] * 2
        assert rec.keys("/took") == [alert.alert_id]  # not sent again to who had it
        assert await h.sent(alert)
        await h.alerts(alert.to_json())  # delivered everywhere: a replay is a no-op again
        assert len(rec.requests) == 3

    _run(redis_server.url, scenario,
         router_hooks=lambda rec: {"22-a": [rec.url("/took"), rec.url("/refuses")]})


def test_an_alert_refused_before_its_retry_succeeded_is_not_marked_sent(redis_server) -> None:
    """Refused by one receiver at the quick attempts, parked for another that failed: the
    retry that served the second one marked the alert sent, and the replay of the first
    receiver's dead letter was a no-op."""
    alert = _alert("appeal-refused-and-parked")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/refuses"] = [403]
        rec.scripts["/down"] = [503, 503]
        out = await h.alerts(alert.to_json())
        assert [r for _, r, _, _ in out.dead] == ["delivery_rejected"]
        (record,) = out.parked()
        assert record.rejected == [Target("webhook", rec.url("/refuses")).key]
        retry = await h.retries(record)
        assert not retry.dead and not retry.parked() and not await h.sent(alert)
        await h.alerts(out.dead[0][2])  # the replay once /refuses is fixed
        assert rec.keys("/refuses") == [alert.alert_id] * 2
        assert rec.keys("/down") == [alert.alert_id] * 3  # 2 quick attempts, the retry
        assert await h.sent(alert)

    _run(redis_server.url, scenario,
         router_hooks=lambda rec: {"22-a": [rec.url("/refuses"), rec.url("/down")]})


def test_invalid_hook_url_is_rejected_not_retried_for_days(redis_server) -> None:
    alert = _alert("appeal-bad-url")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(alert.to_json())
        assert [(r, d) for _, r, _, d in out.dead] == [
            ("delivery_rejected", "webhook ?: invalid URL")]
        assert not out.parked()

    _run(redis_server.url, scenario, router_hooks=lambda rec: {"22-a": ["http:///no-host"]})


async def _served(h: Harness, alert: SlaAlert, *targets: Target) -> list[bool]:
    """Whether each target has its own marker for the alert (a replay skips those)."""
    keys = [f"{h.settings.app_id}:alert:sent-to:{x.key}:{alert.alert_id}" for x in targets]
    return [bool(m) for m in await h.redis.mget(keys)]


@pytest.mark.parametrize("bad_hook", [
    "http://hooks..example.ru/x",  # an empty label
    "https://" + "h" * 64 + ".example.ru/x",  # a label over 63 characters
])
def test_a_hook_host_idna_cannot_encode_is_rejected_for_that_hook_only(
        redis_server, bad_hook: str) -> None:
    """aiohttp lets such a host through and getaddrinfo's IDNA encoding raises UnicodeError:
    it escaped the side-by-side delivery, the whole alert was dead-lettered as
    ``delivery_error`` although the good hook and Alertmanager had taken it, and with no
    marker of theirs the replay sent it to them again."""
    alert = _alert("appeal-bad-host")

    async def scenario(rec: Receivers, h: Harness) -> None:
        good, am = Target("webhook", rec.url("/a")), Target("alertmanager", "")
        out = await h.alerts(alert.to_json())
        assert [r for _, r, _, _ in out.dead] == ["delivery_rejected"]
        assert (out.dead[0][3] or "").endswith(": invalid URL")
        assert not out.parked()
        assert rec.keys("/a") == [alert.alert_id]
        assert len(rec.keys("/api/v2/alerts")) == 1
        assert await _served(h, alert, good, am) == [True, True]
        assert not await h.sent(alert)  # the replay must still reach the bad hook once fixed
        again = await h.alerts(out.dead[0][2])  # the replay: nothing again to those that took it
        assert [r for _, r, _, _ in again.dead] == ["delivery_rejected"]
        assert rec.keys("/a") == [alert.alert_id]
        assert len(rec.keys("/api/v2/alerts")) == 1

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base,
         router_hooks=lambda rec: {"22-a": [rec.url("/a"), bad_hook]})


def test_an_error_delivering_to_one_target_leaves_the_others_outcomes(redis_server) -> None:
    """An unexpected exception (a bug) while delivering to one target escaped
    ``asyncio.gather``: the alert was dead-lettered as a whole and the targets that took it got
    no marker. Now it is that target's ``delivery_error`` only; a parked target stays parked."""
    alert = _alert("appeal-one-target-bug")

    async def scenario(rec: Receivers, h: Harness) -> None:
        good, bug, down = (Target("webhook", rec.url(p)) for p in ("/a", "/bug", "/down"))
        rec.scripts["/down"] = [503] * 10
        real = h.delivery._deliver

        async def deliver(target: Target, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if target == bug:
                raise RuntimeError("a bug in one target's delivery")
            return await real(target, *args, **kwargs)

        h.delivery._deliver = deliver  # type: ignore[method-assign]
        out = await h.alerts(alert.to_json())
        assert [(r, d) for _, r, _, d in out.dead] == [
            ("delivery_error", "webhook 127.0.0.1:" + rec.base.rsplit(":", 1)[1]
             + ": RuntimeError")]
        (record,) = out.parked()
        assert record.channels == ["webhook"]
        assert sorted(record.done) == sorted([good.key, bug.key])
        assert record.rejected == [bug.key]
        assert await _served(h, alert, good, bug, down) == [True, False, False]
        h.delivery._deliver = real  # type: ignore[method-assign]
        rec.scripts["/down"] = []
        retry = await h.retries(record)  # /down is back: delivered, not marked sent as a whole
        assert not retry.dead and not retry.parked()
        assert not await h.sent(alert)
        await h.alerts(out.dead[0][2])  # the replay once fixed: only the target that raised
        assert rec.keys("/a") == [alert.alert_id]
        assert rec.keys("/bug") == [alert.alert_id]
        assert await h.sent(alert)

    _run(redis_server.url, scenario,
         router_hooks=lambda rec: {"22-a": [rec.url(p) for p in ("/a", "/bug", "/down")]})


def test_a_receiver_that_just_failed_is_not_tried_by_the_next_batch(redis_server) -> None:
    """The next batch's alerts for a failing receiver are parked at once instead of waiting
    for it again; the other receivers' alerts go out in the same batch."""
    a1, a2, b1 = _alert("appeal-a1"), _alert("appeal-a2"), _alert("appeal-b1", "22-b")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503] * 10
        first = await h.alerts(a1.to_json())
        second = await h.alerts(a2.to_json(), b1.to_json())
        assert [p.alert.alert_id for p in first.parked()] == [a1.alert_id]
        assert [p.alert.alert_id for p in second.parked()] == [a2.alert_id]
        assert rec.keys("/a") == [a1.alert_id] * 2  # a2: no request
        assert rec.keys("/b") == [b1.alert_id]

    _run(redis_server.url, scenario,
         router_hooks=lambda rec: {"22-a": [rec.url("/a")], "22-b": [rec.url("/b")]})


# ------------------------------------------------------------------------------ retrying


def _parked(alert: SlaAlert, attempt: int = 1, first_failed_at: float | None = None,
            not_before: float | None = None, done: list[str] | None = None) -> Parked:
    now = time.time()
    return Parked(alert=alert, attempt=attempt,
                  first_failed_at=now - 10 if first_failed_at is None else first_failed_at,
                  not_before=now if not_before is None else not_before,
                  done=done or [], channels=["webhook"])


def test_retry_delivers_to_the_targets_not_yet_served_and_marks_sent(redis_server) -> None:
    alert = _alert("appeal-retry-ok")

    async def scenario(rec: Receivers, h: Harness) -> None:
        sent_before = _count(metrics.NOTIFY_RETRIES, "webhook", "sent")
        record = _parked(alert, attempt=3, done=[Target("webhook", rec.url("/up")).key])
        out = await h.retries(record)
        assert not out.dead and not out.parked()
        assert rec.keys("/back") == [alert.alert_id] and rec.keys("/up") == []
        assert await h.sent(alert)
        assert _count(metrics.NOTIFY_RETRIES, "webhook", "sent") == sent_before + 1
        # A replay of the record (or a second record of the alert) is a no-op now.
        again = await h.retries(record)
        assert not again.sent and not again.dead and rec.keys("/back") == [alert.alert_id]

    _run(redis_server.url, scenario,
         router_hooks=lambda rec: {"22-a": [rec.url("/up"), rec.url("/back")]})


def test_retry_waits_for_not_before_and_backs_off_exponentially(redis_server) -> None:
    alert = _alert("appeal-retry-again")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503] * 10
        failed_before = _count(metrics.NOTIFY_RETRIES, "webhook", "failed")
        out = await h.retries(_parked(alert, attempt=3, first_failed_at=now - 100,
                                      not_before=now + 7.5))
        assert h.sleeps == [7.5]  # waited for its moment
        (again,) = out.parked()
        assert (again.attempt, again.first_failed_at) == (4, now - 100)
        # Attempt 4: 5 s · 2³ = 40 s, the upper half jittered.
        assert now + 20 <= again.not_before <= now + 40
        assert not out.dead and not await h.sent(alert)
        assert _count(metrics.NOTIFY_RETRIES, "webhook", "failed") == failed_before + 1
        assert h.notifier.tracker.count("webhook") == 1
        assert h.notifier.tracker.oldest_age("webhook") == 100
        # A not_before far ahead (another worker's clock) waits at most the backoff maximum
        # (or the Retry-After cap, when that is longer).
        h.sleeps.clear()
        await h.retries(_parked(alert, not_before=now + 86400))
        assert h.sleeps == [h.settings.notify_retry_backoff_max]

    _run(redis_server.url, scenario, clock=lambda: now, notify_retry_after_max=30.0)


def test_backoff_is_capped() -> None:
    settings = _settings(notify_retry_backoff=5.0, notify_retry_backoff_max=300.0)
    rng = random.Random(4)
    for attempt, full in [(1, 5), (2, 10), (3, 20), (7, 300), (60, 300), (10_000, 300)]:
        assert full / 2 <= retry_delay(settings, attempt, rng) <= full


def test_parked_alert_older_than_max_age_is_dead_lettered(redis_server) -> None:
    alert = _alert("appeal-given-up")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503] * 10
        failed_before = _count(metrics.NOTIFICATIONS, "webhook", "failed")
        dl_before = _count(metrics.DEADLETTER, "notify", "delivery_failed")
        record = _parked(alert, attempt=40, not_before=now,
                         first_failed_at=now - h.settings.notify_retry_max_age - 1)
        h.notifier.tracker.seen(alert.alert_id, ["webhook"], record.first_failed_at)
        out = await h.retries(record)
        assert rec.keys("/a") == [alert.alert_id] * 2  # tried once more before giving up
        assert not out.parked()
        ((stage, reason, value, detail),) = out.dead
        assert (stage, reason) == ("notify", "delivery_failed")
        assert Parked.from_bytes(value).alert == alert  # the alert is kept in the dead letter
        assert "40 retries" in (detail or "") and "/a" not in (detail or "")
        assert _count(metrics.NOTIFICATIONS, "webhook", "failed") == failed_before + 1
        assert _count(metrics.DEADLETTER, "notify", "delivery_failed") == dl_before + 1
        assert h.notifier.tracker.count("webhook") == 0
        assert not await h.sent(alert)

    _run(redis_server.url, scenario, clock=lambda: now)


def test_young_parked_alert_is_not_dead_lettered(redis_server) -> None:
    alert = _alert("appeal-still-young")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503] * 10
        out = await h.retries(_parked(alert, attempt=40, not_before=now,
                                      first_failed_at=now - h.settings.notify_retry_max_age + 5))
        assert not out.dead and [p.attempt for p in out.parked()] == [41]

    _run(redis_server.url, scenario, clock=lambda: now)


def test_bad_retry_record_is_dead_lettered(redis_server) -> None:
    alert = _alert("appeal-ok-neighbour")

    async def scenario(rec: Receivers, h: Harness) -> None:
        broken = orjson.dumps({"schema_version": 1, "kind": "notify-retry", "alert": {"x": 1}})
        odd = orjson.loads(_parked(alert).to_json())
        odd["attempt"] = "3"
        out = await h.retries(broken, orjson.dumps(odd), b"[]", _parked(alert))
        assert sorted(r for _, r, _, _ in out.dead) == sorted(
            ["missing_field", "bad_retry_record", "not_object"])
        assert rec.keys("/a") == [alert.alert_id]

    _run(redis_server.url, scenario)


def test_two_records_of_one_alert_are_tried_once(redis_server) -> None:
    alert = _alert("appeal-parked-twice")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.retries(_parked(alert, attempt=2), _parked(alert, attempt=5))
        assert rec.keys("/a") == [alert.alert_id]
        assert not out.dead and not out.parked() and await h.sent(alert)

    _run(redis_server.url, scenario)


# ------------------------------------------------------------------------------ Alertmanager


def test_late_delivery_posts_an_alert_still_firing() -> None:
    """endsAt was fired_at + ttl: an alert delivered more than the ttl late (after an outage)
    arrived already resolved. It is the delivery time + ttl; startsAt stays fired_at."""
    now = 1_800_000_000.0
    fired = dt.datetime.fromtimestamp(now - 25 * 3600, dt.timezone(dt.timedelta(hours=7)))
    alert = _alert("appeal-late", fired_at=fired.isoformat(timespec="seconds"))
    body = alertmanager_alert(alert, "http://x", ttl=86400.0, now=now)
    starts = dt.datetime.fromisoformat(body["startsAt"].replace("Z", "+00:00"))
    ends = dt.datetime.fromisoformat(body["endsAt"].replace("Z", "+00:00"))
    assert body["startsAt"].endswith("Z") and starts == fired
    assert ends.timestamp() == now + 86400.0 > now


def test_parked_alert_reaches_alertmanager_firing(redis_server) -> None:
    """The retry path builds the Alertmanager body at delivery time, not at parking time."""
    fired = time.time() - 3 * 3600
    alert = _alert("appeal-am-late", fired_at=dt.datetime.fromtimestamp(fired, dt.UTC)
                   .isoformat(timespec="seconds"))

    async def scenario(rec: Receivers, h: Harness) -> None:
        before = time.time()
        await h.retries(_parked(alert, done=[Target("webhook", rec.url("/a")).key]))
        ((posted,),) = rec.bodies("/api/v2/alerts")
        ends = dt.datetime.fromisoformat(posted["endsAt"].replace("Z", "+00:00")).timestamp()
        starts = dt.datetime.fromisoformat(posted["startsAt"].replace("Z", "+00:00"))
        assert ends >= before + 3600 - 1  # alert_ttl after the delivery
        assert starts.timestamp() == int(fired)
        assert rec.keys("/a") == []  # the webhook had it already
        assert await h.sent(alert)

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base, alert_ttl=3600.0)


# ------------------------------------------------------------------------------ bits


def test_tracker_forgets_records_it_no_longer_sees() -> None:
    now = [1000.0]
    tracker = ParkedTracker(forget_after=60, clock=lambda: now[0])
    tracker.seen("a", ["webhook"], 900.0)
    tracker.seen("b", ["webhook", "alertmanager"], 950.0)
    assert (tracker.count("webhook"), tracker.oldest_age("webhook")) == (2, 100.0)
    assert tracker.oldest_age("alertmanager") == 50.0
    tracker.resolved("a")
    assert tracker.oldest_age("webhook") == 50.0
    now[0] = 1100.0
    assert (tracker.count("webhook"), tracker.oldest_age("webhook")) == (0, 0.0)


@pytest.mark.parametrize(("name", "value"), [
    ("APPEALS_NOTIFY_INLINE_BUDGET", "0"),
    ("APPEALS_NOTIFY_RETRY_BACKOFF", "0"),
    ("APPEALS_NOTIFY_RETRY_BACKOFF_MAX", "1"),  # below the 5 s first delay
    ("APPEALS_NOTIFY_RETRY_MAX_AGE", "-1"),
    ("APPEALS_ALERT_TTL", "1e12"),
    ("APPEALS_NOTIFY_RETRY_AFTER_MAX", "0"),
    ("APPEALS_NOTIFY_RETRY_AFTER_MAX", "7200"),  # over an hour
])
def test_retry_settings_are_validated(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.load({name: value})


def test_parked_alert_whose_receivers_were_removed_is_dead_lettered(redis_server) -> None:
    alert = _alert("appeal-orphaned", authority="22-b")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        before = _count(metrics.DEADLETTER, "notify", "no_receiver")
        out = await h.retries(_parked(alert, attempt=3, not_before=now,
                                      first_failed_at=now - 60))
        ((stage, reason, value, _detail),) = out.dead
        assert (stage, reason) == ("notify", "no_receiver")
        assert Parked.from_bytes(value).alert == alert
        assert not out.parked() and not await h.sent(alert)
        assert _count(metrics.DEADLETTER, "notify", "no_receiver") == before + 1

    # The rules no longer name any hook for 22-b (and Alertmanager is off).
    _run(redis_server.url, scenario, router_hooks=lambda rec: {"22-b": []}, clock=lambda: now)


# ------------------------------------------------------------------------------ no receiver


def test_alert_for_an_authority_without_receiver_is_dead_lettered(redis_server) -> None:
    """22-a has no supervisors' hook, 22-c only a .invalid placeholder, and there is no
    fallback hook and no Alertmanager, while 22-b has a hook: 22-a's and 22-c's alerts used to
    be marked sent with only a log line. They are dead-lettered as ``no_receiver`` (like a
    parked alert whose receivers were removed), counted, not parked, not marked sent."""
    lost, placeholder, fine = (_alert("appeal-no-hook"), _alert("appeal-placeholder", "22-c"),
                               _alert("appeal-has-hook", "22-b"))

    async def scenario(rec: Receivers, h: Harness) -> None:
        before = _count(metrics.DEADLETTER, "notify", "no_receiver")
        out = await h.alerts(lost.to_json(), fine.to_json(), placeholder.to_json())
        assert sorted((s, r, v) for s, r, v, _ in out.dead) == sorted([
            ("notify", "no_receiver", lost.to_json()),
            ("notify", "no_receiver", placeholder.to_json())])
        details = {v: d for _, _, v, d in out.dead}
        assert "authority 22-a" in (details[lost.to_json()] or "")
        assert "invalid" not in (details[placeholder.to_json()] or "")  # no URL in the reason
        assert not out.parked()
        assert not await h.sent(lost) and not await h.sent(placeholder)
        assert rec.keys("/b") == [fine.alert_id] and await h.sent(fine)
        assert _count(metrics.DEADLETTER, "notify", "no_receiver") == before + 2

    _run(redis_server.url, scenario, webhook_url="", alertmanager_url="",
         router_hooks=lambda rec: {"22-a": [], "22-b": [rec.url("/b")],
                                   "22-c": ["https://hooks.example.invalid/22/c"]})


def test_log_only_deployment_still_marks_alerts_sent(redis_server) -> None:
    """No receiver configured anywhere (the packaged demo rules, no APPEALS_WEBHOOK_URL, no
    Alertmanager): the log line is the delivery, as documented; nothing is dead-lettered."""
    alert = _alert("appeal-log-only")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(alert.to_json())
        assert not out.dead and not out.parked() and await h.sent(alert)

    _run(redis_server.url, scenario, webhook_url="", alertmanager_url="",
         router_hooks=lambda rec: {"22-a": [], "22-b": ["https://hooks.example.invalid/22/b"]})


# ------------------------------------------------------------------------------ Retry-After


def test_retry_after_seconds_holds_the_receiver_and_parks_its_alerts(redis_server) -> None:
    """A 429 with Retry-After: 30 used to be followed by the next quick attempt a fraction of
    a second later. No request reaches that receiver before the 30 s: the alert is parked with
    its not_before, the next batch's alert for it is parked without a request, another
    receiver's alert goes out, and the retry agent waits and does not probe it early."""
    a1, a2, b1 = _alert("appeal-ra-1"), _alert("appeal-ra-2"), _alert("appeal-ra-b", "22-b")
    now = 1_900_000_000.0

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [(429, {"Retry-After": "30"})]
        first = await h.alerts(a1.to_json())
        assert rec.keys("/a") == [a1.alert_id]  # no second quick attempt
        (parked,) = first.parked()
        assert now + 29 <= parked.not_before <= now + 30.5 and not first.dead
        second = await h.alerts(a2.to_json(), b1.to_json())
        assert rec.keys("/a") == [a1.alert_id]
        (parked2,) = second.parked()
        assert parked2.alert == a2 and parked2.not_before >= now + 28
        assert rec.keys("/b") == [b1.alert_id] and await h.sent(b1)
        # The retry agent waits for the record's moment; its clock says the moment has come,
        # but the receiver's 30 s have not passed: still no request, parked again no earlier.
        again = await h.retries(parked)
        assert len(h.sleeps) == 1 and 29 <= h.sleeps[0] <= 30.5
        assert rec.keys("/a") == [a1.alert_id]
        (parked3,) = again.parked()
        assert parked3.attempt == 2 and parked3.not_before >= now + 28
        assert not await h.sent(a1) and not await h.sent(a2)

    _run(redis_server.url, scenario, clock=lambda: now,
         router_hooks=lambda rec: {"22-a": [rec.url("/a")], "22-b": [rec.url("/b")]})


def test_retry_after_http_date_is_honoured(redis_server) -> None:
    """The HTTP-date form is read too (on a 503); once its moment has passed the receiver
    gets the alert from the retry agent."""
    alert = _alert("appeal-ra-date")

    async def scenario(rec: Receivers, h: Harness) -> None:
        until = time.time() + 3
        rec.scripts["/a"] = [(503, {"Retry-After": email.utils.formatdate(until, usegmt=True)})]
        start = time.time()
        out = await h.alerts(alert.to_json())
        assert rec.keys("/a") == [alert.alert_id]  # no second quick attempt
        (parked,) = out.parked()
        assert start + 1.5 <= parked.not_before <= until + 0.5  # not the 0.1 s backoff
        await asyncio.sleep(max(0.0, until - time.time()) + 1.1)
        done = await h.retries(parked)
        assert rec.keys("/a") == [alert.alert_id] * 2
        assert not done.parked() and not done.dead and await h.sent(alert)

    _run(redis_server.url, scenario, notify_retry_backoff=0.1)


def test_retry_after_is_capped(redis_server) -> None:
    """A Retry-After longer than APPEALS_NOTIFY_RETRY_AFTER_MAX is cut to it."""
    alert = _alert("appeal-ra-cap")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [(429, {"Retry-After": "86400"})]
        start = time.time()
        out = await h.alerts(alert.to_json())
        assert rec.keys("/a") == [alert.alert_id]
        (parked,) = out.parked()
        assert start + 19 <= parked.not_before <= time.time() + 20.5

    _run(redis_server.url, scenario, notify_retry_backoff=0.1, notify_retry_after_max=20.0)


def test_retry_after_header_forms() -> None:
    from workers.notify.delivery import parse_retry_after

    now = 1_900_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(date, now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0
    assert parse_retry_after("9" * 40, now) == 1e12  # capped by the caller
    for bad in (None, "", "-5", "1.5", "soon", "x" * 100):
        assert parse_retry_after(bad, now) is None


def test_a_parked_warning_is_superseded_by_its_breach_sent_meanwhile(redis_server) -> None:
    """The warning was parked (its receiver hiccupped), the same appeal's breach went out at
    once, and the warning's retry then delivered the stale warning after the breach."""
    warning = _alert("appeal-order", level="warning")
    breach = _alert("appeal-order", level="breach")
    other_cycle = SlaAlert.from_dict({**_alert("appeal-order", level="warning").to_dict(),
                                      "alert_id": "appeal-order:warning:1"})

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [503, 503]
        (parked,) = (await h.alerts(warning.to_json())).parked()
        superseded = _count(metrics.NOTIFICATIONS, "webhook", "superseded")
        h.delivery._failed_at.clear()  # the hold-off has passed
        assert not (await h.alerts(breach.to_json())).parked()
        out = await h.retries(parked)
        assert not out.sent and not out.dead  # settled: neither parked again nor lost
        assert [b["level"] for b in rec.bodies("/a")] == ["warning", "warning", "breach"]
        assert _count(metrics.NOTIFICATIONS, "webhook", "superseded") == superseded + 1
        assert await h.sent(warning)
        # Another cycle's warning (a new deadline) is not superseded by this breach.
        await h.alerts(other_cycle.to_json())
        assert [b["alert_id"] for b in rec.bodies("/a")][-1] == other_cycle.alert_id

    _run(redis_server.url, scenario)


def test_a_warning_and_its_breach_in_one_batch_go_out_as_the_breach_only(redis_server) -> None:
    """A batch holding both (the timer sweep catching up after an outage) sent them side by
    side, in no particular order."""
    warning = _alert("appeal-both", level="warning")
    breach = _alert("appeal-both", level="breach")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(warning.to_json(), breach.to_json())
        assert not out.sent and not out.dead
        assert rec.keys("/a") == [breach.alert_id]
        assert await h.sent(warning) and await h.sent(breach)

    _run(redis_server.url, scenario)


def _escalation_to(parent: str, appeal_id: str, authority: str = "22-a") -> SlaAlert:
    """The escalation of ``_alert(appeal_id, authority)``'s breach, notified to ``parent``."""
    return SlaAlert.from_dict({**_alert(appeal_id, authority, level="escalation").to_dict(),
                               "notify_authority_id": parent, "severity": "page"})


def _am_authorities(rec: Receivers) -> list[tuple[str, str]]:
    return [(a["labels"]["alertname"], a["labels"]["authority"])
            for body in rec.bodies("/api/v2/alerts") for a in body]


def _parent_hooks(rec: Receivers) -> dict[str, list[str]]:
    return {"22-a": [rec.url("/a")], "22-parent": [rec.url("/parent")]}


def test_an_escalation_to_the_parent_does_not_supersede_the_authoritys_breach_in_a_batch(
        redis_server) -> None:
    """The breach (to 22-a) and its escalation (to the parent body) in one batch: Alertmanager
    took the escalation first, and the breach was settled as superseded: 22-a's supervisors
    never saw it at Alertmanager."""
    breach = _alert("appeal-esc-batch", level="breach")
    escalation = _escalation_to("22-parent", "appeal-esc-batch")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(breach.to_json(), escalation.to_json())
        assert not out.parked() and not out.dead
        assert sorted(_am_authorities(rec)) == [("AppealSlaBreach", "22-a"),
                                                ("AppealSlaEscalation", "22-parent")]
        assert rec.keys("/a") == [breach.alert_id]
        assert rec.keys("/parent") == [escalation.alert_id]

    _run(redis_server.url, scenario, router_hooks=_parent_hooks,
         alertmanager_url=lambda rec: rec.base)


def test_a_parked_breach_reaches_alertmanager_after_the_escalation_to_the_parent(
        redis_server) -> None:
    """Alertmanager down longer than the escalation delay: the breach waited parked, the
    escalation to the parent went out, and the breach's retry dropped it as superseded."""
    breach = _alert("appeal-esc-parked", level="breach")
    escalation = _escalation_to("22-parent", "appeal-esc-parked")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/api/v2/alerts"] = [503, 503]
        (parked,) = (await h.alerts(breach.to_json())).parked()
        h.delivery._failed_at.clear()
        await h.alerts(escalation.to_json())
        out = await h.retries(parked)
        assert not out.parked() and not out.dead
        assert _am_authorities(rec)[-2:] == [("AppealSlaEscalation", "22-parent"),
                                             ("AppealSlaBreach", "22-a")]
        assert await h.sent(breach)

    _run(redis_server.url, scenario, router_hooks=_parent_hooks,
         alertmanager_url=lambda rec: rec.base)


def test_the_shared_fallback_hook_gets_the_breach_and_the_escalation_to_the_parent(
        redis_server) -> None:
    breach = _alert("appeal-esc-fallback", level="breach")
    escalation = _escalation_to("22-parent", "appeal-esc-fallback")
    warning = _alert("appeal-esc-fallback", level="warning")

    async def scenario(rec: Receivers, h: Harness) -> None:
        await h.alerts(breach.to_json(), escalation.to_json())
        assert sorted(rec.keys("/fallback")) == sorted([breach.alert_id, escalation.alert_id])
        # The authority's own breach still supersedes its warning there.
        await h.alerts(warning.to_json())
        assert warning.alert_id not in rec.keys("/fallback")

    _run(redis_server.url, scenario, router_hooks=lambda rec: {"22-a": [], "22-parent": []},
         webhook_url=lambda rec: rec.url("/fallback"))


def test_an_escalation_to_the_authority_itself_still_supersedes_its_warning(
        redis_server) -> None:
    """No parent body: the escalation goes to the authority, a later level of its warning."""
    warning = _alert("appeal-esc-self", level="warning")
    escalation = _escalation_to("22-a", "appeal-esc-self")

    async def scenario(rec: Receivers, h: Harness) -> None:
        await h.alerts(warning.to_json(), escalation.to_json())
        assert rec.keys("/a") == [escalation.alert_id]
        assert [n for n, _ in _am_authorities(rec)] == ["AppealSlaEscalation"]

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


# ------------------------------------------------------------------------------ end records


def _ended(alert: SlaAlert, at: str = "2026-12-11T09:00:00+00:00") -> SlaAlert:
    """The SLA agent's end record of ``alert``: the same alert with ``resolved_at``."""
    return SlaAlert.from_dict({**alert.to_dict(), "fired_at": at, "resolved_at": at})


def test_an_end_record_resolves_the_alert_at_alertmanager_and_the_hooks(redis_server) -> None:
    warning = _alert("appeal-end", level="warning")
    end = _ended(warning)
    validate_incoming("sla-alert", end.to_dict())

    async def scenario(rec: Receivers, h: Harness) -> None:
        await h.alerts(warning.to_json())
        (firing,) = rec.bodies("/api/v2/alerts")[-1]
        out = await h.alerts(end.to_json())
        assert not out.sent and not out.dead
        (resolved,) = rec.bodies("/api/v2/alerts")[-1]
        assert resolved["labels"] == firing["labels"]  # the same alert at Alertmanager
        ends = dt.datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00"))
        assert ends.timestamp() <= time.time()
        assert [b["status"] for b in rec.bodies("/a")] == ["firing", "resolved"]
        assert rec.bodies("/a")[-1]["resolved_at"] == end.resolved_at
        # Its own Idempotency-Key: under the alert's, a receiver dropped it as a repeat.
        assert rec.keys("/a") == [warning.alert_id, f"{warning.alert_id}:resolved"]
        # A replay of the end sends nothing again.
        count = len(rec.requests)
        await h.alerts(end.to_json())
        assert len(rec.requests) == count

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


def test_a_parked_alert_whose_end_came_meanwhile_is_dropped(redis_server) -> None:
    """Alertmanager was down when the warning went out; the appeal was answered meanwhile.
    The retry posted the warning firing for APPEALS_ALERT_TTL."""
    warning = _alert("appeal-end-parked", level="warning")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/api/v2/alerts"] = [503, 503]
        (parked,) = (await h.alerts(warning.to_json())).parked()
        dropped = _count(metrics.NOTIFICATIONS, "log", "ended_undelivered")
        h.delivery._failed_at.clear()
        out = await h.alerts(_ended(warning).to_json())
        assert not out.sent and not out.dead
        # The hook that took the warning got its end; Alertmanager, which never had it, not.
        assert [b["status"] for b in rec.bodies("/a")] == ["firing", "resolved"]
        assert len(rec.bodies("/api/v2/alerts")) == 2
        out = await h.retries(parked)
        assert not out.sent and not out.dead  # settled, neither parked again nor lost
        assert len(rec.bodies("/api/v2/alerts")) == 2
        assert _count(metrics.NOTIFICATIONS, "log", "ended_undelivered") == dropped + 1
        assert await h.sent(warning)

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


def test_an_alert_and_its_end_in_one_batch_deliver_nothing(redis_server) -> None:
    warning = _alert("appeal-end-batch", level="warning")

    async def scenario(rec: Receivers, h: Harness) -> None:
        out = await h.alerts(warning.to_json(), _ended(warning).to_json())
        assert not out.sent and not out.dead
        assert rec.requests == []
        # Replayed later, the alert stays undelivered.
        await h.alerts(warning.to_json())
        assert rec.requests == []

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


def test_a_failed_end_is_parked_and_retried_to_the_receiver_that_failed(redis_server) -> None:
    warning = _alert("appeal-end-retry", level="warning")
    end = _ended(warning)

    async def scenario(rec: Receivers, h: Harness) -> None:
        await h.alerts(warning.to_json())
        rec.scripts["/a"] = [503, 503]
        (parked,) = (await h.alerts(end.to_json())).parked()
        assert parked.alert.resolved_at == end.resolved_at
        assert [a["labels"]["alertname"] for b in rec.bodies("/api/v2/alerts") for a in b] == [
            "AppealSlaWarning", "AppealSlaWarning"]
        out = await h.retries(parked)
        assert not out.sent and not out.dead
        assert [b["status"] for b in rec.bodies("/a")][-1] == "resolved"
        assert len(rec.bodies("/api/v2/alerts")) == 2  # Alertmanager took it the first time

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)


def test_an_end_handled_while_redis_fails_is_parked_not_lost(redis_server) -> None:
    """Redis could not say which receivers took the alert: that was read as "nobody", and the
    end was settled and marked sent without reaching the hook that had the alert."""
    import redis as redis_errors

    warning = _alert("appeal-end-redis", level="warning")
    end = _ended(warning)

    async def scenario(rec: Receivers, h: Harness) -> None:
        await h.alerts(warning.to_json())
        real_mget = h.redis.mget

        async def failing_mget(*args: Any, **kwargs: Any) -> Any:
            raise redis_errors.exceptions.ConnectionError("redis restarting")

        h.redis.mget = failing_mget  # type: ignore[method-assign]
        try:
            (parked,) = (await h.alerts(end.to_json())).parked()
        finally:
            h.redis.mget = real_mget  # type: ignore[method-assign]
        assert [b["status"] for b in rec.bodies("/a")] == ["firing"]
        assert not await h.redis.exists(f"{h.settings.app_id}:alert:sent:{end.alert_id}:resolved")
        out = await h.retries(parked)  # Redis back
        assert not out.sent and not out.dead
        assert [b["status"] for b in rec.bodies("/a")] == ["firing", "resolved"]

    _run(redis_server.url, scenario, alertmanager_url=lambda rec: rec.base)
