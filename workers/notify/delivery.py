"""Delivery of SLA alerts to supervisors: per-authority webhooks and the Alertmanager v2 API.

Why this shape:
- Every alert goes to a list of :class:`Target` (each supervisors' hook, Alertmanager), and
  :meth:`Delivery.send` reports per target: sent, failed (worth trying again: no answer, a
  5xx other than 501 and 505, or a 408, 409, 425 or 429) or rejected (any other answer: a 3xx,
  another 4xx, 501 or 505; see :func:`retryable`). The notify agent parks an alert whose
  targets failed on ``appeals.notify.retry`` (:mod:`workers.notify.retry`) with the targets
  already served, so a retry never re-sends to a receiver that took the alert.
- The quick attempts of a batch are few and bounded by one time budget
  (``APPEALS_NOTIFY_INLINE_BUDGET``), and each receiver has its own concurrency limit: a
  receiver that is down or hangs costs the batch at most the budget, and never holds up the
  other supervisors' alerts behind its retries. A receiver that just failed is not tried again
  by the next batches for ``APPEALS_NOTIFY_RETRY_BACKOFF`` seconds: their alerts for it are
  parked at once (the retry agent is the one that probes it).
- Retries use exponential backoff with jitter, so a receiver that comes back after an outage is
  not hit by every worker at the same instant. Every attempt of one alert carries the same
  ``Idempotency-Key`` (the alert id, derived from appeal, level and cycle): a receiver that saw
  a request whose response was lost can drop the repeat.
- The webhook URL comes from the routing rules (the notified authority's supervisors), so
  adding a supervisor's hook is a rules change, reloaded without a restart. Hosts under the
  reserved ``.invalid`` top-level domain (RFC 6761; the packaged demo rules use them as
  placeholders) are skipped instead of retried into a certain failure. A target is named by
  its channel and a hash of its URL (:attr:`Target.key`): hook URLs may carry secrets, so they
  are never written to a topic or a log (logs show the host only).
- Each SLA alert is an alert of its own at Alertmanager: its labels name the appeal
  (``appeal``, an opaque id, no personal data) and the deadline's ``cycle`` (and ``stage``)
  besides the level, authority, severity, regime and region. Alertmanager takes alerts with
  equal labels for one alert: with per-authority labels only, a second appeal's breach merely
  replaced the first's annotations (no notification), and the breach-silences-warning rule
  silenced every other appeal's warning of that authority. Grouping by ``alertname`` and
  ``authority`` (``monitoring/alertmanager/alertmanager.yml``) still makes one notification
  per authority and level, listing its appeals. The set stays bounded: Alertmanager forgets
  an alert after its ``endsAt`` (delivery + ``APPEALS_ALERT_TTL``, or the delivery of its end
  record: :func:`alertmanager_alert`) has passed, and no metric
  carries an appeal id. Labels hold ids and codes only; the link and texts are annotations.
- Nothing of the citizen goes out: an :class:`SlaAlert` holds ids, codes and moments only, and
  the body is built from an explicit list of its fields, so a field added to the record later
  does not leak by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from monitoring import metrics
from schemas.records import SlaAlert
from schemas.validation import parse_datetime
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
                 "stage", "resolved_at", "schema_version")
# 4xx answers worth retrying: the receiver may accept the same request later. 409 is what a
# receiver implementing Idempotency-Key answers a repeat that arrives while the first request
# with that key is still being processed (draft-ietf-httpapi-idempotency-key-header, "Error
# Scenarios"): "not yet", not a refusal. Taken as one, the alert was dead-lettered and never
# retried, and lost if that first request then failed.
RETRY_CLIENT_STATUSES = frozenset({408, 409, 425, 429})
# 5xx answers that the same request cannot outlive (RFC 9110 §15.6.2, §15.6.6): the receiver
# does not implement POST, or not our HTTP version. Retrying them only waits out the max age.
FINAL_SERVER_STATUSES = frozenset({501, 505})
# Answers whose Retry-After header is honoured (RFC 6585 §4, RFC 9110 §10.2.3).
RETRY_AFTER_STATUSES = frozenset({429, 503})
LEVEL_TEXT = {"warning": "SLA warning", "breach": "SLA breach", "escalation": "SLA escalation"}

SENT = "sent"
FAILED = "failed"
REJECTED = "rejected"
_AGAIN = "again"  # one attempt failed in a way worth repeating
_QUEUED = "queued"  # the budget ran out before the receiver's turn: says nothing about it
_HELD = "held"  # the receiver's Retry-After began while this request waited for its slot
#: A request cut by the batch's budget after less than this long in flight says nothing about
#: the receiver either (it was the last of many); one that hung longer marks the receiver down.
_CUT_SHORT_S = 1.0
#: Of a receiver's answer body at most this much is read, for at most ``_BODY_READ_S``, so its
#: connection can serve the next request; the status is all delivery needs. Reading any body
#: made a receiver answering with gigabytes take the worker's memory (review of session 14).
_BODY_READ_MAX = 64 * 1024
_BODY_READ_S = 1.0

def retryable(status: int) -> bool:
    """True if a receiver's non-2xx ``status`` is worth the same request again later.

    Every 5xx is the receiver's own trouble and may pass (a full disk, 507; a proxy that
    wants a login, 511; a status it made up, 599) except :data:`FINAL_SERVER_STATUSES`; of
    the 4xx only :data:`RETRY_CLIENT_STATUSES`. A fixed list of 500/502/503/504 dead-lettered
    an alert answered 507 at once as ``delivery_rejected``, though the receiver would have
    taken it once it had room. Anything else (another 4xx, a 3xx) is a refusal for good.
    """
    if 500 <= status <= 599:
        return status not in FINAL_SERVER_STATUSES
    return status in RETRY_CLIENT_STATUSES


class UndeliverableAlert(ValueError):
    """A schema-valid alert that cannot be turned into a request (reason: a metric label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Target:
    """One receiver of an alert: a supervisors' webhook or Alertmanager."""

    channel: str
    url: str

    @property
    def key(self) -> str:
        """Stable name of the receiver without its URL (which may hold a secret)."""
        if self.channel == "alertmanager":
            return "alertmanager"
        return f"{self.channel}:{hashlib.sha256(self.url.encode()).hexdigest()[:16]}"

    @property
    def host(self) -> str:
        return _host(self.url)


@dataclass(slots=True)
class Outcome:
    """What :meth:`Delivery.send` achieved for one alert, per target."""

    sent: list[Target] = field(default_factory=list)
    failed: list[tuple[Target, str]] = field(default_factory=list)
    rejected: list[tuple[Target, str]] = field(default_factory=list)
    errors: list[tuple[Target, str]] = field(default_factory=list)
    """Targets whose delivery raised an unexpected exception (a bug): not retried, the alert is
    dead-lettered (``delivery_error``) for them alone, the others' outcomes stand."""
    wait: float = 0.0
    """Seconds before which a failed target must not be tried again (its Retry-After)."""

    @property
    def refused(self) -> list[tuple[Target, str]]:
        """Targets given up for this delivery (a 4xx, or an error): the alert's dead letter
        must reach them when replayed, so it is not marked sent as a whole."""
        return self.rejected + self.errors

    @property
    def done_keys(self) -> list[str]:
        """Targets that must not get this alert again: they took it, or refused it for good."""
        return [t.key for t in self.sent] + [t.key for t, _ in self.refused]

    @property
    def failed_channels(self) -> list[str]:
        return sorted({t.channel for t, _ in self.failed})


def delivery_id(alert: SlaAlert) -> str:
    """What the delivery of ``alert`` is known by (Idempotency-Key, sent markers): its alert id,
    or for an end record (``resolved_at``) that id with ``:resolved``. Under the alert's own id,
    a receiver honouring Idempotency-Key dropped the end as a repeat of the alert."""
    return f"{alert.alert_id}:resolved" if alert.resolved_at else alert.alert_id


def appeal_url(public_url: str, appeal_id: str) -> str:
    """The API's link to the appeal, its id percent-encoded as one path segment: the API reads
    any id the pipeline stores (``ПОС-2026/000123``, ``59fz 2026 17``), but only so encoded;
    the raw id gave a link with spaces, or one that the API answered 404."""
    return f"{public_url.rstrip('/')}/v1/appeals/{quote(appeal_id, safe='')}"


def webhook_body(alert: SlaAlert, public_url: str) -> dict[str, Any]:
    """The JSON a supervisors' webhook receives: the alert's public fields and the link."""
    data = alert.to_dict()
    body = {name: data.get(name) for name in PUBLIC_FIELDS}
    body["url"] = appeal_url(public_url, alert.appeal_id)
    # "resolved": the alert with this alert_id is over (its period ended, or its deadline moved
    # past it), at resolved_at.
    body["status"] = "resolved" if alert.resolved_at else "firing"
    return body


def _parse_ts(text: str) -> dt.datetime:
    """``fired_at`` as an aware moment (naive: UTC).

    Through the schema's own reader: RFC 3339 allows a lower-case ``t`` and ``z``, and
    replacing only ``Z`` dead-lettered a schema-valid ``2026-12-10t17:00:00z`` as
    ``bad_timestamp``.
    """
    moment = parse_datetime(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_alert(alert: SlaAlert) -> None:
    """Raise :class:`UndeliverableAlert` for an alert no channel can be given.

    The schema accepts any RFC 3339 moment, among them some that have no UTC equivalent in
    Python's range (``0001-01-01T00:30:00+01:00``): converting ``fired_at`` raised
    ``OverflowError`` in the middle of a batch, and the worker died on every replay.
    """
    try:
        _rfc3339(_parse_ts(alert.fired_at))
    except (ValueError, OverflowError) as exc:
        raise UndeliverableAlert(
            "bad_timestamp", f"fired_at {alert.fired_at[:40]!r} has no UTC moment: {exc}"
        ) from None


def alertmanager_alert(alert: SlaAlert, public_url: str, ttl: float,
                       now: float | None = None) -> dict[str, Any]:
    """One postable alert of the Alertmanager v2 API.

    ``startsAt`` is the alert's ``fired_at``, except when that lies ahead of the wall clock (a
    demo or test runs the SLA clock faster than real time): Alertmanager resolves by wall
    time, so such an alert starts now. ``endsAt`` is ``ttl`` seconds after the delivery (now),
    not after ``fired_at``: an alert delivered late (a receiver down for a while, a backlog)
    must arrive firing, not already resolved. A re-sent alert (same labels) refreshes it.

    An end record (``resolved_at``) is the same alert (the same labels) with ``endsAt`` the
    delivery moment: Alertmanager resolves it now (and sends the resolved notification of
    ``send_resolved``), by wall time like the rest.
    """
    wall_now = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    try:
        starts = min(_parse_ts(alert.fired_at), wall_now)
        starts_at = _rfc3339(starts)
        ends = wall_now if alert.resolved_at else (
            max(starts, wall_now) + dt.timedelta(seconds=ttl))
        ends_at = _rfc3339(ends)
    except (ValueError, OverflowError) as exc:
        raise UndeliverableAlert(
            "bad_timestamp", f"fired_at {alert.fired_at[:40]!r} has no UTC moment: {exc}"
        ) from None
    link = appeal_url(public_url, alert.appeal_id)
    what = alert_text(alert)
    labels = {
        "alertname": ALERT_NAMES.get(alert.level, "AppealSla"),
        "authority": alert.notify_authority_id,
        "severity": alert.severity,
        "regime": alert.regime,
        "region": alert.region,
        # One alert per appeal's deadline and level (module docstring): without these, every
        # appeal of an authority was the same alert at Alertmanager.
        "appeal": alert.appeal_id,
    }
    if alert.stage:  # a stage deadline's alert must not merge with the answer's
        labels["stage"] = alert.stage
    cycle = alert_cycle(alert)
    if cycle is not None:  # a reopened appeal's new deadline is not the previous one's
        labels["cycle"] = cycle
    return {
        "labels": labels,
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
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": link,
    }


def alert_cycle(alert: SlaAlert) -> str | None:
    """The cycle of the alert's deadline, from an id of the SLA agent's form
    ``<appeal>:[<stage>.]<level>:<cycle>`` (a run of digits); None for any other id."""
    stage = f"{alert.stage}." if alert.stage else ""
    head, _, cycle = alert.alert_id.rpartition(":")
    ok = head == f"{alert.appeal_id}:{stage}{alert.level}"
    return cycle if ok and cycle.isascii() and cycle.isdigit() and len(cycle) <= 9 else None


def alert_text(alert: Any) -> str:
    """"SLA breach", or "SLA breach (stage redirect)" for a tracked stage's alert."""
    what = LEVEL_TEXT.get(alert.level, alert.level)
    stage = getattr(alert, "stage", None)
    return f"{what} (stage {stage})" if stage else what


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date), None if absent
    or unreadable; a date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 64:
        return None
    if value.isascii() and value.isdigit():
        return float(int(value)) if len(value) <= 12 else 1e12
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # an HTTP-date is GMT
    return max(0.0, moment.timestamp() - now)


def _reserved_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host == "invalid" or host.endswith(".invalid")


class Delivery:
    """Sends alerts to their targets; ``await delivery(alert)`` → True when all accepted it."""

    def __init__(self, settings: Settings, router: Any = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.router = router
        self.attempts = settings.webhook_attempts
        self.backoff = settings.webhook_backoff
        self.budget = settings.notify_inline_budget
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
        self.alertmanager = settings.alertmanager_url.rstrip("/")
        # A target that failed this recently is not tried by the quick path: its alerts are
        # parked at once (the retry agent probes it; a success there clears the mark).
        self.hold_off = settings.notify_retry_backoff
        # A receiver that answered 429/503 with Retry-After gets no request (from either path)
        # before the moment it asked for, capped at APPEALS_NOTIFY_RETRY_AFTER_MAX.
        self.retry_after_max = settings.notify_retry_after_max
        self._wait_until: dict[str, float] = {}
        self._receivers_of: tuple[Any, bool] | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._failed_at: dict[str, float] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        """One shared session per process, made inside the running loop.

        Each receiver's own semaphore (``APPEALS_NOTIFY_CONCURRENCY``) bounds its
        connections; the pool's overall limit is only a guard for the process's file
        descriptors (:func:`_pool_limit`). aiohttp's default pool of 100 let seven hanging
        receivers (7 × 16 requests) take every connection, and a healthy receiver's request
        then waited for one until the budget ran out: parked and held off as if it were down,
        and sent twice (review of session 14).
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers={"User-Agent": "citizen-appeals-notify/1"},
                connector=aiohttp.TCPConnector(limit=_pool_limit()),
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

    def _limit(self, key: str) -> asyncio.Semaphore:
        """Concurrency per receiver: a hanging one cannot take the slots of the others."""
        limit = self._limits.get(key)
        if limit is None:
            limit = self._limits[key] = asyncio.Semaphore(self.settings.notify_concurrency)
        return limit

    def webhooks_for(self, authority_id: str) -> list[str]:
        """The notified authority's supervisors' hooks, else the global fallback, else none.

        A ``.invalid`` placeholder hook is not a receiver: an authority that has only
        placeholders gets the fallback as well (the placeholders stay listed and are skipped),
        so the shipped demo rules' placeholders never swallow an alert the fallback would take.
        """
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
        if self.settings.webhook_url and all(_reserved_host(u) for u in urls):
            urls.append(self.settings.webhook_url)
        return urls

    def has_receivers(self) -> bool:
        """Whether any external receiver is configured at all: the fallback hook, Alertmanager,
        or a supervisors' hook (not a ``.invalid`` placeholder) of some authority in the
        current rules. None: the deployment is log-only (the log line is the delivery); an
        alert with no target while others have one is a gap in the configuration."""
        if self.settings.webhook_url or self.alertmanager:
            return True
        if self.router is None:
            return False
        rules = getattr(self.router, "rules", None)
        authorities = getattr(rules, "authorities", None)
        if authorities is None:
            return True  # a router that cannot list its hooks: assume it has some
        if self._receivers_of is None or self._receivers_of[0] is not rules:
            found = any(
                url and not _reserved_host(url)
                for authority in authorities.values()
                for url in (getattr(s, "webhook", None)
                            for s in getattr(authority, "supervisors", ()) or ()))
            self._receivers_of = (rules, found)  # rules are swapped, never changed in place
        return self._receivers_of[1]

    def targets(self, alert: SlaAlert) -> list[Target]:
        """Where this alert goes now (routing rules are reloaded without a restart)."""
        out: list[Target] = []
        for url in self.webhooks_for(alert.notify_authority_id):
            if _reserved_host(url):
                metrics.NOTIFICATIONS.labels("webhook", "skipped").inc()
                continue
            out.append(Target("webhook", url))
        if self.alertmanager:
            out.append(Target("alertmanager", f"{self.alertmanager}/api/v2/alerts"))
        return out

    def _payload(self, target: Target, alert: SlaAlert) -> Any:
        if target.channel == "alertmanager":
            return [alertmanager_alert(alert, self.settings.public_url, self.settings.alert_ttl)]
        return webhook_body(alert, self.settings.public_url)

    # -- sending ----------------------------------------------------------------------------

    async def send(self, alert: SlaAlert, targets: Sequence[Target], *,
                   budget: float | None = None, hold_off: float | None = None,
                   whole_requests: bool = False) -> Outcome:
        """Up to ``webhook_attempts`` quick attempts per target, side by side, all within
        ``budget`` seconds (None: no bound). With ``whole_requests``, the budget bounds only
        the start of a request (waiting for the receiver's slot, a next attempt): a request
        under way gets the whole ``APPEALS_WEBHOOK_TIMEOUT`` (the retry agent's rounds; the
        quick attempts cut it at the budget). With ``hold_off``, a target whose last attempt
        failed less than that many seconds before this call (or during it) is not tried:
        it counts as failed at once.

        An alert no request can carry (:class:`UndeliverableAlert`, a bug in building a
        request) raises before any target is tried. An unexpected exception while delivering
        to one target (a bug) is that target's :attr:`Outcome.errors` only: it escaped
        ``asyncio.gather`` and the whole alert was dead-lettered as ``delivery_error``
        although other receivers had taken it, and without their markers a replay sent it to
        them again.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if budget is None else started + budget
        skip_since = None if hold_off is None else started - hold_off
        headers = {"Idempotency-Key": delivery_id(alert)}
        payloads = [self._payload(target, alert) for target in targets]
        results = await asyncio.gather(*(
            self._deliver(target, payload, headers, deadline, skip_since, whole_requests)
            for target, payload in zip(targets, payloads, strict=True)),
            return_exceptions=True)
        outcome = Outcome()
        now = loop.time()
        for target, answer in zip(targets, results, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer  # cancellation, interpreter exit: not this target's doing
                log.error("%s delivery to %s raised %s", target.channel, target.host,
                          type(answer).__name__, exc_info=answer)
                outcome.errors.append((target, type(answer).__name__))
                continue
            result, reason = answer
            if result == SENT:
                outcome.sent.append(target)
            elif result == REJECTED:
                outcome.rejected.append((target, reason))
            else:
                outcome.failed.append((target, reason))
                outcome.wait = max(outcome.wait, self._wait_until.get(target.key, now) - now)
        return outcome

    def _waiting(self, key: str) -> bool:
        """The receiver asked (Retry-After) not to be sent anything before a moment to come."""
        return self._wait_until.get(key, 0.0) > asyncio.get_running_loop().time()

    def _wait_reason(self, key: str) -> str:
        left = self._wait_until.get(key, 0.0) - asyncio.get_running_loop().time()
        return f"receiver asked to wait (Retry-After, {max(left, 0.0):.0f} s left)"

    def _held_off(self, key: str, skip_since: float | None) -> bool:
        if skip_since is None:
            return False
        failed_at = self._failed_at.get(key)
        return failed_at is not None and failed_at >= skip_since

    async def _deliver(self, target: Target, payload: Any, headers: dict[str, str],
                       deadline: float | None, skip_since: float | None,
                       whole_requests: bool = False) -> tuple[str, str]:
        """Attempts to one target: (SENT | FAILED | REJECTED, reason)."""
        loop = asyncio.get_running_loop()
        key, channel = target.key, target.channel
        reason = ""
        for attempt in range(1, self.attempts + 1):
            if self._waiting(key):
                return FAILED, reason or self._wait_reason(key)
            if self._held_off(key, skip_since):
                return FAILED, reason or "receiver failed moments ago"
            result, reason, retry_after = await self._attempt(target, payload, headers,
                                                              deadline, whole_requests)
            if result in (_QUEUED, _HELD):
                return FAILED, reason  # parked for a retry; the receiver is not held off
            if result == SENT:
                self._failed_at.pop(key, None)
                self._wait_until.pop(key, None)
                metrics.NOTIFICATIONS.labels(channel, "sent").inc()
                return SENT, ""
            if result == REJECTED:
                log.warning("%s delivery rejected by %s: %s", channel, target.host, reason)
                return REJECTED, reason
            if retry_after:
                # No quick attempt before the moment the receiver asked for: park the alert.
                hold = min(retry_after, self.retry_after_max)
                self._failed_at[key] = loop.time()
                self._wait_until[key] = loop.time() + hold
                reason = f"{reason}, Retry-After {hold:.0f} s"
                log.warning("%s delivery to %s failed (%s)", channel, target.host, reason)
                return FAILED, reason
            if attempt == self.attempts:
                break
            pause = self.delay(attempt)
            if deadline is not None and loop.time() + pause >= deadline:
                break
            metrics.NOTIFICATIONS.labels(channel, "retry").inc()
            log.info("%s delivery to %s failed (%s), attempt %d/%d", channel, target.host,
                     reason, attempt, self.attempts)
            await self._sleep(pause)
        self._failed_at[key] = loop.time()
        log.warning("%s delivery to %s failed (%s) after %d attempt(s)", channel, target.host,
                    reason, attempt)
        return FAILED, reason

    async def _attempt(self, target: Target, payload: Any, headers: dict[str, str],
                       deadline: float | None, whole_request: bool = False,
                       ) -> tuple[str, str, float | None]:
        """One POST, bounded by the deadline (waiting for the receiver's slot included);
        with ``whole_request``, the deadline bounds the wait for the slot only and the POST
        has the session's whole timeout (``APPEALS_WEBHOOK_TIMEOUT``).

        A budget that runs out while the request still waits for the receiver's slot is
        ``_QUEUED``, not a failure of the receiver: a healthy receiver with many alerts at once
        (every fz59 deadline falls at 23:59:59) must not be held off as if it were down.
        The third value is the seconds a 429/503's ``Retry-After`` asks for (None: no header).
        """
        loop = asyncio.get_running_loop()
        in_flight: float | None = None
        status: int | None = None
        retry_after: str | None = None
        try:
            async with asyncio.timeout_at(deadline) as budget, self._limit(target.key):
                if self._waiting(target.key):
                    return _HELD, self._wait_reason(target.key), None
                in_flight = loop.time()
                if whole_request:
                    budget.reschedule(None)  # a slow receiver that answers in time is served
                # Redirects are not followed: aiohttp turns a POST answered 301/302/303 into
                # a bodiless GET, whose 200 counted as delivered; a 307 re-sent the alert to
                # whatever host the receiver named. A 3xx is a rejection (a hook URL to fix).
                async with self.session().post(target.url, json=payload, headers=headers,
                                               allow_redirects=False) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    # The status decides from here on: a 200 that came late in the budget
                    # was lost when the budget ran out during the body read, and the alert
                    # was sent again. The body gets what is left of the budget (at most
                    # _BODY_READ_S; unread, the connection is closed, not reused).
                    budget.reschedule(None)
                    left = _BODY_READ_S if deadline is None or whole_request else min(
                        _BODY_READ_S, deadline - loop.time())
                    await _drain_small_body(resp, left)
        except aiohttp.InvalidURL:
            return REJECTED, "invalid URL", None  # a rules mistake: retrying cannot help
        except TimeoutError:
            now = loop.time()
            past = deadline is not None and now >= deadline and not (
                whole_request and in_flight is not None)
            if past and (in_flight is None or now - in_flight < _CUT_SHORT_S):
                return _QUEUED, "the batch's budget ran out before the receiver's turn", None
            return (_AGAIN, "no answer within the batch's budget" if past else "TimeoutError",
                    None)
        except (aiohttp.ClientError, OSError) as exc:
            # Before ValueError: a certificate error is both, and the receiver's to fix.
            return _AGAIN, type(exc).__name__, None
        except ValueError:
            # Not a URL either: aiohttp refuses some hosts as InvalidURL, but one with an empty
            # or over-long label (``hooks..example.ru``) passes it and fails when getaddrinfo
            # IDNA-encodes it (UnicodeError, a ValueError), which ended the whole alert as
            # ``delivery_error``. Once the receiver's status is in, the status decides.
            if status is None:
                return REJECTED, "invalid URL", None
        assert status is not None  # set, or the request raised and returned above
        if 200 <= status < 300:
            return SENT, "", None
        if not retryable(status):
            return REJECTED, f"HTTP {status}", None
        if status in RETRY_AFTER_STATUSES:
            return _AGAIN, f"HTTP {status}", parse_retry_after(retry_after, time.time())
        return _AGAIN, f"HTTP {status}", None

    async def __call__(self, alert: SlaAlert) -> bool:
        """Every target, ``webhook_attempts`` attempts each, no budget: True if all took it."""
        outcome = await self.send(alert, self.targets(alert))
        for target, _ in outcome.failed + outcome.refused:
            metrics.NOTIFICATIONS.labels(target.channel, "failed").inc()
        return not outcome.failed and not outcome.refused


async def _drain_small_body(resp: aiohttp.ClientResponse, seconds: float = _BODY_READ_S) -> None:
    """Read a small answer body so its connection can carry the next alert; never a big one.

    The status is all delivery needs. A body announced larger than :data:`_BODY_READ_MAX` is
    not read (the connection is closed instead); one of unknown length (chunked) is read up to
    that much. A body that stalls after the status line is given up after ``seconds`` (at
    most :data:`_BODY_READ_S`, less when the batch's budget has less left): the status
    already told us whether the alert was taken.
    """
    length = resp.content_length
    if seconds <= 0 or (length is not None and length > _BODY_READ_MAX):
        return
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(seconds):
            await resp.content.read(_BODY_READ_MAX)


def _pool_limit() -> int:
    """Connections all receivers may hold at once: half the process's file descriptors (the
    worker's Kafka, Redis and RocksDB files need the rest), at least aiohttp's 100. With the
    usual limits (20,000 here, 1,048,576 in containers) hundreds of hanging receivers fit
    before a healthy one has to wait; with 1,024, 32 do."""
    import resource

    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 100
    if soft == resource.RLIM_INFINITY:
        return 0  # no limit
    return max(100, int(soft) // 2)


def _host(url: str) -> str:
    """Host (and port) only, for logs and dead letters: URLs of hooks may carry secrets in the
    path, the query or the user part (``https://user:token@host/``)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port is not None else host


def build_delivery(settings: Settings, router: Any = None) -> Delivery:
    """Entry point used by :func:`workers.pipeline._delivery`."""
    return Delivery(settings, router)
