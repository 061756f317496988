"""HTTP intake gateway: for intake systems that can't speak Kafka (``appeals gateway``).

Routes:

* ``POST /v1/appeals``: one appeal (a JSON object) or a batch (a JSON array). Each item is
  canonical (``schema_version: 1``) or a channel's native payload with a ``channel`` field (see
  ``workers.intake.adapters``). Answers

  - ``202 {"appeal_id": ..., "appeal_ids": [...], "results": [{"appeal_id", "status"}]}`` once
    every event is durably in Kafka (aiokafka producer, ``acks="all"``, send futures awaited).
    ``status`` is ``accepted``, or ``duplicate`` for an idempotent retry (nothing re-sent);
  - ``400 {"error": "invalid", "errors": [{"index", "field", "reason", "message"}]}``: per-field
    errors from the JSON Schema contract (field paths like ``author.phone``) and intake's own
    checks (a ``submitted_at`` older than ``APPEALS_INTAKE_MAX_AGE`` on the SLA clock:
    ``invalid_value``, as the intake agent would dead-letter it). A batch is
    validated as a whole: one invalid item rejects the batch and nothing is published, so a
    client can fix and resend it without tracking which items went through;
  - ``401`` without ``Authorization: Bearer <token>``, ``403`` with an unknown token (compared
    with :func:`hmac.compare_digest`) or a channel the client may not use;
  - ``409`` while an earlier request with the same ``Idempotency-Key`` is still in flight;
  - ``422 {"error": "idempotency_key_reused"}`` when the ``Idempotency-Key`` was used before
    with a different request (nothing is published; send it with a new key);
  - ``413`` over the body size limit, the batch size limit or the per-message size limit;
  - ``429`` (with ``Retry-After``) over the client's rate: a token bucket per client and gateway
    process, one token per request;
  - ``503`` when nothing was stored: Kafka refused the appeals before any was handed to the
    producer, or Redis (for an idempotent request) is unavailable; retry;
  - ``504 {"error": "outcome_unknown"}`` when the appeals were handed to the producer but Kafka
    did not confirm within ``APPEALS_GATEWAY_SEND_TIMEOUT``: a send cannot be withdrawn, so they
    may still reach the topic. Retry with the same ``Idempotency-Key`` (or the same payload,
    whose external ids name the same appeals): the retry cannot register an appeal twice.
  - every other error (``404`` unknown path, ``405`` wrong method, ...) is JSON too.
* ``GET /healthz``: ``200`` when the Kafka producer knows a broker and Redis answers, else ``503``.
  ``kafka: true`` only says the producer's cached metadata names a broker, not that Kafka answers
  now (a frozen broker still passes); ``kafka_last_ack_at`` (ISO 8601, ``null`` before the first)
  is when Kafka last confirmed a send of this process, for an operator to judge.
* ``GET /metrics``: Prometheus exposition of the gateway's own metrics
  (``monitoring.metrics.GATEWAY_REGISTRY``: requests by endpoint and status code, latency,
  appeals by outcome, time of the last Kafka acknowledgement). Served on the gateway's port, like
  the API's, so Prometheus scrapes the process that answers; it needs no client token (Prometheus
  has none) and exposes no personal data: labels are route names, status codes and outcome names
  only, never paths, client ids, appeal ids or anything posted. Block it at the reverse proxy if
  even request counts must not be public.
* Open311 GeoReport v2 under ``/open311/v2/`` (see :mod:`workers.intake.open311`).

Exactly-once from the client's point of view: ``Idempotency-Key: <key>`` makes a retry safe. The
gateway stores ``key -> appeal_id`` in Redis with ``SET NX`` (first a short "pending" marker,
then "done" with TTL = the dedupe window once Kafka acknowledged) under
``<APPEALS_APP_ID>:intake:idem:<client id>:<digest>`` (Open311: ``...:open311:idem:...``, a key
space of its own), next to the request's fingerprint (``<marker>:fp``: a SHA-256 of the decoded
body, see :func:`request_fingerprint`; no request content). A retry (same key, same request)
with a key marked done gets the same ``appeal_id`` and produces nothing. Each item has its own
key, :func:`item_key`: the key itself for a single appeal, ``<key>#<index>`` inside a batch,
never the same for two items. A payload without an external id takes
``<client id>:key:sha256:<digest of client id and item key>`` as its external id (see
:func:`scoped_external_id`), so the id is stable too, no source's own id is the same, and two
clients that happen to use the same key never share an appeal id: the client is the
``Client.id`` its bearer token authenticated as, never anything in the payload. When the
producer fails or does not confirm, the pending marker is deleted so the retry can go through
(it publishes the same appeal id again, which the intake agent's exact dedupe absorbs). The key
is scoped per client (its Redis key holds the client id too). The same key with a different
request is ``422`` (as the IETF Idempotency-Key draft says), not the first request's appeal id:
that answer said "duplicate" and the second appeal was never published.

Personal data never reaches the logs: the gateway logs client id, appeal id and status, and its
access log names the route's pattern, not the path as sent (:func:`logged_path`), and omits query
strings and remote addresses.

Configuration (environment, or a ``[gateway]`` table in the ``APPEALS_CONFIG`` TOML file with
the same names in lower case without the prefix; the environment wins). Checked at start-up as
:class:`Settings` checks its own (strict booleans, finite numbers, a key of ``[gateway]`` that is
not one of these is an error): a bad value is one line and exit 2, see
:meth:`GatewayConfig.load`:

* ``APPEALS_GATEWAY_HOST`` (``127.0.0.1``), ``APPEALS_GATEWAY_PORT`` (``8081``: the API's is
  ``8080``, so both run on one host with the defaults);
* ``APPEALS_GATEWAY_TOKENS``: ``client1:token1,client2:token2``;
* ``APPEALS_GATEWAY_TOKENS_FILE``: TOML with ``[clients.<id>]`` tables: ``token``, and optional
  ``rate``, ``burst``, ``channels`` (allowed channels; every channel when absent),
  ``region`` (Open311 default region) and ``id_owner`` (the channels whose id space the client
  owns, one owner per channel at most: its explicit ids name appeals as sent; every other
  client's are scoped by the client, ``<client id>:ext:<id>``, see :func:`client_external_id`).
  A client id must not contain ``:`` (it separates the client id from a web form's submission
  id when the form names no ``site``, see :meth:`Gateway.prepare`); such a file is refused at
  start-up. A token's leading and trailing whitespace is dropped, as in
  ``APPEALS_GATEWAY_TOKENS`` (a request's token is stripped too); a blank one is refused;
* ``APPEALS_GATEWAY_RATE`` (``50``, requests/s per client), ``APPEALS_GATEWAY_BURST`` (``100``);
* ``APPEALS_GATEWAY_MAX_BODY_BYTES`` (``2097152``), ``APPEALS_GATEWAY_MAX_BATCH`` (``500``);
* ``APPEALS_GATEWAY_SEND_TIMEOUT`` (``30`` s for a request's appeals to be handed to the
  producer and acknowledged by Kafka: one deadline for both);
* ``APPEALS_GATEWAY_OPEN311_RETRY_WINDOW`` (``86400`` s): how long an exact repeat of an Open311
  request without ``Idempotency-Key`` counts as its retry (see :mod:`workers.intake.open311`);
* ``APPEALS_GATEWAY_CREATE_TOPICS`` (``true``: create missing topics at start-up);
* ``APPEALS_OPEN311_TTL_DAYS`` (``90``; ``open311_ttl_days`` in ``[gateway]``): how long an
  Open311 request's service code, time and place are kept for its GET.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import hashlib
import logging
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import workers.intake.adapters  # registers the channel adapters
import workers.intake.normalize  # noqa: F401  (registers the normaliser)
from monitoring import metrics
from schemas.records import CHANNELS, IntakeAppeal
from schemas.validation import (
    InvalidEvent,
    check_record_version,
    parse_datetime,
    reason_for,
    runtime_schema,
)
from streams.clock import SlaClock
from streams.http_auth import bearer_token, match_token
from streams.http_logging import install_http_log_filters
from streams.payload_logging import quiet_payload_loggers
from streams.settings import ConfigError, Settings, _coerce, _coerce_file_value
from workers.geo.regions import UnknownRegion, normalize_code
from workers.intake.adapters import NATIVE_ID_FIELDS
from workers.intake.adapters._common import MAX_ID_LENGTH
from workers.intake.core import (
    adapt_native,
    appeal_id_for,
    check_age,
    check_nesting,
    from_open311,
    intake_from_dict,
    loads_json,
)
from workers.sla.read_model import key_prefix

__all__ = [
    "ApiError",
    "Client",
    "Gateway",
    "GatewayConfig",
    "client_external_id",
    "create_app",
    "digest_external_id",
    "item_key",
    "run_gateway",
    "scoped_external_id",
]

log = logging.getLogger("appeals.gateway")


GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
# The client id of a request, for the access log (RequestKey exists from aiohttp 3.12).
CLIENT_ID: Any = web.RequestKey("client_id", str) if hasattr(web, "RequestKey") else "client_id"


# --------------------------------------------------------------------------- configuration

@dataclass(frozen=True, slots=True)
class Client:
    """An intake system allowed to post appeals; ``id`` is what the logs name."""

    id: str
    token: str = field(repr=False)
    rate: float | None = None
    burst: int | None = None
    channels: frozenset[str] | None = None
    region: str | None = None
    #: The channels whose id space this client owns: its explicit ids there name appeals as
    #: sent; every other client's are scoped by the client (:func:`client_external_id`).
    id_owner: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    #: Not the API's 8080 (APPEALS_API_PORT): on one host with the defaults the second of the
    #: two could not listen. The compose stack publishes the gateway on 8081 too.
    port: int = 8081
    clients: tuple[Client, ...] = ()
    rate: float = 50.0
    burst: int = 100
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch: int = 500
    send_timeout: float = 30.0
    create_topics: bool = True
    pending_ttl_s: int = 120
    """How long an in-flight idempotency marker lives if the gateway dies mid-request."""
    open311_retry_window_s: int = 86_400
    """How long an exact repeat of a keyless Open311 request is taken as its retry."""
    open311_ttl_s: int = 90 * 86_400
    """How long an Open311 request's code, time and place are kept for GET
    (``APPEALS_OPEN311_TTL_DAYS``)."""

    @classmethod
    def load(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        """The gateway's configuration, every value checked: a bad one is a ConfigError naming
        the variable (or the file and key) at start-up, not a failure on some later request.

        Values are read as :class:`Settings` reads its own: strict booleans (``ture`` was
        silently false), numbers that are finite (``nan`` turned rate limiting off and made
        the send timeout a traceback), TOML values of the right type; a key of the
        ``[gateway]`` table that is not a gateway setting is an error (a typo was ignored).
        """
        env = os.environ if environ is None else environ
        settings = settings or Settings.load(env)
        table = settings.extra.get("gateway", {}) if settings.extra else {}
        if not isinstance(table, Mapping):
            raise ConfigError("[gateway] in APPEALS_CONFIG must be a table")
        in_file = f"APPEALS_CONFIG={env.get('APPEALS_CONFIG', '')}: [gateway]"
        for key in table:
            if key not in _TABLE_KEYS:
                close = difflib.get_close_matches(str(key), _TABLE_KEYS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(
                    f"{in_file} {key}: not a gateway setting{hint}; keys are the names of "
                    "APPEALS_GATEWAY_* in lower case without APPEALS_GATEWAY_, and "
                    "[gateway.clients.<id>] tables")
        source: dict[str, str] = {}  # name -> where its value came from, for range errors

        def pick(name: str, default: Any, var: str = "") -> Any:
            var = var or f"APPEALS_GATEWAY_{name.upper()}"
            raw = env.get(var)
            if raw is not None:
                source[name] = var
                return _coerce(var.removeprefix("APPEALS_").lower(), raw, default)
            if name in table:
                source[name] = f"{in_file} {name}"
                return _coerce_file_value(source[name], table[name], default, "")
            source[name] = var
            return default

        def check(ok: bool, name: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"{source[name]} {message}")

        clients: dict[str, Client] = {}
        tokens_file = pick("tokens_file", "")
        if tokens_file:
            for c in _clients_from_toml(tokens_file):
                clients[c.id] = c
        for c in _clients_from_spec(pick("tokens", "")):
            clients[c.id] = c
        for c in _clients_from_table(table.get("clients", {}), in_file):
            clients.setdefault(c.id, c)
        _check_id_owners(clients.values())
        d = cls()
        cfg = cls(
            host=pick("host", d.host),
            port=pick("port", d.port),
            clients=tuple(clients.values()),
            rate=pick("rate", d.rate),
            burst=pick("burst", d.burst),
            max_body_bytes=pick("max_body_bytes", d.max_body_bytes),
            max_batch=pick("max_batch", d.max_batch),
            send_timeout=pick("send_timeout", d.send_timeout),
            create_topics=pick("create_topics", d.create_topics),
            open311_retry_window_s=pick("open311_retry_window", d.open311_retry_window_s),
        )
        # Read on every Open311 POST, after the appeal was published, until this was checked
        # here: "90d" or "nan" answered 500 for a stored appeal, 0 expired the record at once
        # (GET 404 right after 201).
        ttl_days = pick("open311_ttl_days", d.open311_ttl_s / 86_400,
                        var="APPEALS_OPEN311_TTL_DAYS")
        ttl_s = int(ttl_days * 86_400) if math.isfinite(ttl_days) else 0
        check(ttl_s >= 1 and ttl_days <= 3660, "open311_ttl_days",
              "must be a number of days above 0 (a second at least) and at most 3660")
        cfg = dataclasses.replace(cfg, open311_ttl_s=ttl_s)
        check(0 <= cfg.port <= 65535, "port", "must be a port number 0..65535")
        # ``nan`` fails no ``<=`` test: finiteness first, then the range
        check(math.isfinite(cfg.rate) and cfg.rate > 0, "rate",
              "must be a finite number of requests per second above 0")
        check(cfg.burst >= 1, "burst", "must be at least 1")
        check(cfg.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024")
        check(cfg.max_batch >= 1, "max_batch", "must be at least 1")
        # 0 or less passed, and the producer's start then failed as "cannot reach Kafka"
        check(math.isfinite(cfg.send_timeout) and cfg.send_timeout > 0, "send_timeout",
              "must be a finite number of seconds above 0")
        check(cfg.open311_retry_window_s >= 1, "open311_retry_window",
              "must be >= 1 (seconds)")
        return cfg


#: Keys of the ``[gateway]`` table of APPEALS_CONFIG (``clients``: ``[gateway.clients.<id>]``).
_TABLE_KEYS = ("host", "port", "tokens", "tokens_file", "rate", "burst", "max_body_bytes",
               "max_batch", "send_timeout", "create_topics", "open311_retry_window",
               "open311_ttl_days", "clients")
#: Keys of a ``[clients.<id>]`` table.
_CLIENT_KEYS = ("token", "rate", "burst", "channels", "region", "id_owner")


def _clients_from_spec(spec: str) -> list[Client]:
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        client_id, sep, token = part.partition(":")
        if not sep or not client_id.strip() or not token.strip():
            raise ConfigError("APPEALS_GATEWAY_TOKENS must look like client1:token1,client2:token2")
        out.append(Client(id=client_id.strip(), token=token.strip()))
    return out


def _clients_from_toml(path: str) -> list[Client]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"APPEALS_GATEWAY_TOKENS_FILE={path}: cannot read: {exc}") from exc
    return _clients_from_table(data.get("clients", {}), f"APPEALS_GATEWAY_TOKENS_FILE={path}")


def _clients_from_table(table: Any, where: str) -> list[Client]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: [clients] must be a table")
    out = []
    for client_id, spec in table.items():
        if ":" in str(client_id):
            # ``<client id>:<submission id>`` is the external id of a web form without a site
            # (Gateway.prepare): with a ':' in the id, client "mfc" with submission "22:1001"
            # and client "mfc:22" with submission "1001" would name one appeal, and intake
            # would drop the second as a duplicate.
            raise ConfigError(f"{where}: clients.{client_id}: a client id must not contain ':'")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("token"), str):
            raise ConfigError(f"{where}: clients.{client_id} needs a token")
        # Stripped, as APPEALS_GATEWAY_TOKENS' are and as the Authorization header's token is
        # (streams.http_auth.bearer_token): a token written " t1" or "t1\n" (a multi-line
        # TOML string) could never match, and start-up said nothing.
        token = spec["token"].strip()
        if not token:
            raise ConfigError(f"{where}: clients.{client_id}.token is blank")
        unknown = sorted(set(spec) - set(_CLIENT_KEYS))
        if unknown:  # a mistyped "channels" let the client post to every channel
            raise ConfigError(f"{where}: clients.{client_id}.{unknown[0]}: not a client "
                              f"setting; keys are {', '.join(_CLIENT_KEYS)}")
        channels = spec.get("channels")
        if channels is not None and (
            not isinstance(channels, list) or not set(channels) <= set(CHANNELS)
        ):
            raise ConfigError(f"{where}: clients.{client_id}.channels: unknown channel")
        rate = spec.get("rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not math.isfinite(rate) or rate <= 0):
            raise ConfigError(f"{where}: clients.{client_id}.rate = {rate!r}: must be a "
                              "finite number of requests per second above 0")
        burst = spec.get("burst")
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int)
                                  or burst < 1):
            raise ConfigError(f"{where}: clients.{client_id}.burst = {burst!r}: must be a "
                              "whole number, at least 1")
        region = spec.get("region")
        if region is not None:
            # an unknown one was skipped for APPEALS_DEFAULT_REGION on every Open311 request
            try:
                region = normalize_code(region)
            except UnknownRegion:
                raise ConfigError(f"{where}: clients.{client_id}.region = {region!r}: not a "
                                  "region code (such as \"22\", see workers/geo/regions.csv)"
                                  ) from None
        owned = spec.get("id_owner", [])
        if not isinstance(owned, list) or not set(owned) <= set(CHANNELS):
            raise ConfigError(f"{where}: clients.{client_id}.id_owner: must be a list of "
                              f"channels ({', '.join(CHANNELS)})")
        if channels is not None and not set(owned) <= set(channels):
            raise ConfigError(f"{where}: clients.{client_id}.id_owner: names a channel the "
                              "client's channels do not allow")
        out.append(Client(
            id=str(client_id),
            token=token,
            rate=float(rate) if rate is not None else None,
            burst=burst,
            channels=frozenset(channels) if channels is not None else None,
            region=region,
            id_owner=frozenset(owned),
        ))
    return out


def _check_id_owners(clients: Iterable[Client]) -> None:
    """A channel's id space has one owner at most: two owners could again take each other's
    ids, which is what scoping the other clients' ids prevents."""
    owner: dict[str, str] = {}
    for c in clients:
        for channel in sorted(c.id_owner):
            if channel in owner:
                raise ConfigError(f"gateway clients {owner[channel]} and {c.id} both name "
                                  f"{channel} in id_owner; a channel has one owner at most")
            owner[channel] = c.id


# --------------------------------------------------------------------------- errors, limits

class ApiError(Exception):
    """An HTTP error with a machine-readable code; rendered as JSON by the route."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.description = description
        self.errors = errors or []
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "description": self.description}
        if self.errors:
            out["errors"] = self.errors
        return out


class TokenBucket:
    """Classic token bucket on the monotonic clock: ``rate`` tokens/s, at most ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self, n: float = 1.0) -> float:
        """0.0 when granted, else the seconds until ``n`` tokens will be available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


# --------------------------------------------------------------------------- field errors

@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    # The limits intake checks itself (configurable, its own reason codes) are left out: the
    # published defaults would refuse what a deployment's settings allow.
    return Draft202012Validator(runtime_schema("intake-appeal"))


def _message(err: Any) -> str:
    """A message that names the rule, never the submitted value (it may be personal data)."""
    v, vv = err.validator, err.validator_value
    if v == "type":
        kinds = vv if isinstance(vv, list) else [vv]
        return "must be " + " or ".join(str(k) for k in kinds)
    if v in ("enum", "const"):
        allowed = vv if isinstance(vv, list) else [vv]
        return "must be one of " + ", ".join(orjson.dumps(a).decode() for a in allowed)
    if v == "maxLength":
        return f"longer than {vv} characters"
    if v == "minLength":
        return "must not be empty" if vv == 1 else f"shorter than {vv} characters"
    if v == "maxItems":
        return f"more than {vv} items"
    if v == "pattern":
        return "has the wrong format"
    if v == "minimum":
        return f"must be at least {vv}"
    if v == "additionalProperties":
        return "has fields that are not allowed"
    return f"breaks the {v} rule"


def field_errors(data: Any, index: int) -> list[dict[str, Any]]:
    """Per-field errors of a canonical dict against the intake JSON Schema (``[]`` if valid),
    with the reason codes the intake agent's dead letter would give (``reason_for``).

    Another ``schema_version`` is the only error, whatever else the payload breaks, as on
    Kafka: a v2 that renamed ``text`` was answered ``schema_version invalid_value`` and
    ``text missing_field``, naming a field its producer had not meant to send."""
    try:
        check_record_version(data, 1)
    except InvalidEvent as exc:
        return [{"index": index, "field": "schema_version", "reason": exc.reason,
                 "message": _safe_detail(exc)}]
    out = []
    for err in _validator().iter_errors(data):
        path = [str(p) for p in err.absolute_path]
        if err.validator == "required":
            missing = [p for p in err.validator_value if p not in (err.instance or {})]
            for name in missing:
                out.append({"index": index, "field": ".".join([*path, name]),
                            "reason": "missing_field", "message": "is required"})
            continue
        name = ".".join(path) or None
        reason = reason_for(err.validator, path, err.schema)
        out.append({"index": index, "field": name, "reason": reason, "message": _message(err)})
    out.sort(key=lambda e: (e["field"] or "", e["reason"]))
    return out


def _field_from_detail(detail: str) -> str | None:
    """fastjsonschema names the field as ``data.author.phone``; intake's own checks start with
    the top-level field they refuse (``external_id is empty after normalisation``: a blank
    id was answered without a field, an empty one with ``external_id``); other errors name
    none."""
    if detail.startswith("data."):
        return detail[5:].split(" ", 1)[0] or None
    first = detail.split(" ", 1)[0]
    return first if first in runtime_schema("intake-appeal")["properties"] else None


_REASON_FIELDS = {
    "too_many_attachments": "attachments",
    "attachment_too_large": "attachments",
    "attachment_not_url": "attachments",
    "empty_text": "text",
    "oversize_text": "text",
    "unknown_region": "region",
    "unknown_channel": "channel",
    "extra_conflict": "extra",
}


# A batch item's key ends in "#<index>" (ASCII digits, no leading zero).
_ITEM_SUFFIX = re.compile(r"#([0-9]+)\Z")


def item_key(key: str, index: int | None) -> str:
    """The idempotency key of one item: ``key`` for a single appeal, ``key#<index>`` in a batch.

    Keys may contain ``#``, so a single appeal's key ``K#0`` once named the same appeal as item
    0 of a batch sent with ``K`` (that item came back ``duplicate`` of the other appeal and was
    never published). Batch items keep ``K#<index>`` with the index written without leading
    zeros; a single key that *ends* in ``#<digits>`` gets a ``0`` put before those digits
    (``K#0`` -> ``K#00``, ``K#12`` -> ``K#012``), a form no batch item has and no other single
    key maps to, so the mapping is one-to-one and every other key keeps its id.

    Upgrade: only a single appeal sent without an external id under such a key (or under a key
    that normalisation would change, see :func:`scoped_external_id`) gets a new external id and
    so a new appeal id. A retry after the upgrade of such a request first sent before it is
    registered as a second appeal (its Redis marker is under the old prefix and the old derived
    key, see ``_idem_redis_key``, and is not read): let clients finish their retries of such
    keys before upgrading. The old markers expire after the dedupe window.
    """
    if index is not None:
        return f"{key}#{index}"
    match = _ITEM_SUFFIX.search(key)
    if match is None:
        return key
    return f"{key[:match.start(1)]}0{match.group(1)}"


def _own_id(data: Mapping[str, Any], channel: str, native: bool) -> bool:
    """Whether the payload carries the source's own id for the appeal. Only an item without
    one takes its Idempotency-Key as its id: a key took precedence over an incident's
    ``post_url``, and the same post sent with two keys became two appeals (review of
    session 15)."""
    fields = ("external_id", *(NATIVE_ID_FIELDS.get(channel, ()) if native else ()))
    return any(data.get(name) not in (None, "") for name in fields)


def scoped_external_id(client_id: str, item_key: str) -> str:
    """The external id of an appeal sent without one: its Idempotency-Key, scoped to the client.

    Idempotency keys are chosen by each client and only unique per client, while the appeal id
    derives from (channel, external id) alone, so the key is scoped by the client: the
    configured ``Client.id`` its bearer token authenticated as, never anything in the payload.
    A retry by the same client with the same key gets the same id.

    ``<client id>:key:sha256:<digest of client id and key>``, a form of its own (as Open311's
    :func:`~workers.intake.open311.keyed_external_id`). It was ``<client id>:<key>``, which is
    also what the adapters make of a source's own id scoped by its source: a web form without
    a ``site`` (the gateway fills in the client id: ``<client id>:<submission id>``), a 122 call
    (``<region>:<call id>``, a client named by its region code). Client ``client-a`` posting
    one appeal with key ``1001`` and another form with ``submission_id`` ``1001`` got one
    appeal id for two citizens, and intake dropped the second as a duplicate. The digest stands
    for the key, not a prefix before it: keys may contain ``:`` and be 180 characters long, and
    any text after ``<client id>:`` is some source's possible id; no native id is a digest of
    a key the client chose. It covers the raw key, so two Unicode forms of one key stay two ids
    (as they are two idempotency markers) and the id is never changed by normalisation.

    Upgrade: see README, "Upgrading". A retry within the dedupe window of a request first sent
    before the change finds its Redis marker (keyed by the key, not by the id) and is answered
    ``duplicate`` with the old appeal id, publishing nothing.
    """
    return digest_external_id(client_id, "key", "v1-key", item_key)


def client_external_id(client_id: str, external_id: str) -> str:
    """A non-owner client's explicit external id, scoped by the client: ``<client id>:ext:<id>``.

    The appeal id derives from (channel, external id) alone. Trusted as sent, a civic app's
    canonical ``pos`` appeal with ``external_id`` ``1834521999`` took the appeal id of the POS
    platform's message ``1834521999``: both were answered ``202`` with one appeal id, and intake
    registered the first and dropped the citizen's message as a duplicate, with no dead letter.
    Two sites posting canonical web records with their own counters collided the same way.
    Only the channel's owner (``id_owner``) names appeals by its raw ids; every other client's
    ids live under its own ``Client.id`` (the token's, never the payload's). A client id holds
    no ``:``, so the prefix up to ``:ext:`` names the client whatever the id contains, and
    ``:ext:`` sets it apart from the key-made ``:key:sha256:`` and Open311's
    ``:open311:sha256:``. Past the schema's 200 characters the id is
    ``<client id>:ext:sha256:<digest of client and id>``: stable, so a resend is the same
    appeal.
    """
    scoped = f"{client_id}:ext:{external_id}"
    if len(scoped) <= MAX_ID_LENGTH:
        return scoped
    return digest_external_id(client_id, "ext", "v1-ext", external_id)


def digest_external_id(client_id: str, tag: str, domain: str, value: str) -> str:
    """``<client id>:<tag>:sha256:<digest>``, the digest over ``domain``, the client id and
    ``value`` (NUL-separated, UTF-8 with lone surrogates kept): the one form of the gateway's
    key-made (``key``), long explicit (``ext``) and Open311 key-made (``open311``) ids.

    ``domain`` is its own argument, not derived from ``tag``: ids made with ``v1-key`` and
    ``v1-ext`` are in Kafka already and must stay byte for byte what they were
    (tests/intake/test_intake_digest_ids.py pins them). The client id is cut to 100
    characters in the prefix only; the digest covers all of it.
    """
    digest = hashlib.sha256(f"{domain}\x00{client_id}\x00{value}".encode(
        "utf-8", "surrogateescape")).hexdigest()
    return f"{client_id[:100]}:{tag}:sha256:{digest}"


# --------------------------------------------------------------------------- idempotency

# The Redis key spaces of the Idempotency-Key markers, one per endpoint: a client's keys on
# /v1/appeals and on Open311 are two counters (two integrations, often), and a key shared by
# both once answered the second request with the first one's appeal id and published nothing.
IDEM_V1 = "intake:idem"
IDEM_OPEN311 = "open311:idem"
# ``<marker key>`` + this: the fingerprint of the request that claimed the marker. A key of
# its own, not a part of the marker's value: a gateway of an older release reads the value
# as ``<state>:<appeal id>``, and answers right while both releases run.
FINGERPRINT_SUFFIX = ":fp"


def request_fingerprint(endpoint: str, payload: Any) -> str:
    """SHA-256 over the endpoint and the request as decoded (keys sorted, so a client that
    re-encodes the same request gets the same digest): what a key's marker is compared with.
    A digest, so Redis holds no more of the request than before."""
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # nested past orjson's limit: decoded, so never expected
        body = repr(payload).encode("utf-8", "surrogateescape")
    return hashlib.sha256(endpoint.encode() + b"\x00" + body).hexdigest()


def _text(value: Any) -> str:
    """A Redis reply as text ("" for none)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- the gateway

class Gateway:
    """State of one gateway process: config, Kafka producer, Redis client, rate buckets."""

    def __init__(
        self,
        settings: Settings,
        config: GatewayConfig,
        *,
        producer: Any = None,
        redis: Any = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.producer = producer
        self.redis = redis
        #: The SLA clock, the intake agent's: an appeal's age is judged as the agent judges it.
        self.now = now or SlaClock(settings.time_scale, settings.clock_epoch).now_dt
        self._own_producer = producer is None
        self._own_redis = redis is None
        self._buckets: dict[str, TokenBucket] = {}
        self._limited: set[str] = set()  # clients whose last request got 429 (for the log)
        self.last_ack: float | None = None  # time.time() of the last send Kafka confirmed
        self._tokens = [(c.token.encode(), c) for c in config.clients]

    # -- lifecycle

    async def start(self) -> None:
        quiet_payload_loggers()
        if self.config.create_topics:
            from streams.topics import ensure_topics

            await asyncio.get_running_loop().run_in_executor(None, ensure_topics, self.settings)
        if self.producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id="appeals-gateway",
                acks="all",
                enable_idempotence=False,  # Tansu refuses it; appeal ids make repeats harmless
                linger_ms=2,
                max_request_size=max(1_048_576, self.settings.max_message_bytes + 4096),
                request_timeout_ms=int(self.config.send_timeout * 1000),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # no "Unclosed AIOKafkaProducer" after the error
                raise
            self.producer = producer
        if self.redis is None:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(self.settings.redis)

    async def stop(self) -> None:
        if self._own_producer and self.producer is not None:
            await self.producer.stop()
        if self._own_redis and self.redis is not None:
            await self.redis.aclose()

    # -- request checks

    def authenticate(self, header: str | None) -> Client:
        if not header:
            raise ApiError(401, "unauthorized", "Authorization: Bearer <token> is required",
                           headers={"WWW-Authenticate": 'Bearer realm="appeals"'})
        token = bearer_token(header)
        if token is None:
            raise ApiError(401, "unauthorized", "Authorization must be a Bearer token",
                           headers={"WWW-Authenticate": 'Bearer realm="appeals"'})
        return self.client_for_token(token)

    def client_for_token(self, token: str) -> Client:
        """Constant-time comparison against every configured token (:func:`match_token`)."""
        found = match_token(token, self._tokens)
        if found is None:
            raise ApiError(403, "forbidden", "unknown client token")
        return found

    def check_rate(self, client: Client) -> None:
        bucket = self._buckets.get(client.id)
        if bucket is None:
            bucket = self._buckets[client.id] = TokenBucket(
                client.rate or self.config.rate, client.burst or self.config.burst
            )
        wait = bucket.take()
        if wait <= 0:
            self._limited.discard(client.id)
        else:
            if client.id not in self._limited:  # once per spell, not once per refused request
                self._limited.add(client.id)
                log.warning("rate limited client=%s (429 until its rate drops)", client.id)
            raise ApiError(429, "rate_limited", "too many requests for this client",
                           headers={"Retry-After": str(max(1, int(wait + 0.999)))})

    # -- items

    def prepare(
        self, item: Any, index: int, client: Client, item_key: str | None,
        *, open311: bool = False,
    ) -> IntakeAppeal:
        """Validate and normalise one posted item; raises ApiError(400) with field errors.

        ``open311``: the item is the Open311 route's own. Elsewhere a web item whose
        ``extra.source`` claims Open311 is refused: the marker decides the appeal's regime
        (``APPEALS_OPEN311_REGIME``), and a site's form must not pass for a civic app's request.
        """

        def fail(reason: str, field_name: str | None, message: str) -> ApiError:
            return ApiError(400, "invalid", "the appeal is invalid", errors=[
                {"index": index, "field": field_name, "reason": reason, "message": message}])

        if not isinstance(item, dict):
            raise fail("not_object", None, "each appeal must be a JSON object")
        channel = item.get("channel")
        if channel is None:
            raise fail("missing_field", "channel", "is required")
        if channel not in CHANNELS:
            raise fail("unknown_channel", "channel", "must be one of " + ", ".join(CHANNELS))
        if client.channels is not None and channel not in client.channels:
            raise ApiError(403, "channel_not_allowed",
                           f"this client may not submit to the {channel} channel")
        data = dict(item)
        native = "schema_version" not in data
        # The id is the gateway's own (the client's key, Open311's) or the payload's; the
        # payload's names the appeal as sent only for the channel's id owner.
        made_here = open311
        if item_key is not None and not _own_id(data, channel, native):
            data["external_id"] = scoped_external_id(client.id, item_key)
            made_here = True
        owner = channel in client.id_owner
        site = data.get("site")
        if owner and native and channel == "web" and (
                site is None or (isinstance(site, str) and not site.strip())):
            # A site's submission ids are its own counter: scoped by the site (the web
            # adapter; a number is a site id too), or by the client that posted them when
            # the handler names no site. Another client's are scoped by it below.
            data["site"] = client.id
        try:
            check_nesting(data)  # before anything walks the payload
            if "schema_version" not in data:
                data = adapt_native(data, channel)
            errors = field_errors(data, index)
            if errors:
                raise ApiError(400, "invalid", "the appeal breaks the intake schema",
                               errors=errors)
            record = intake_from_dict(data, max_text_length=self.settings.max_text_length)
        except InvalidEvent as exc:
            field_name = _REASON_FIELDS.get(exc.reason) or _field_from_detail(exc.detail)
            raise fail(exc.reason, field_name, _safe_detail(exc)) from None
        except ApiError:
            raise
        except Exception as exc:  # an adapter met a shape it did not expect: input's fault
            log.warning("intake item rejected client=%s index=%d error=%s",
                        client.id, index, type(exc).__name__)
            raise fail("invalid_payload", None, "the payload could not be read") from None
        if not open311 and from_open311(record.channel, record.extra):
            raise fail("invalid_value", "extra.source",
                       "'open311' is reserved for requests sent to /open311/v2/requests.json")
        try:
            # The agent refuses it (registration_time), after this answered 202 "accepted".
            check_age(parse_datetime(record.submitted_at), self.now(),
                      self.settings.intake_max_age)
        except InvalidEvent as exc:
            raise fail(exc.reason, "submitted_at", _safe_detail(exc)) from None
        if not made_here and not owner:
            record.external_id = client_external_id(client.id, record.external_id)
        if item_key is not None:
            record.idempotency_key = item_key
        try:
            size = len(record.to_json())
        except (TypeError, ValueError) as exc:  # decoding rules out known causes; be safe
            log.warning("intake item not serialisable client=%s index=%d error=%s",
                        client.id, index, type(exc).__name__)
            raise fail("unserialisable", None, "the appeal cannot be stored as JSON") from None
        if size > self.settings.max_message_bytes:
            raise ApiError(413, "message_too_large",
                           f"appeal {index} is over {self.settings.max_message_bytes} bytes")
        return record

    # -- publishing

    def _idem_redis_key(self, client: Client, item_key: str,
                        key_space: str = IDEM_V1) -> str:
        # Under ``<APPEALS_APP_ID>:`` like every Redis key of the project (read_model.key_prefix).
        # Until session 10 the gateway used APPEALS_TOPIC_PREFIX (empty by default), so two
        # regions on one Redis shared ``intake:idem:`` and ``open311:`` keys. Keys under the old
        # prefix are no longer read and expire on their own; a retry across the upgrade is
        # published again under the same appeal id (it derives from the external id) and the
        # intake agent's exact dedupe registers it once. GET of an Open311 request sent before
        # the upgrade answers from the SLA read model, without the submitted coordinates.
        # ``key_space`` is the endpoint's own (IDEM_V1, IDEM_OPEN311): a client's key on one
        # endpoint says nothing about the other.
        digest = hashlib.sha256(item_key.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        return f"{key_prefix(self.settings.app_id)}{key_space}:{client.id}:{digest}"

    async def publish(
        self,
        client: Client,
        records: Sequence[IntakeAppeal],
        item_keys: Sequence[str | None],
        *,
        fingerprint: str | None = None,
        key_space: str = IDEM_V1,
    ) -> list[dict[str, str]]:
        """Publish records durably; returns ``[{"appeal_id", "status"}]`` in order.

        ``fingerprint`` (:func:`request_fingerprint`) names the request the keyed items came
        in, ``key_space`` the endpoint's Redis key space for their markers.

        Raises ApiError 409 (a same-key request in flight), 422 (an item's key was used before
        with another request), 503 (nothing was stored: Kafka refused before any record was
        handed to the producer, or Redis failed) or 504 (records were handed to the producer
        but not confirmed in time: the outcome is unknown). Counts each record in
        ``appeals_gateway_appeals_total`` by the answer it got.
        """
        try:
            results = await self._publish(client, records, item_keys, fingerprint, key_space)
        except ApiError as exc:
            outcome = _PUBLISH_OUTCOMES.get(exc.status)
            if outcome is not None:
                metrics.child(metrics.GATEWAY_APPEALS, outcome).inc(len(records))
            raise
        for r in results:
            metrics.child(metrics.GATEWAY_APPEALS, r["status"]).inc()
        return results

    async def _publish(
        self,
        client: Client,
        records: Sequence[IntakeAppeal],
        item_keys: Sequence[str | None],
        fingerprint: str | None,
        key_space: str,
    ) -> list[dict[str, str]]:
        ids = [appeal_id_for(r.channel, r.external_id) for r in records]
        results = [{"appeal_id": a, "status": "accepted"} for a in ids]
        to_send = list(range(len(records)))
        claimed: list[str] = []
        keyed = [(i, self._idem_redis_key(client, k, key_space))
                 for i, k in enumerate(item_keys) if k is not None]
        if keyed:
            to_send, claimed = await self._claim(client, keyed, ids, results, len(records),
                                                 fingerprint)
        futures: list[asyncio.Future[Any]] = []
        error: str | None = None
        # One deadline for handing the records over and for their acknowledgements. send()
        # itself may wait, for the topic's metadata or for room in a full batch, up to the
        # producer's request timeout, and it did so before the wait for acknowledgements
        # began: with a stalled broker a request was answered after several times
        # APPEALS_GATEWAY_SEND_TIMEOUT.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.send_timeout
        try:
            async with asyncio.timeout_at(deadline):
                for i in to_send:
                    record = records[i]
                    value = record.to_json()
                    topic = f"{self.settings.topic_prefix}appeals.intake.{record.channel}"
                    futures.append(await self.producer.send(topic, value=value,
                                                            key=ids[i].encode()))
        except TimeoutError:
            # The send() cut short handed nothing over: aiokafka appends a record and returns
            # its future without waiting in between. Those in ``futures`` were handed over.
            error = "timeout"
        except Exception as exc:
            error = type(exc).__name__
        if error is not None and not futures:
            # send() raised before any record was handed to the producer: nothing can arrive.
            log.error("kafka refused client=%s appeals=%d error=%s",
                      client.id, len(to_send), error)
            await self._release(claimed)
            raise ApiError(503, "kafka_unavailable", "the appeals were not stored; retry",
                           headers={"Retry-After": "5"})
        if futures:
            # asyncio.wait, not wait_for: a send cannot be withdrawn, cancelling its future
            # would only hide what becomes of it.
            done, pending = await asyncio.wait(futures,
                                               timeout=max(0.0, deadline - loop.time()))
            for fut in pending:
                fut.add_done_callback(_consume_outcome)
            failed = [f for f in done if f.exception() is not None]
            if failed and error is None:
                error = type(failed[0].exception()).__name__
            if pending and error is None:
                error = "timeout"
        if error is not None:
            # Some records were handed to the producer and are unconfirmed (a timeout, or an
            # error after the request may have reached the broker): they may be in Kafka now or
            # later. 504, not 503: 503 says the request was not processed, while here the
            # gateway's upstream did not answer in time and the outcome is unknown. A retry is
            # safe and must be invited: the same Idempotency-Key (or the payload's own external
            # ids) names the same appeal ids, and the intake agent registers an id once.
            log.error("kafka did not confirm client=%s appeals=%d error=%s outcome=unknown",
                      client.id, len(to_send), error)
            await self._release(claimed)
            raise ApiError(
                504, "outcome_unknown",
                "Kafka did not confirm in time: the appeals may or may not be stored. Retry "
                "with the same Idempotency-Key (or the same payload with its external ids); "
                "a retry cannot register an appeal twice",
                headers={"Retry-After": "5"})
        if futures:
            self.last_ack = time.time()
            metrics.GATEWAY_KAFKA_LAST_ACK.set(self.last_ack)
        if claimed:
            ttl = self.settings.dedupe_window_days * 86_400
            by_key = {k: i for i, k in keyed}
            try:
                # One transaction: a reader that sees "d" sees the fingerprint too (_claim).
                async with self.redis.pipeline(transaction=True) as pipe:
                    for k in claimed:
                        if fingerprint is not None:
                            pipe.set(k + FINGERPRINT_SUFFIX, fingerprint, ex=ttl)
                        pipe.set(k, f"d:{ids[by_key[k]]}", ex=ttl)
                    await pipe.execute()
            except Exception as exc:  # stored in Kafka already: the pending marker expires
                log.warning("idempotency marker not finalised client=%s error=%s",
                            client.id, type(exc).__name__)
        for r in results:
            log.info("intake client=%s appeal_id=%s status=%s",
                     client.id, r["appeal_id"], r["status"])
        return results

    async def _claim(
        self,
        client: Client,
        keyed: list[tuple[int, str]],
        ids: list[str],
        results: list[dict[str, str]],
        count: int,
        fingerprint: str | None,
    ) -> tuple[list[int], list[str]]:
        """SET NX the pending markers; returns (indexes to send, redis keys claimed).

        A key marked done is a retry ("duplicate", nothing re-sent) when the request that
        marked it had this request's fingerprint, else ApiError 422: the key was reused for
        another request, which must not be answered with the first one's appeal id (it was
        answered so and never published).
        """
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, k in keyed:
                    pipe.set(k, f"p:{ids[i]}", nx=True, ex=self.config.pending_ttl_s)
                won = await pipe.execute()
            lost = [(i, k) for (i, k), ok in zip(keyed, won, strict=True) if not ok]
            existing: list[Any] = []
            if lost:
                # marker and fingerprint from one transaction, as they are written
                async with self.redis.pipeline(transaction=True) as pipe:
                    for _, k in lost:
                        pipe.get(k)
                        pipe.get(k + FINGERPRINT_SUFFIX)
                    existing = await pipe.execute()
        except Exception as exc:
            log.error("redis unavailable for idempotency error=%s", type(exc).__name__)
            raise ApiError(503, "redis_unavailable", "idempotency store unavailable; retry",
                           headers={"Retry-After": "5"}) from None
        claimed = [k for (_, k), ok in zip(keyed, won, strict=True) if ok]
        skip: set[int] = set()
        reused = busy = False
        for n, (i, _k) in enumerate(lost):
            text = _text(existing[2 * n])
            state, _, appeal_id = text.partition(":")
            if state == "d" and appeal_id:
                stored = _text(existing[2 * n + 1])
                # Upgrade: a marker written by an older gateway (or by one during a rolling
                # upgrade) has no fingerprint; it is taken as matching, the old behaviour
                # (the key wins) until it expires after the dedupe window.
                if not stored or fingerprint is None or stored == fingerprint:
                    results[i] = {"appeal_id": appeal_id, "status": "duplicate"}
                    skip.add(i)
                else:
                    reused = True
            else:  # pending (another request in flight) or vanished between the two calls
                busy = True
        if reused:  # before 409: a retry of this request can never succeed
            await self._release(claimed)
            log.info("intake rejected client=%s reason=idempotency_key_reused status=422",
                     client.id)
            raise ApiError(422, "idempotency_key_reused",
                           "Idempotency-Key reused with a different request: the key names an "
                           "earlier request with another payload; send this one with a new key")
        if busy:
            await self._release(claimed)
            raise ApiError(409, "in_progress",
                           "a request with this Idempotency-Key is being processed",
                           headers={"Retry-After": "1"})
        return [i for i in range(count) if i not in skip], claimed

    async def _release(self, claimed: list[str]) -> None:
        if not claimed:
            return
        try:
            await self.redis.delete(*claimed)
        except Exception as exc:
            log.warning("could not release idempotency markers error=%s", type(exc).__name__)

    async def healthy(self) -> dict[str, bool]:
        kafka_ok = False
        try:
            kafka_ok = bool(self.producer is not None and self.producer.client.cluster.brokers())
        except Exception:
            kafka_ok = False
        redis_ok = False
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), 2.0))
        except Exception:
            redis_ok = False
        return {"kafka": kafka_ok, "redis": redis_ok}


# What an ApiError out of publish() means for the records it carried.
_PUBLISH_OUTCOMES = {409: "in_progress", 422: "rejected", 503: "not_stored",
                     504: "outcome_unknown"}


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    """Retrieve a late send's outcome, so asyncio does not warn about an unretrieved error."""
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("a send answered 504 reported an error later (it may still be stored) "
                    "error=%s", type(fut.exception()).__name__)


def _safe_detail(exc: InvalidEvent) -> str:
    """The detail of a validation error without echoing submitted values."""
    detail = exc.detail
    if detail.startswith("data."):
        # fastjsonschema: "data.author.phone must be longer than ..." - keep the rule part.
        return detail.split(" ", 1)[1] if " " in detail else exc.reason
    return detail[:200]


# --------------------------------------------------------------------------- routes

def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or ApiError 413 over ``limit`` (checked before and while reading).

    A body its ``Content-Encoding`` does not decode (``gzip`` that is not gzip) is ApiError
    400 ``bad_body``: aiohttp raises RequestPayloadError, which was a text/plain 500 that any
    client could cause (and it counts towards the AppealsGatewayErrors alert). The charset of
    ``Content-Type`` plays no part: the bytes are JSON, read as UTF-8 (RFC 8259).
    """
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes") from None
    except web.RequestPayloadError:
        raise ApiError(400, "bad_body", "the body could not be decoded (Content-Encoding)",
                       ) from None


def parse_json(body: bytes) -> Any:
    """The decoded body, or ApiError 400 ``not_json`` / ``too_deep`` (nested past any limit)."""
    try:
        return loads_json(body)
    except InvalidEvent as exc:
        if exc.reason == "too_deep":
            # as for a payload nested past MAX_NESTING but readable: "invalid", reason too_deep
            raise ApiError(400, "invalid", "the body nests objects and arrays too deeply",
                           errors=[{"index": None, "field": None, "reason": "too_deep",
                                    "message": _safe_detail(exc)}]) from None
        raise ApiError(400, "not_json", "the body is not valid JSON") from None


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 180 or not key.isprintable():
        raise ApiError(400, "invalid", "bad Idempotency-Key", errors=[{
            "index": None, "field": "Idempotency-Key", "reason": "invalid_value",
            "message": "must be 1-180 printable characters"}])
    return key


async def post_appeals(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        client = gw.authenticate(request.headers.get("Authorization"))
        gw.check_rate(client)
        request[CLIENT_ID] = client.id
        body = await read_body(request, gw.config.max_body_bytes)
        payload = parse_json(body)
        single = not isinstance(payload, list)
        items = [payload] if single else payload
        if not items:
            raise ApiError(400, "empty_batch", "the batch holds no appeals")
        if len(items) > gw.config.max_batch:
            raise ApiError(413, "batch_too_large", f"more than {gw.config.max_batch} appeals")
        key = _idempotency_key(request)
        item_keys: list[str | None] = [
            None if key is None else item_key(key, None if single else i)
            for i in range(len(items))
        ]
        records: list[IntakeAppeal] = []
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                records.append(gw.prepare(item, i, client, item_keys[i]))
            except ApiError as exc:
                if exc.status != 400:
                    raise
                errors.extend(exc.errors)
        if errors:
            log.info("intake rejected client=%s items=%d errors=%d status=400",
                     client.id, len(items), len(errors))
            metrics.child(metrics.GATEWAY_APPEALS, "rejected").inc(len(items))
            raise ApiError(400, "invalid", "some appeals are invalid; nothing was accepted",
                           errors=errors)
        fingerprint = None if key is None else request_fingerprint("/v1/appeals", payload)
        results = await gw.publish(client, records, item_keys, fingerprint=fingerprint)
    except ApiError as exc:
        return _json(exc.status, exc.body(), exc.headers)
    body_out: dict[str, Any] = {
        "appeal_ids": [r["appeal_id"] for r in results],
        "results": results,
    }
    if single:
        body_out["appeal_id"] = results[0]["appeal_id"]
        body_out["status"] = results[0]["status"]
    return _json(202, body_out)


_HTTP_ERRORS = {404: ("not_found", "no such resource"),
                405: ("method_not_allowed", "this method is not allowed here")}
# Headers of aiohttp's own errors worth passing on (405 must name the allowed methods).
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own error answers (unknown path 404, wrong method 405, ...) as JSON, like the
    routes' errors: ``{"error", "description"}``, or the GeoReport error list under
    ``/open311/``. The path is not echoed (it may carry personal data)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error, description = _HTTP_ERRORS.get(
            exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason))
        headers = {h: exc.headers[h] for h in _KEPT_HEADERS if h in exc.headers}
        body: Any = {"error": error, "description": description}
        if request.path.startswith("/open311/"):
            body = [{"code": exc.status, "description": description}]
        return _json(exc.status, body, headers)


async def healthz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    checks = await gw.healthy()
    ok = all(checks.values())
    # Reported, not judged: a quiet gateway has no recent ack and is not unhealthy for it.
    last_ack = (None if gw.last_ack is None else
                datetime.fromtimestamp(gw.last_ack, UTC).isoformat(timespec="seconds"))
    return _json(200 if ok else 503, {"status": "ok" if ok else "unavailable", **checks,
                                      "kafka_last_ack_at": last_ack})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus exposition of the gateway's registry; no token (see the module docstring)."""
    return web.Response(body=generate_latest(metrics.GATEWAY_REGISTRY),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


# Route name for the ``endpoint`` label: a fixed set, never the raw path (it may carry ids or
# personal data, and unknown paths would make the label set unbounded).
_ENDPOINTS = {
    "/v1/appeals": "v1_appeals",
    "/open311/v2/requests.json": "open311_requests",
    "/open311/v2/requests/{service_request_id}.json": "open311_request",
    "/open311/v2/services.json": "open311_services",
    "/healthz": "healthz",
    "/metrics": "metrics",
}


def endpoint_of(request: web.Request) -> str:
    """The route's name in :data:`_ENDPOINTS`, ``other`` for anything else (404s included)."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is not None:
        return _ENDPOINTS.get(resource.canonical, "other")
    # a 405 or 404 has no resource: name a known static path (405), else "other"
    return _ENDPOINTS.get(request.path, "other")


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count every answer by endpoint and status code and time it; outermost middleware, so it
    sees the final status of :func:`json_errors`' answers too. An exception that escapes is
    aiohttp's 500."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:  # shutdown: no answer was given, count none
        status = 0
        raise
    finally:
        if status:
            endpoint = endpoint_of(request)
            metrics.child(metrics.GATEWAY_REQUESTS, endpoint, str(status)).inc()
            metrics.child(metrics.GATEWAY_REQUEST_DURATION, endpoint).observe(
                time.perf_counter() - started)


# The access log's path for a request no route matched (a 404, or a parser error).
UNMATCHED_PATH = "<unmatched>"


def logged_path(request: web.BaseRequest) -> str:
    """The path the access log names: the matched route's pattern
    (``/open311/v2/requests/{service_request_id}.json``), a fixed path of ours (a 405 has no
    route), else :data:`UNMATCHED_PATH`. Never the path as sent: it was logged percent-decoded,
    so a mistaken ``GET /v1/appeals/+79130007701`` or a name as an Open311 id was personal
    data in the log."""
    # A BaseRequest was never routed; a Request aiohttp made for a message it could not parse
    # has no match info either, and reading it raised AssertionError in the access log.
    match_info = getattr(request, "_match_info", None)
    route = match_info.route if match_info is not None else None
    resource = route.resource if route is not None else None
    if resource is not None:
        return resource.canonical
    return request.path if request.path in _ENDPOINTS and "{" not in request.path else (
        UNMATCHED_PATH)


class SafeAccessLogger(AbstractAccessLogger):
    """Access log without the path as sent, query strings or client addresses: those may
    carry personal data (see :func:`logged_path`)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        client_id = request.get(CLIENT_ID, "-") if isinstance(request, web.Request) else "-"
        self.logger.info("%s %s %s %.1fms client=%s", request.method, logged_path(request),
                         response.status, time * 1000, client_id)


def runner_options() -> dict[str, Any]:
    """Keyword arguments for aiohttp's runner (``run_app``, ``AppRunner``, ``TestServer``):
    the privacy-safe access log. aiohttp's default format logs the query string."""
    return {"access_log_class": SafeAccessLogger,
            "access_log": logging.getLogger("appeals.gateway.access")}


def create_app(
    settings: Settings | None = None,
    config: GatewayConfig | None = None,
    *,
    producer: Any = None,
    redis: Any = None,
    now: Callable[[], datetime] | None = None,
) -> web.Application:
    """The aiohttp application (gateway routes + Open311); Kafka and Redis start with it.
    ``now``: the clock appeals are aged by (the SLA clock unless a test gives one)."""
    from workers.intake import open311

    settings = settings or Settings.load()
    config = config or GatewayConfig.load(settings)
    gw = Gateway(settings, config, producer=producer, redis=redis, now=now)
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[count_requests, json_errors])
    app[GATEWAY] = gw
    app.router.add_post("/v1/appeals", post_appeals)
    app.router.add_get("/healthz", healthz)
    # /metrics on the gateway's own port (as the API does), not a separate port like the Faust
    # workers': one port to open and scrape, and the scrape reaches the process that answers.
    app.router.add_get("/metrics", metrics_endpoint)
    open311.setup(app)

    async def _start(_app: web.Application) -> None:
        await gw.start()

    async def _stop(_app: web.Application) -> None:
        await gw.stop()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    # Malformed requests' bytes and peers out of the log (streams/http_logging.py); here, not
    # in run_gateway, so every server of this app (tests included) logs alike.
    install_http_log_filters("gateway")
    return app


def run_gateway(
    settings: Settings | None = None, host: str | None = None, port: int | None = None
) -> None:
    """Serve until interrupted (``appeals gateway``)."""
    from workers.cli import setup_logging

    settings = settings or Settings.load()
    config = GatewayConfig.load(settings)
    # The CLI's logging, as every other command: a basicConfig of its own let ~19 kafka-python
    # INFO lines through at start, and nothing said where the gateway listens.
    setup_logging(settings.log_level)
    if not config.clients:
        log.warning("no intake clients configured (APPEALS_GATEWAY_TOKENS): every POST is "
                    "refused, 401 without a token, 403 with one")
    host = host or config.host
    port = port if port is not None else config.port
    log.info("gateway on http://%s:%d/", f"[{host}]" if ":" in host else host, port)
    web.run_app(
        create_app(settings, config),
        host=host,
        port=port,
        print=None,
        **runner_options(),
    )
