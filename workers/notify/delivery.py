"""Delivery of SLA alerts to supervisors: per-authority webhooks and the Alertmanager v2 API.

Why this shape:
- The notify agent calls ``deliver(alert) -> bool`` once per alert and dead-letters the alert
  (reason ``delivery_failed``) when it returns False, so everything about retrying lives here
  and the agent stays a plain loop.
- Retries use exponential backoff with jitter, so a receiver that comes back after an outage is
  not hit by every worker at the same instant. Every attempt of one alert carries the same
  ``Idempotency-Key`` (the alert id, derived from appeal, level and cycle): a receiver that saw
  a request whose response was lost can drop the repeat.
- The webhook URL comes from the routing rules (the notified authority's supervisors), so
  adding a supervisor's hook is a rules change, reloaded without a restart. Hosts under the
  reserved ``.invalid`` top-level domain (RFC 6761; the packaged demo rules use them as
  placeholders) are skipped instead of retried into a certain failure.
- Alertmanager labels must be a bounded set: appeal ids never go there (one series per appeal
  would grow without limit). The Alertmanager alert therefore means "authority X has an SLA
  warning/breach/escalation in regime R"; the appeal's link goes into the annotations, and the
  webhook carries every individual alert.
- Nothing of the citizen goes out: an :class:`SlaAlert` holds ids, codes and moments only, and
  the body is built from an explicit list of its fields, so a field added to the record later
  does not leak by default.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from monitoring import metrics
from schemas.records import SlaAlert
from streams.settings import Settings

log = logging.getLogger("appeals.alerts")

ALERT_NAMES = {
    "warning": "AppealSlaWarning",
    "breach": "AppealSlaBreach",
    "escalation": "AppealSlaEscalation",
}
# Fields of SlaAlert that may leave the system (no personal data: ids, codes and moments).
PUBLIC_FIELDS = ("alert_id", "appeal_id", "level", "regime", "region", "authority_id",
                 "notify_authority_id", "due_at", "fired_at", "severity", "category", "urgent",
                 "schema_version")
# Answers worth retrying: the receiver may accept the same request later.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
LEVEL_TEXT = {"warning": "SLA warning", "breach": "SLA breach", "escalation": "SLA escalation"}

Deliver = Callable[[SlaAlert], Awaitable[bool]]


class PermanentFailure(Exception):
    """The receiver rejected the request (a 4xx other than the retryable ones)."""


def appeal_url(public_url: str, appeal_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/appeals/{appeal_id}"


def webhook_body(alert: SlaAlert, public_url: str) -> dict[str, Any]:
    """The JSON a supervisors' webhook receives: the alert's public fields and the link."""
    data = alert.to_dict()
    body = {name: data.get(name) for name in PUBLIC_FIELDS}
    body["url"] = appeal_url(public_url, alert.appeal_id)
    return body


def _parse_ts(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alertmanager_alert(alert: SlaAlert, public_url: str, ttl: float,
                       now: float | None = None) -> dict[str, Any]:
    """One postable alert of the Alertmanager v2 API.

    ``startsAt`` is the alert's ``fired_at``, except when that lies ahead of the wall clock (a
    demo or test runs the SLA clock faster than real time): Alertmanager resolves by wall
    time, so such an alert starts now. ``endsAt`` is ``ttl`` seconds later; a re-sent alert
    (same labels) simply refreshes it.
    """
    wall_now = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    starts = min(_parse_ts(alert.fired_at), wall_now)
    ends = starts + dt.timedelta(seconds=ttl)
    link = appeal_url(public_url, alert.appeal_id)
    what = LEVEL_TEXT.get(alert.level, alert.level)
    return {
        "labels": {
            "alertname": ALERT_NAMES.get(alert.level, "AppealSla"),
            "authority": alert.notify_authority_id,
            "severity": alert.severity,
            "regime": alert.regime,
            "region": alert.region,
        },
        "annotations": {
            "summary": f"{what}: appeal handled by {alert.authority_id}, due {alert.due_at}",
            "description": (
                f"{what} ({alert.regime}, region {alert.region}): the appeal handled by "
                f"{alert.authority_id} was due {alert.due_at}; fired {alert.fired_at}. "
                f"Open {link}"
            ),
            "appeal_url": link,
            "alert_id": alert.alert_id,
            "due_at": alert.due_at,
        },
        "startsAt": _rfc3339(starts),
        "endsAt": _rfc3339(ends),
        "generatorURL": link,
    }


def _reserved_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host == "invalid" or host.endswith(".invalid")


class Delivery:
    """``await delivery(alert)`` → True when every configured channel accepted the alert."""

    def __init__(self, settings: Settings, router: Any = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.router = router
        self.attempts = settings.webhook_attempts
        self.backoff = settings.webhook_backoff
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
        self.alertmanager = settings.alertmanager_url.rstrip("/")
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        """One shared session (connection pool) per process, made inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers={"User-Agent": "citizen-appeals-notify/1"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (1-based): base·2^(n-1), half of it jittered."""
        full = self.backoff * (2 ** (attempt - 1))
        return full / 2 + self._rng.uniform(0, full / 2)

    def webhooks_for(self, authority_id: str) -> list[str]:
        """The notified authority's supervisors' hooks, else the global fallback, else none."""
        urls: list[str] = []
        if self.router is not None:
            try:
                authority = self.router.authority(authority_id)
            except KeyError:
                authority = None
            for supervisor in getattr(authority, "supervisors", ()) or ():
                url = getattr(supervisor, "webhook", None)
                if url and url not in urls:
                    urls.append(url)
        if not urls and self.settings.webhook_url:
            urls.append(self.settings.webhook_url)
        return urls

    async def _post(self, channel: str, url: str, payload: Any,
                    headers: dict[str, str]) -> bool:
        """POST with retries; True once a 2xx arrives, False after the last attempt."""
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.session().post(url, json=payload, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
                if 200 <= status < 300:
                    metrics.NOTIFICATIONS.labels(channel, "sent").inc()
                    return True
                if status not in RETRY_STATUSES:
                    raise PermanentFailure(f"HTTP {status}")
                reason = f"HTTP {status}"
            except PermanentFailure as exc:
                log.warning("%s delivery rejected by %s: %s", channel, _host(url), exc)
                break
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = type(exc).__name__
            if attempt < self.attempts:
                metrics.NOTIFICATIONS.labels(channel, "retry").inc()
                log.info("%s delivery to %s failed (%s), attempt %d/%d", channel, _host(url),
                         reason, attempt, self.attempts)
                await self._sleep(self.delay(attempt))
            else:
                log.warning("%s delivery to %s failed (%s) after %d attempts", channel,
                            _host(url), reason, self.attempts)
        metrics.NOTIFICATIONS.labels(channel, "failed").inc()
        return False

    # -- channels ---------------------------------------------------------------------------

    async def webhook(self, alert: SlaAlert) -> bool:
        urls = self.webhooks_for(alert.notify_authority_id)
        body = webhook_body(alert, self.settings.public_url)
        headers = {"Idempotency-Key": alert.alert_id}
        results = []
        for url in urls:
            if _reserved_host(url):
                metrics.NOTIFICATIONS.labels("webhook", "skipped").inc()
                continue
            results.append(self._post("webhook", url, body, headers))
        return all(await asyncio.gather(*results)) if results else True

    async def to_alertmanager(self, alert: SlaAlert) -> bool:
        if not self.alertmanager:
            return True
        payload = [alertmanager_alert(alert, self.settings.public_url, self.settings.alert_ttl)]
        return await self._post("alertmanager", f"{self.alertmanager}/api/v2/alerts", payload,
                                {"Idempotency-Key": alert.alert_id})

    async def __call__(self, alert: SlaAlert) -> bool:
        hook_ok, am_ok = await asyncio.gather(self.webhook(alert), self.to_alertmanager(alert))
        return bool(hook_ok and am_ok)


def _host(url: str) -> str:
    """Host only, for logs: URLs of hooks may carry secrets in the path or query."""
    return urlsplit(url).netloc or "?"


def build_delivery(settings: Settings, router: Any = None) -> Delivery:
    """Entry point used by :func:`workers.pipeline._delivery`."""
    return Delivery(settings, router)
