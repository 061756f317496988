"""The HTTP API and supervisor page (aiohttp), its own process: ``appeals api``.

Read-only over the Redis read model, so any number of replicas can run behind a balancer and a
restart loses nothing. Errors are JSON ``{"error": {"code", "message"}}`` with the right status
(400 for a bad parameter, 404 for an unknown appeal/authority, 405 with ``Allow``, 503
``unavailable`` with ``Retry-After`` when Redis is away, 503 ``rebuilding`` with
``Retry-After`` while a partition has not published its figures since Redis lost them
(``ReadModelRebuilding``), 503 ``busy`` with ``Retry-After`` when every pooled Redis
connection stayed in use for the wait: see ``workers.api.pool``; 500 ``internal_error`` for
anything else, its details in the log only). The routing rules are reloaded
while the process runs (``RulesWatcher``, as in the workers).
Personal data: none is stored in the read model, none is returned, and the access log is off
(appeal ids in paths are not personal, but there is no need to keep them either). What an
appeal's record says (its category, body, dates, the earlier appeal it repeats) is still about
a person, and appeal ids are derived from the source systems' ids (registration numbers,
sequential message ids), so anyone can guess them: with ``APPEALS_API_TOKENS`` set every route
but :data:`~workers.api.openapi.OPEN_PATHS` needs one of its bearer tokens (:func:`bearer_auth`);
without, the API warns at start-up that it is open and belongs behind an authenticating proxy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitoring import metrics
from schemas.records import CATEGORIES, canonical_appeal_id
from streams.http_auth import bearer_token, match_token
from streams.http_logging import install_http_log_filters
from streams.settings import Settings, api_token_list
from workers.api import openapi, page
from workers.api.pool import PoolBusy, make_client
from workers.api.service import (
    RATING_WINDOWS,
    ApiService,
    ReadModelRebuilding,
    ReadModelUnavailable,
)
from workers.routing.model import Authority, RoutingRules

log = logging.getLogger(__name__)

#: Longest appeal id read (characters): ``routed-appeal.v1.json`` lets the SLA agent store no
#: longer one (it dead-letters it, ``too_long``), so every stored appeal can be asked for.
APPEAL_ID_MAX = 128
#: An appeal id as the routed-appeal schema lets the SLA agent store it, after the path's
#: percent-decoding: 1..128 characters, none a control character (U+0000-U+001F,
#: U+007F-U+009F). ``[A-Za-z0-9._:-]`` refused ids the pipeline stores and lists
#: (``ПОС-2026/000123``, ``59fz 2026 17``): such an appeal could not be read. A ``/`` is sent
#: as ``%2F`` (the router matches the encoded path, one segment). Checked with ``fullmatch``:
#: ``match`` with ``$`` let an id with a trailing newline through.
APPEAL_ID = re.compile(rf"[^\x00-\x1f\x7f-\x9f]{{1,{APPEAL_ID_MAX}}}")
#: Ids no URL can name: clients and the server resolve ``.`` and ``..`` (``%2E`` too, RFC 3986
#: §6.2.2.2) as dot segments before routing. The schema refuses them as well.
DOT_SEGMENTS = (".", "..")
#: Longest ``cursor`` parameter taken: a cursor of the longest id of 4-byte characters, or of
#: one escaped by JSON throughout (6 bytes a character), is about 1,050 characters.
CURSOR_MAX = 2048
#: Seconds a client is asked to wait after a 503 ``busy``.
BUSY_RETRY_AFTER_S = 1
#: Seconds a client is asked to wait after a 503 ``unavailable`` from a read that does not go
#: through the snapshot (an appeal, the breach list): such a read asks Redis again on the next
#: request, so the wait only keeps clients from hammering a Redis on its way back.
UNAVAILABLE_RETRY_AFTER_S = 5
#: Seconds a client is asked to wait after a 503 ``rebuilding`` (the workers publish their
#: partitions' figures every 2 s once they have rebuilt them).
REBUILDING_RETRY_AFTER_S = 5
#: Seconds between polls of the routing rules, as in the workers (workers/pipeline.py).
RULES_POLL_S = 5.0
SERVICE: web.AppKey[ApiService] = web.AppKey("service", ApiService)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
RULES_PATH: web.AppKey[str] = web.AppKey("rules_path", str)
RULES_POLL: web.AppKey[float] = web.AppKey("rules_poll", float)
TOKENS: web.AppKey[tuple[bytes, ...]] = web.AppKey("tokens", tuple)
QUERY_PARAMETERS: web.AppKey[dict[str, frozenset[str]]] = web.AppKey("query_parameters", dict)
#: The realm a 401's ``WWW-Authenticate`` names (RFC 6750).
REALM = "appeals-api"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status=status)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status,
                        content_type="application/json")


#: ``route`` label of a request no route matched (404, 405): never the requested path.
UNMATCHED = "unmatched"


def _route_label(request: web.Request) -> str:
    """The matched route's path template (``/v1/appeals/{appeal_id}``): a bounded label
    with no appeal id in it."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route and status, and time it (``appeals_api_requests_total``,
    ``appeals_api_request_duration_seconds``). Outermost, so it sees the status the client
    got, the error middleware's 500 and 503s included: before, a 500, a 503 ``busy`` or
    ``rebuilding`` changed no series, and nothing alerted on an API failing its readers."""
    started = time.perf_counter()
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect the error middleware passes on
        status = exc.status
        raise
    finally:
        if status is not None:  # None: cancelled (shutdown), nothing was answered
            route = _route_label(request)
            metrics.child(metrics.API_REQUESTS, route, str(status)).inc()
            metrics.child(metrics.API_REQUEST_DURATION, route).observe(
                time.perf_counter() - started)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = (exc.reason or "error").lower().replace(" ", "_")
        response = error_response(exc.status, code, exc.reason or "error")
        # Keep what the exception says beyond its body: 405 must carry Allow (RFC 9110).
        for name, value in exc.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response
    except (PoolBusy, redis.exceptions.MaxConnectionsError) as exc:
        # Redis answered; this process has every pooled connection in use. Not an outage.
        log.info("answered 503 busy: %s", exc)
        response = error_response(503, "busy", "the API is busy (every Redis connection stayed "
                                  "in use); retry after the Retry-After delay")
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return response
    except redis.exceptions.OutOfMemoryError:
        # Reads avoid MULTI, which a full Redis refuses; should one still meet the refusal,
        # say what it is: Redis answers, it is full (maxmemory), and waiting will not help.
        metrics.REDIS_ERRORS.labels("api_read").inc()
        log.warning("read model full: Redis refuses commands over maxmemory")
        return error_response(503, "read_model_full",
                              "the read model (Redis) is over its maxmemory and refuses the "
                              "read; an operator must free memory or raise maxmemory")
    except (redis.exceptions.RedisError, OSError) as exc:
        if not isinstance(exc, ReadModelUnavailable):  # that one was counted when it failed
            metrics.REDIS_ERRORS.labels("api_read").inc()
        log.warning("read model unavailable: %s", type(exc).__name__)
        response = error_response(503, "unavailable", "the read model (Redis) is not reachable")
        response.headers["Retry-After"] = str(_unavailable_retry_after(request, exc))
        return response
    except ReadModelRebuilding as exc:
        log.info("answered 503 rebuilding: %s", exc)
        response = error_response(
            503, "rebuilding",
            f"the read model is being rebuilt ({exc}; Redis lost its data): figures, "
            "appeals and breaches would read as missing meanwhile; retry after the "
            "Retry-After delay")
        response.headers["Retry-After"] = str(REBUILDING_RETRY_AFTER_S)
        return response
    except Exception:
        # Anything else is a bug or a read-model value nobody foresaw: aiohttp's own answer
        # was a text/plain 500 a JSON client cannot read. The details go to the log only.
        log.exception("answered 500 to %s %s", request.method, request.path[:200])
        return error_response(500, "internal_error",
                              "the API failed to answer this request; its log says why")


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without one of ``APPEALS_API_TOKENS`` (none configured: every request passes).

    The header is read and the tokens compared as the gateway does
    (:mod:`streams.http_auth`: every token, each in constant time)."""
    tokens = request.app[TOKENS]
    if not tokens or request.path in openapi.OPEN_PATHS:
        return await handler(request)
    presented = bearer_token(request.headers.get("Authorization"))
    if presented is None:
        return _unauthorized("missing_token", "this API needs Authorization: Bearer <token>",
                             f'Bearer realm="{REALM}"')
    if match_token(presented, ((token, True) for token in tokens)) is None:
        return _unauthorized("invalid_token", "the bearer token is not valid",
                             f'Bearer realm="{REALM}", error="invalid_token"')
    return await handler(request)


def query_parameters() -> dict[str, frozenset[str]]:
    """The query parameters each ``/v1`` path takes, as the OpenAPI document lists them (one
    source: a parameter the handlers read but the document left out is refused, which its
    test sees)."""
    return {path: frozenset(p["name"] for p in item["get"].get("parameters", [])
                            if p.get("in") == "query")
            for path, item in openapi.document()["paths"].items() if path.startswith("/v1/")}


@web.middleware
async def known_parameters(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 ``unknown_parameter`` for a query parameter a ``/v1`` path does not take.

    Ignored, a misspelt filter answered as if it were not there:
    ``/v1/breaches?authorty=22-minzdrav`` listed every body's breaches, which a client could
    not tell from the one body's. The supervisor page, probes and the scrape still ignore
    what they do not know (a bookmarked page with a tracking parameter, a prober's own)."""
    resource = request.match_info.route.resource
    allowed = request.app[QUERY_PARAMETERS].get(resource.canonical) if resource else None
    if allowed is not None:
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            takes = ", ".join(sorted(allowed)) or "none"
            raise ApiError(400, "unknown_parameter",
                           f"unknown query parameter {unknown[0][:40]!r} (this path takes: "
                           f"{takes})")
    return await handler(request)


def _unauthorized(code: str, message: str, challenge: str) -> web.Response:
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = challenge
    return response


def _unavailable_retry_after(request: web.Request, exc: BaseException) -> int:
    """Retry-After of a 503 ``unavailable``, which every such answer carries (RFC 9110
    §10.2.3; the README promises it): the rest of the remembered snapshot failure's interval
    when the snapshot could not be read, else :data:`UNAVAILABLE_RETRY_AFTER_S`. Only a
    request inside that interval had one: the request whose snapshot read failed, an appeal
    lookup and the breach list answered 503 without it."""
    if isinstance(exc, ReadModelUnavailable):
        wait: float | None = exc.retry_after
    else:
        svc = request.app.get(SERVICE)
        wait = svc.failure_wait(exc) if svc is not None else None
    if wait is None:
        return UNAVAILABLE_RETRY_AFTER_S
    return max(1, math.ceil(wait))


def _window(request: web.Request) -> str:
    window = request.query.get("window", "30d")
    if window not in RATING_WINDOWS:
        raise ApiError(400, "bad_window",
                       f"window must be one of {', '.join(RATING_WINDOWS)}, not {window[:20]!r}")
    return window


def _region(svc: ApiService, request: web.Request) -> str:
    region = request.query.get("region", svc.settings.default_region)
    if region not in svc.rules.regions:
        raise ApiError(404, "unknown_region", f"no routing rules for region {region[:20]!r}")
    return region


def _authority(svc: ApiService, authority_id: str) -> Authority:
    authority = svc.authority(authority_id)
    if authority is None:
        raise ApiError(404, "unknown_authority", f"unknown authority {authority_id[:64]!r}")
    return authority


def _authority_dict(a: Authority) -> dict[str, Any]:
    """Public description: role names of supervisors only, never their contacts."""
    return {"id": a.id, "name": a.name, "kind": a.kind, "region": a.region_code,
            "parent": a.parent, "municipality": a.municipality,
            "supervisor_roles": [s.role for s in a.supervisors]}


def readable_appeal_id(appeal_id: str) -> bool:
    """Whether ``/v1/appeals/{appeal_id}`` can name this id (what ``routed-appeal`` lets the
    SLA agent store)."""
    return APPEAL_ID.fullmatch(appeal_id) is not None and appeal_id not in DOT_SEGMENTS


async def get_appeal(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    appeal_id = request.match_info["appeal_id"]
    if not readable_appeal_id(appeal_id):
        raise ApiError(400, "bad_appeal_id", f"appeal ids are 1-{APPEAL_ID_MAX} characters "
                                             "(percent-encoded), no control characters")
    # The spelling the SLA worker stores under: an id copied from a system that prints hex
    # ids in upper case (SQL Server, .NET) named no record and answered 404.
    appeal_id = canonical_appeal_id(appeal_id)
    row, in_breach_index = await svc.appeal_and_breach(appeal_id)
    if row is None:
        # Not found while Redis is being refilled proves nothing: 503 rebuilding, not 404.
        await svc.check_ready()
        raise ApiError(404, "unknown_appeal", f"no appeal {appeal_id!r} in the read model")
    authority = svc.authority(row.get("authority_id", ""))
    status = row.get("status")
    open_ = status in ("running", "paused")
    due = _parse_ts(row.get("due_at"))
    now = svc.clock.now()
    # A paused appeal's stored due is the one from before the pause: its clock stands still
    # and the engine moves the deadline on by the pause when it resumes, so one paused in time
    # is not overdue however long the pause lasts. Paused, it is overdue only as an open breach
    # (breached before the pause: in the index /v1/breaches lists, same overdue_s there).
    overdue_rule = status == "running" or (status == "paused" and in_breach_index)
    overdue = (now - due) if (overdue_rule and due is not None and now > due) else None
    history = [{"at": row[k], "event": name} for k, name in
               (("registered_at", "registered"), ("answered_at", "answered"))
               if row.get(k)]
    history.sort(key=lambda h: h["at"])
    return _json({
        "appeal_id": appeal_id,
        "status": row.get("status"),
        "sla_status": row.get("sla"),
        "regime": row.get("regime"),
        "category": row.get("category") or None,
        "municipality": row.get("municipality") or None,
        "authority": {"id": row.get("authority_id"),
                      "name": authority.name if authority else None},
        "registered_at": row.get("registered_at") or None,
        "due_at": row.get("due_at") or None,
        "answered_at": row.get("answered_at") or None,
        "updated_at": row.get("updated_at") or None,
        "overdue_s": round(overdue, 1) if overdue is not None else None,
        # The source /v1/breaches lists: the open-breach index (a breached appeal that was
        # then paused reads sla=paused and still is an open breach).
        "open_breach": bool(open_ and in_breach_index),
        "stages": _stages(row.get("stages")),
        # Intake's near-duplicate flag: the earlier appeal this one repeats (null: none).
        "duplicate_of": row.get("duplicate_of") or None,
        "history": history,
    })


def _stages(text: str | None) -> list[Any]:
    """The tracked stage deadlines the SLA agent wrote (``read_model._stages``); a record
    written before they existed, or unreadable, shows none."""
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


def _parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


async def list_authorities(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    window = _window(request)
    region = request.query.get("region")
    if region is not None and region not in svc.rules.regions:
        raise ApiError(404, "unknown_region", f"no routing rules for region {region[:20]!r}")
    snap = await svc.snapshot()
    items = []
    for a in svc.authorities(region):
        item = _authority_dict(a)
        item["figures"] = svc.figures(snap, a.id, window, a.region_code).to_dict()
        items.append(item)
    return _json({"window": window, "authorities": items})


async def authority_stats(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    authority = _authority(svc, request.match_info["authority_id"])
    window = _window(request)
    snap = await svc.snapshot()
    entry = snap.entry(authority, window)
    return _json(_stats(svc, snap, authority.id, window, authority.region_code,
                        entry.to_dict() | {"name": authority.name} if entry else None))


async def municipality_stats(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    muni = request.match_info["municipality_id"]
    region = svc.municipality_region(muni)
    if region is None:
        raise ApiError(404, "unknown_municipality", f"unknown municipality {muni[:64]!r}")
    window = _window(request)
    snap = await svc.snapshot()
    return _json(_stats(svc, snap, f"muni:{muni}", window, region, None))


async def category_stats(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    category = request.match_info["category"]
    if category not in CATEGORIES:
        raise ApiError(404, "unknown_category", f"unknown category {category[:64]!r}")
    window = _window(request)
    snap = await svc.snapshot()
    return _json(_stats(svc, snap, f"cat:{category}", window, None, None))


def _stats(svc: ApiService, snap: Any, subject: str, window: str, region: str | None,
           rating: dict[str, Any] | None) -> dict[str, Any]:
    start, end = svc.window_bounds(snap, window, region, subject)
    return {"subject": subject, "window": window, "from": start, "to": end,
            "figures": svc.figures(snap, subject, window, region).to_dict(), "rating": rating}


async def ratings(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    region = _region(svc, request)
    window = _window(request)
    snap = await svc.snapshot()
    names = {a.id: a.name for a in svc.authorities(region)}
    return _json({
        "region": region,
        "window": window,
        "computed_at": _iso(snap.now_sla),
        "min_volume": svc.policy.min_volume,
        "entries": [e.to_dict() | {"name": names.get(e.authority_id, e.authority_id)}
                    for e in snap.rating(region, window)],
    })


def _limit(request: web.Request) -> int:
    """ASCII digits only: ``int()`` also took ``٥`` (Arabic-Indic five), ``1_0`` and spaces."""
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "bad_limit", "limit must be an integer 1..1000")
    return int(raw)


def encode_cursor(due: float, appeal_id: str) -> str:
    """``next_cursor``: the position (score, appeal id) of a page's last item, opaque to
    clients (base64url of a JSON pair), so the next page is read from there (keyset paging:
    an offset skipped or repeated items whenever breaches came or went between pages)."""
    return base64.urlsafe_b64encode(orjson.dumps([due, appeal_id])).rstrip(b"=").decode()


def _cursor(request: web.Request) -> tuple[float, bytes] | None:
    """The ``cursor`` parameter decoded; 400 ``bad_cursor`` for anything that is not one
    :func:`encode_cursor` made.

    The id is any non-empty string: it is only a position in the index (compared, looked up
    by ZRANK), never a key read, and whatever id the index holds is what a page ends on. Held
    to :data:`APPEAL_ID` it refused the cursor of a page ending on ``ПОС-2026/000123``, and
    that listing could not be paged past it, ever."""
    raw = request.query.get("cursor")
    if raw is None:
        return None
    try:
        if not raw or len(raw) > CURSOR_MAX or not raw.isascii():
            raise ValueError(raw)
        data = orjson.loads(base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_",
                                             validate=True))
        due, appeal_id = data
        if (isinstance(due, bool) or not isinstance(due, int | float)
                or not math.isfinite(due) or not isinstance(appeal_id, str) or not appeal_id):
            raise ValueError(raw)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(400, "bad_cursor", "cursor must be the next_cursor of an earlier page, "
                                          "unchanged") from None
    return float(due), appeal_id.encode()


async def breaches(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    limit = _limit(request)
    after = _cursor(request)
    authority_id = request.query.get("authority")
    # Both filters are checked and both apply (region used to be ignored next to authority).
    region = _region(svc, request) if "region" in request.query else None
    wanted: list[str] | None
    if authority_id is not None:
        authority = _authority(svc, authority_id)
        wanted = [authority.id] if region in (None, authority.region_code) else []
    elif region is not None:
        wanted = [a.id for a in svc.authorities(region)]
    else:
        wanted = None
    await svc.check_ready()  # an index being refilled would list none or a few
    result = await svc.open_breaches(wanted, limit, after)
    last = result.items[-1] if result.items else None
    return _json({"total": result.total, "truncated": result.truncated,
                  "breaches": [b.to_dict() for b in result.items],
                  "next_cursor": encode_cursor(last.due_ts, last.appeal_id)
                  if result.more and last is not None else None})


async def supervisor_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    region = _region(svc, request)
    window = _window(request)
    snap = await svc.snapshot()
    authorities = svc.authorities(region)
    names = {a.id: a.name for a in authorities}
    # As /v1/breaches: the snapshot may be cached from before Redis lost its data, and the
    # index being refilled read as "0 open breaches" on the page supervisors watch.
    await svc.check_ready()
    breach_page = await svc.open_breaches([a.id for a in authorities], 50)
    body = page.render(
        region=region, region_name=svc.rules.regions[region].name, window=window,
        windows=RATING_WINDOWS, computed_at=_iso(snap.now_sla),
        min_volume=svc.policy.min_volume, entries=snap.rating(region, window), names=names,
        breaches=breach_page.items, breach_total=breach_page.total,
        breach_truncated=breach_page.truncated,
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8")


async def openapi_doc(request: web.Request) -> web.Response:
    return _json(openapi.document())


async def healthz(request: web.Request) -> web.Response:
    """This process and its Redis: 200 ``ok``, else 503. A read model being rebuilt is 200
    with ``read_model: rebuilding``, not 503: every replica sees the same Redis, so a 503
    made a balancer drop them all at once (clients then got its error instead of the
    endpoints' own 503 ``rebuilding`` with Retry-After), and a liveness probe restarted
    processes that are fine, which does not bring the workers' figures back any sooner."""
    svc = request.app[SERVICE]
    status, published = await svc.health()
    body: dict[str, Any] = {"status": status}
    if published is not None:
        expected = svc.settings.partitions
        body |= {"read_model": "ready" if published >= expected else "rebuilding",
                 "partitions_published": published, "partitions": expected}
    response = _json(body, status=200 if status == "ok" else 503)
    if status == "busy":
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    return response


async def metrics_endpoint(request: web.Request) -> web.Response:
    # A scrape sees figures at most one refresh old. With Redis away it still answers, with
    # the gauges as they were and the Redis error counts: a 503 here made the API look down
    # (AppealsApiDown) and hid exactly the counter that tells what is wrong.
    try:
        await request.app[SERVICE].snapshot()
    except (PoolBusy, redis.exceptions.RedisError, OSError, ReadModelRebuilding) as exc:
        log.info("metrics scrape without a fresh snapshot: %s", type(exc).__name__)
    except Exception as exc:  # a figure the API cannot read, a bug: the scrape still answers
        log.warning("metrics scrape without a fresh snapshot: %s (the rating refresh logs "
                    "the details)", type(exc).__name__)
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def api_registry() -> CollectorRegistry:
    """The API's own registry: the figures it computes and what this process counts
    (``appeals_redis_errors_total``: ``rating_refresh`` and ``rating_publish`` by the
    background refresh, ``api_read`` by requests, ``appeal_read`` for a MULTI a full Redis
    refused; ``appeals_api_requests_total`` and ``appeals_api_request_duration_seconds``,
    its answers; ``appeals_api_read_model_ready``; ``appeals_http_*_total{server="api"}``,
    the HTTP server's own errors).

    Why not the workers' registry: the API would then export ``appeals_worker_up 0`` and
    zeroed pipeline counters under its own instance, confusing the worker alerts.
    """
    registry = CollectorRegistry(auto_describe=True)
    registry.register(metrics.ON_TIME_RATIO)
    registry.register(metrics.REDIS_ERRORS)
    for collector in (metrics.API_REQUESTS, metrics.API_REQUEST_DURATION,
                      metrics.API_READ_MODEL_READY):
        registry.register(collector)
    for counter in (metrics.HTTP_BAD_REQUESTS, metrics.HTTP_SERVER_ERRORS,
                    metrics.HTTP_ACCEPT_ERRORS):  # streams/http_logging.py
        registry.register(counter)
    return registry


def create_app(settings: Settings, redis_client: Any | None = None,
               rules: RoutingRules | None = None, *,
               rules_poll: float | None = None) -> web.Application:
    """The application. Rules given by the caller are used as they are; rules it loads itself
    (``APPEALS_ROUTING_RULES`` or the packaged region) are polled every ``rules_poll`` s
    (default :data:`RULES_POLL_S`) and reloaded on a valid change, as README promises and the
    workers do."""
    rules_path = ""
    if rules is None:
        from workers.routing import load_rules
        from workers.routing.loader import default_rules_path

        rules_path = settings.routing_rules or str(default_rules_path())
        rules = load_rules(rules_path, default_region=settings.default_region)
    client: aioredis.Redis = redis_client or make_client(settings)
    service = ApiService(settings, client, rules)
    app = web.Application(middlewares=[request_metrics, errors, bearer_auth,
                                       known_parameters])
    app[TOKENS] = tuple(t.encode() for t in api_token_list(settings.api_tokens))
    app[QUERY_PARAMETERS] = query_parameters()
    app[SERVICE] = service
    app[REGISTRY] = api_registry()
    app[RULES_PATH] = rules_path
    app[RULES_POLL] = RULES_POLL_S if rules_poll is None else rules_poll
    app.router.add_get("/", supervisor_page)
    app.router.add_get("/supervisor", supervisor_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/openapi.json", openapi_doc)
    # Any segment reaches the handler's id check (aiohttp's default segment excludes braces,
    # so "{x}" got the router's generic 404). The router matches the encoded path, so an id
    # with a "/" is one segment sent as %2F, and match_info holds it decoded.
    app.router.add_get("/v1/appeals/{appeal_id:[^/]+}", get_appeal)
    app.router.add_get("/v1/authorities", list_authorities)
    app.router.add_get("/v1/authorities/{authority_id}/stats", authority_stats)
    app.router.add_get("/v1/municipalities/{municipality_id}/stats", municipality_stats)
    app.router.add_get("/v1/categories/{category}/stats", category_stats)
    app.router.add_get("/v1/ratings", ratings)
    app.router.add_get("/v1/breaches", breaches)
    app.cleanup_ctx.append(_refresher)
    app.cleanup_ctx.append(_rules_watcher)
    app.on_startup.append(_announce_access)
    # Here rather than in run_api: every server of this app (tests, benchmarks) logs alike.
    install_http_log_filters("api")
    return app


async def _announce_access(app: web.Application) -> None:
    if not app[TOKENS]:
        log.warning("the API is open: APPEALS_API_TOKENS is not set, so anyone who can reach "
                    "it reads any appeal (appeal ids are guessable); run it behind an "
                    "authenticating proxy or set APPEALS_API_TOKENS")


async def _rules_watcher(app: web.Application) -> AsyncIterator[None]:
    """Reload the routing rules while serving (README: APPEALS_ROUTING_RULES reloads without
    a restart). The API loaded them once, so renamed, added and removed bodies never reached
    it. An invalid edit keeps the rules in use (the watcher logs why)."""
    path = app[RULES_PATH]
    if not path:
        yield  # rules handed in by the caller: not ours to reload
        return
    from workers.routing.watcher import RulesWatcher

    svc = app[SERVICE]
    watcher = RulesWatcher(path, svc.replace_rules, interval=app[RULES_POLL],
                           initial=svc.rules, default_region=svc.settings.default_region)
    watcher.start()
    yield
    await watcher.stop()


async def _refresher(app: web.Application) -> AsyncIterator[None]:
    """Recompute and publish ratings every APPEALS_RATING_REFRESH s, requests or not."""
    svc = app[SERVICE]

    async def loop() -> None:
        while True:
            try:
                await svc.snapshot(max_age=svc.settings.rating_refresh * 0.9, probe=True)
            except (redis.exceptions.RedisError, OSError) as exc:
                metrics.REDIS_ERRORS.labels("rating_refresh").inc()
                log.warning("rating refresh failed: %s", type(exc).__name__)
            except ReadModelRebuilding as exc:
                # The ratings in Redis and the gauges stay as last computed: rated from the
                # empty hashes, every body was published as unrated.
                log.warning("rating refresh skipped while the read model is rebuilt: %s", exc)
            except Exception:
                # Anything else (a read-model field the API cannot read, a bug) ended this
                # task for good, and the ratings then expired with nobody refreshing them.
                log.exception("rating refresh failed; tried again in %s s",
                              svc.settings.rating_refresh)
            await asyncio.sleep(svc.settings.rating_refresh)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await svc.close()
    await svc.redis.aclose()


def run_api(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
    log.info("API and supervisor page on http://%s:%d/", host, port)
    web.run_app(app, host=host, port=port, access_log=None, print=None)
