"""Receivers' answers and settings that the notify path took wrongly (review of session 14).

Real HTTP receivers on loopback and the session's Redis, driven through the same
:class:`Harness` as ``test_notify_retry.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest
from aiohttp import web

from streams.devstack import free_port
from streams.settings import Settings
from tests.notify.test_notify_retry import (
    Harness,
    Receivers,
    Router,
    _alert,
    _parked,
    _run,
    _settings,
    _with_receivers,
)
from workers.notify.webhook_sink import describe

pytestmark = pytest.mark.integration  # the session's Redis holds the sent markers


async def _serve(routes: dict[str, Any]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _delivered_at_once(redis_url: str, hook: Any, appeal_id: str, **settings: Any) -> None:
    """One alert to a receiver answering with ``hook``: sent in the batch, marked sent."""

    async def scenario() -> None:
        runner, base = await _serve({"/hook": hook})
        h = Harness(_settings(notify_inline_budget=5.0, **settings), redis_url,
                    Router({"22-a": [f"{base}/hook"]}))
        alert = _alert(appeal_id)
        try:
            out = await h.alerts(alert.to_json())
            assert not out.parked() and not out.dead
            assert await h.sent(alert)
        finally:
            await h.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_redirect_is_a_rejection_not_a_delivery(redis_server: Any) -> None:
    """aiohttp followed a 302 with a bodiless GET, whose 200 counted as delivered."""
    hits: list[tuple[str, str]] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        hits.append((request.method, request.path))
        if request.path == "/hook":
            raise web.HTTPFound("/moved")
        return web.Response(status=200)

    async def scenario() -> None:
        runner, base = await _serve({"/{tail:.*}": hook})
        h = Harness(_settings(), redis_server.url, Router({"22-a": [f"{base}/hook"]}))
        alert = _alert("appeal-redirected")
        try:
            out = await h.alerts(alert.to_json())
            assert hits == [("POST", "/hook")], "the redirect is not followed"
            assert [(r, d) for _, r, _, d in out.dead] == [
                ("delivery_rejected", f"webhook {base.removeprefix('http://')}: HTTP 302")]
            assert not out.parked()
        finally:
            await h.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_hanging_receivers_do_not_take_a_healthy_receivers_connections(
        redis_server: Any) -> None:
    """Seven hanging hooks × 16 requests took aiohttp's whole pool of 100: the healthy hook's
    request waited for a connection until the budget ran out, was parked and held off."""
    got: list[str] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(65536)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

    async def ok(request: web.Request) -> web.Response:
        got.append(request.headers["Idempotency-Key"])
        return web.Response(status=200)

    async def scenario() -> None:
        hang_port = free_port()
        hang_server = await asyncio.start_server(hang, "127.0.0.1", hang_port)
        runner, base = await _serve({"/ok": ok})
        hooks = {f"hang-{i}": [f"http://127.0.0.1:{hang_port}/h{i}"] for i in range(7)}
        hooks["healthy"] = [f"{base}/ok"]
        settings = _settings(webhook_attempts=3, webhook_backoff=0.2, webhook_timeout=5.0,
                             notify_inline_budget=2.0)
        h = Harness(settings, redis_server.url, Router(hooks))
        healthy = [_alert(f"appeal-healthy-{i}", "healthy") for i in range(2)]
        try:
            values = [_alert(f"appeal-h{i}-{j}", f"hang-{i}").to_json()
                      for i in range(7) for j in range(16)]
            out = await h.alerts(*values, healthy[0].to_json())
            assert got == [healthy[0].alert_id]
            assert healthy[0].alert_id not in {p.alert.alert_id for p in out.parked()}
            assert await h.sent(healthy[0])
            out = await h.alerts(healthy[1].to_json())  # not held off as if it were down
            assert got == [a.alert_id for a in healthy] and not out.parked()
        finally:
            await h.close()
            hang_server.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_an_endless_answer_body_is_not_read(redis_server: Any) -> None:
    """The whole body was read although only the status counts: a receiver answering with
    gigabytes took the worker's memory. Here the 200's body never ends: the alert is
    delivered at once instead of timing out and being parked."""

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)  # chunked: no length announced
        try:
            while True:
                await resp.write(b"x" * 65536)
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    started = time.monotonic()
    _delivered_at_once(redis_server.url, endless, "appeal-endless-body", webhook_timeout=3.0)
    assert time.monotonic() - started < 3.0, "not waiting for the body's end"


def test_a_body_that_stalls_after_a_200_does_not_make_the_alert_fail(redis_server: Any) -> None:
    """The status says the alert was taken; waiting for the rest of a stalled body until the
    budget ran out counted the receiver as failed and sent the alert again later."""

    async def stalls(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b"ok")
        await asyncio.sleep(3600)  # the other 98 bytes never come
        return resp

    _delivered_at_once(redis_server.url, stalls, "appeal-stalled-body", webhook_timeout=10.0)


def test_credentials_in_a_hook_url_stay_out_of_logs_and_dead_letters(
        redis_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def body(rec: Receivers) -> None:
        base = rec.base.replace("http://", "http://svc-user:S3CRET-TOKEN@")
        h = Harness(_settings(), redis_server.url,
                    Router({"22-a": [f"{base}/rejecting"], "22-b": [f"{base}/failing"]}))
        rec.scripts["/rejecting"] = [400]
        rec.scripts["/failing"] = [500, 500, 500]
        try:
            out = await h.alerts(_alert("appeal-u1").to_json(),
                                 _alert("appeal-u2", "22-b").to_json())
            details = [d or "" for _, _, _, d in out.dead]
            assert details == [f"webhook {rec.base.removeprefix('http://')}: HTTP 400"]
            assert out.parked()
        finally:
            await h.close()

    asyncio.run(_with_receivers(body))
    assert "S3CRET" not in caplog.text and "svc-user" not in caplog.text
    assert "HTTP 500" in caplog.text  # the lines are there, with the host only


def test_a_retry_record_claiming_too_many_attempts_is_dead_lettered(redis_server: Any) -> None:
    """``attempt`` 2**64 - 1 passed the check; parking it again could not be encoded and the
    worker exited on the record at every replay."""
    alert = _alert("appeal-attempts")

    async def scenario(rec: Receivers, h: Harness) -> None:
        rec.scripts["/a"] = [500] * 5
        record = orjson.loads(_parked(alert).to_json())
        record["attempt"] = 2**64 - 1
        out = await h.retries(orjson.dumps(record))
        assert [r for _, r, _, _ in out.dead] == ["bad_retry_record"]
        assert rec.keys("/a") == []

    _run(redis_server.url, scenario)


def test_parked_gauges_remember_an_alert_as_long_as_a_retry_after_can_hold_it(
        redis_server: Any) -> None:
    """With backoff capped at 60 s and Retry-After at 600 s (both valid), entries were
    forgotten after 240 s while a record could wait 600 s: the stuck-alert rule went blind."""

    async def scenario(rec: Receivers, h: Harness) -> None:
        assert h.notifier.tracker.forget_after >= 2 * 600

    _run(redis_server.url, scenario, notify_retry_backoff_max=60.0,
         notify_retry_after_max=600.0)


@pytest.mark.parametrize(("name", "value"), [
    ("APPEALS_WEBHOOK_URL", ""),
    ("APPEALS_WEBHOOK_URL", "https://user:token@hooks.example.org/x?sig=1"),
    ("APPEALS_ALERTMANAGER_URL", "http://[::1]:9093"),
    ("APPEALS_PUBLIC_URL", "https://appeals.example/base"),
])
def test_good_receiver_urls_start(name: str, value: str) -> None:
    assert getattr(Settings.load({name: value}), name.removeprefix("APPEALS_").lower()) == value


def test_the_sink_describes_alerts_whose_labels_are_not_a_mapping() -> None:
    """A string holding a label's name was indexed by it: TypeError, no answer at all."""
    payload = {"status": "firing", "alerts": [{"labels": "alertname=X"}, {"labels": ["team"]},
                                              {"labels": {"alertname": "X"}}]}
    assert describe("/hook", payload) == ["/hook firing", "/hook firing",
                                          "/hook firing alertname=X"]


def test_a_slow_receiver_that_answers_within_its_timeout_is_served_by_the_retry(
        redis_server: Any) -> None:
    """The retry agent cut its requests at the inline budget (2 s) although a request may take
    APPEALS_WEBHOOK_TIMEOUT (5 s): a receiver answering 200 in 2.5 s got a copy at every retry
    for 7 days and the alert was dead-lettered as delivery_failed."""
    keys: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotency-Key"])
        await asyncio.sleep(1.0)  # past the inline budget, well inside the timeout
        return web.Response(status=200)

    async def scenario() -> None:
        runner, base = await _serve({"/hook": slow})
        h = Harness(_settings(webhook_attempts=1, webhook_timeout=3.0, notify_inline_budget=0.5),
                    redis_server.url, Router({"22-a": [f"{base}/hook"]}))
        alert = _alert("appeal-slow-receiver")
        try:
            parked = (await h.alerts(alert.to_json())).parked()
            assert [p.alert.alert_id for p in parked] == [alert.alert_id]  # quick attempt cut
            out = await h.retries(*parked)
            assert not out.parked() and not out.dead, "the retry did not wait for the answer"
            assert await h.sent(alert)
            assert keys == [alert.alert_id] * 2
        finally:
            await h.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_200_late_in_the_budget_counts_though_its_body_stalls(redis_server: Any) -> None:
    """The body was read inside the batch's budget: a 200 that came with less than a second
    of it left was thrown away when the budget ran out during the read, and the alert was
    parked and sent again. The status decides; the body read still ends with the budget."""
    keys: list[str] = []

    async def late_then_stalls(request: web.Request) -> web.StreamResponse:
        keys.append(request.headers["Idempotency-Key"])
        await request.read()
        await asyncio.sleep(0.7)  # the 200 comes with 0.3 s of the budget left
        resp = web.StreamResponse(status=200)
        resp.content_length = 100
        await resp.prepare(request)
        await asyncio.sleep(3600)  # the body never comes
        return resp

    async def scenario() -> None:
        runner, base = await _serve({"/hook": late_then_stalls})
        h = Harness(_settings(webhook_timeout=5.0, notify_inline_budget=1.0), redis_server.url,
                    Router({"22-a": [f"{base}/hook"]}))
        alert = _alert("appeal-late-200")
        try:
            started = time.monotonic()
            out = await h.alerts(alert.to_json())
            took = time.monotonic() - started
            assert not out.parked() and not out.dead, "a 200 came, yet the alert is parked"
            assert await h.sent(alert) and keys == [alert.alert_id]
            assert took < 1.5, f"the body read outlasted the batch's budget ({took:.1f} s)"
        finally:
            await h.close()
            await runner.cleanup()

    asyncio.run(scenario())
