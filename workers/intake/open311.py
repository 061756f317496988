"""Open311 GeoReport v2 (subset, JSON format) on the intake gateway, for civic apps.

Why: many civic reporting apps already speak GeoReport v2. Mounting a subset on our gateway lets
them submit appeals and follow their status without a custom integration. Field names follow the
spec (http://wiki.open311.org/GeoReport_v2) exactly; errors use its format
``[{"code": <http status>, "description": "..."}]``.

Routes:

* ``GET /open311/v2/services.json``: our 12 operational categories as services
  (``service_code`` = category code, ``service_name`` in Russian, ``description``,
  ``metadata: false``, ``type: "realtime"``, ``keywords``, ``group``); the same in every
  region, ``404`` for a ``jurisdiction_id`` that is not a region code (as on POST).
* ``POST /open311/v2/requests.json`` (form-encoded or JSON): ``api_key`` (an intake client
  token, as for ``/v1/appeals``), ``service_code``, ``lat`` + ``long`` or ``address_string``
  (or ``address_id``), ``description``, ``email``, ``first_name``, ``last_name``, ``phone``,
  ``media_url``, ``device_id``, ``account_id``, ``jurisdiction_id``. Creates a ``web``-channel
  intake event (published like any gateway appeal, acks=all) marked ``extra.source`` =
  ``"open311"`` and answers ``201`` with
  ``[{"service_request_id", "service_notice", "account_id": null}]``. The marker makes the
  intake agent register it under ``APPEALS_OPEN311_REGIME`` (``pos`` by default), not the
  site form's ``APPEALS_WEB_REGIME`` (``fz59``): a civic app is not the authority's site, and
  only an ESIA-authenticated channel makes a 59-FZ electronic appeal; ``/v1/appeals`` refuses
  a web item carrying the marker. ``jurisdiction_id`` is
  a region code (``22``, ``022``, or a vehicle-plate alias such as ``122``, see
  :func:`workers.geo.regions.normalize_code`) and sets the appeal's region; any other value is
  ``404`` "jurisdiction_id provided was not found", as GeoReport v2 says (it was replaced by
  the default region, and the appeal was routed and timed in the wrong region). Without
  ``jurisdiction_id`` the region is the client's configured one, else
  ``APPEALS_DEFAULT_REGION``. An ``Idempotency-Key`` header works as on ``/v1/appeals``, in a
  key space of its own (Redis ``<APPEALS_APP_ID>:open311:idem:``; the appeal's external id is
  then ``<client id>:open311:sha256:<digest>``, see :func:`keyed_external_id`): a retry gets
  the same ``service_request_id``, the same key with different parameters ``422``
  ("Idempotency-Key reused with a different request"). Without one, an exact repeat of a
  request is its retry for ``APPEALS_GATEWAY_OPEN311_RETRY_WINDOW`` (24 h): the gateway keeps
  ``<APPEALS_APP_ID>:open311:retry:<client id>:<digest>`` -> (external id, submission time),
  the digest being SHA-256 over the client id (what ``api_key`` authenticated as) and the
  request's parameters (every field but ``api_key``, values trimmed, names sorted: form or JSON
  alike), set with ``SET NX`` for the window. A repeat within the window publishes the same
  record again under the same appeal id, which the intake agent registers once, and answers
  the same ``service_request_id``. Two citizens' requests differ in some field (description,
  name, contacts, location); an identical one from the same client within the window is taken
  as the same request. When Kafka does not confirm in time the answer is ``504`` (outcome
  unknown; resend the same request), when Redis or Kafka refused it ``503`` (nothing stored).
* ``GET /open311/v2/requests/{service_request_id}.json``: one request, ``status`` ``open`` or
  ``closed`` mapped from our lifecycle, ``agency_responsible`` (the authority's id) and
  ``expected_datetime`` (the SLA deadline) from the SLA agent's read model
  (:func:`workers.sla.read_model.appeal_key`, prefixed with ``APPEALS_APP_ID``: ``status``,
  ``authority_id``, ``due_at``, ``category``, ``registered_at``, ``updated_at``), plus what the
  gateway kept at submission (hash ``<APPEALS_APP_ID>:open311:{appeal_id}``: service code,
  time, coordinates).
  ``404`` without that hash: an appeal of another channel answers as an unknown one (the route
  is public and appeal ids are guessable), and so does an Open311 request
  ``APPEALS_OPEN311_TTL_DAYS`` after its submission, or one whose hash could not be stored
  (Redis failed right after Kafka took it; logged). Never ``duplicate_of``: it links two
  appeals of one author (``/v1/appeals/{id}`` has it, behind its token).

``agency_responsible`` is the authority's id (e.g. ``22-mintrans``), not its name: the read model
carries only the id, and the names live in the routing rules, which the gateway does not load
(it routes nothing, and would have to follow the workers' rule reloads to stay right). The field
is optional in GeoReport v2; ``/v1/appeals/{id}`` and ``/v1/authorities`` give the name.

Privacy: the GET route is public per the spec, so it never returns personal data, and answers
only for requests submitted through it. The gateway
keeps no description, address or contact details for it and the read model carries none either:
``description``, ``address`` (both optional in the spec) are always ``null``; the coordinates it
returns are the problem's location as submitted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from monitoring import metrics
from schemas.records import CATEGORIES, canonical_appeal_id
from schemas.validation import InvalidEvent
from workers.geo.regions import UnknownRegion, normalize_code
from workers.intake.core import OPEN311_SOURCE, check_nesting
from workers.sla import read_model

if TYPE_CHECKING:
    from workers.intake.gateway import Client, Gateway

__all__ = ["SERVICES", "setup", "status_for"]

log = logging.getLogger("appeals.gateway.open311")

OPEN311_KEY = "{prefix}open311:{appeal_id}"
RETRY_KEY = "{prefix}open311:retry:{client_id}:{digest}"

# (service_code, service_name, description, keywords, group)
_SERVICE_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("housing_utilities", "ЖКХ",
     "Отопление, водоснабжение, электроснабжение, газ, канализация, вывоз мусора, управляющие "
     "компании, лифты, кровля", "отопление,вода,свет,газ,канализация,мусор,лифт,крыша,УК",
     "Город и дом"),
    ("roads", "Дороги",
     "Дорожное покрытие, снег на дорогах, светофоры, знаки, мосты, открытые люки",
     "яма,дорога,асфальт,светофор,знак,мост,люк,снег на дороге", "Город и дом"),
    ("transport", "Общественный транспорт",
     "Маршруты, расписание, стоимость проезда, остановки",
     "автобус,маршрут,расписание,проезд,остановка,трамвай,электричка", "Город и дом"),
    ("landscaping", "Благоустройство",
     "Дворы, детские площадки, парки, уличное освещение, деревья, снег во дворах",
     "двор,площадка,парк,освещение,фонарь,дерево,снег во дворе", "Город и дом"),
    ("healthcare", "Здравоохранение",
     "Поликлиники, больницы, запись к врачу, лекарственное обеспечение",
     "поликлиника,больница,врач,скорая,лекарства", "Социальная сфера"),
    ("education", "Образование",
     "Детские сады, школы, колледжи, питание и безопасность детей",
     "школа,детский сад,колледж,учитель,питание", "Социальная сфера"),
    ("social", "Социальная защита",
     "Пособия, инвалидность, пенсии, социальное обслуживание",
     "пособие,инвалидность,пенсия,выплата,соцзащита", "Социальная сфера"),
    ("ecology", "Экология",
     "Свалки, выбросы, загрязнение воды, вырубка деревьев, палы травы",
     "свалка,выбросы,загрязнение,вырубка,пал,запах", "Окружающая среда"),
    ("connectivity", "Связь",
     "Мобильная связь, интернет, телевидение", "связь,интернет,мобильная связь,телевидение",
     "Связь и услуги"),
    ("safety", "Безопасность",
     "Бродячие собаки, общественный порядок, пожарная безопасность, аварийные здания",
     "собаки,порядок,пожар,аварийный дом", "Окружающая среда"),
    ("trade_services", "Торговля и услуги",
     "Магазины, рынки, защита прав потребителей", "магазин,рынок,цены,потребитель,услуги",
     "Связь и услуги"),
    ("other", "Другое", "Вопросы, не вошедшие в другие категории", "другое,прочее", "Другое"),
)
assert tuple(r[0] for r in _SERVICE_ROWS) == CATEGORIES, "services must match CATEGORIES"

SERVICES: list[dict[str, Any]] = [
    {
        "service_code": code,
        "service_name": name,
        "description": description,
        "metadata": False,
        "type": "realtime",
        "keywords": keywords,
        "group": group,
    }
    for code, name, description, keywords, group in _SERVICE_ROWS
]
_SERVICE_NAMES = {s["service_code"]: s["service_name"] for s in SERVICES}

# Our lifecycle status -> (Open311 status, status_notes in Russian).
_STATUS: dict[str, tuple[str, str]] = {
    "registered": ("open", "Обращение зарегистрировано"),
    "triage": ("open", "Обращение на уточнении категории"),
    "triaged": ("open", "Категория обращения уточнена"),
    "routed": ("open", "Обращение направлено в орган власти"),
    "accepted": ("open", "Обращение принято к рассмотрению"),
    "extended": ("open", "Срок рассмотрения продлён"),
    "redirected": ("open", "Обращение перенаправлено по компетенции"),
    "paused": ("open", "Ожидается информация от заявителя"),
    "resumed": ("open", "Рассмотрение продолжено"),
    "reopened": ("open", "Рассмотрение возобновлено"),
    "answered": ("closed", "Дан ответ по существу"),
    "closed": ("closed", "Рассмотрение завершено"),
}

_APPEAL_ID = re.compile(r"^[0-9a-f]{24}$")


def status_for(status: str | None) -> tuple[str, str]:
    """Open311 ``(status, status_notes)`` for our lifecycle status (unknown -> open)."""
    if not status:
        return "open", "Обращение принято"
    return _STATUS.get(status, ("open", "Обращение на рассмотрении"))


def _errors(status: int, *descriptions: str,
            headers: dict[str, str] | None = None) -> web.Response:
    body = [{"code": status, "description": d} for d in descriptions]
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


def _ok(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _iso(value: Any) -> str | None:
    """ISO 8601 with an offset (the spec requires one) from an ISO string or epoch seconds."""
    if value in (None, ""):
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        return datetime.fromtimestamp(float(text), UTC).isoformat(timespec="seconds")
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat(timespec="seconds")


def _text(mapping: dict[Any, Any], name: str) -> str | None:
    value = mapping.get(name)
    if value is None:
        value = mapping.get(name.encode())
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- routes

async def get_services(request: web.Request) -> web.Response:
    """The services; ``404`` for a ``jurisdiction_id`` that names no region (as on POST)."""
    jurisdiction = request.query.get("jurisdiction_id", "").strip()
    if jurisdiction:
        try:
            normalize_code(jurisdiction)
        except UnknownRegion:
            return _errors(404, _JURISDICTION_NOT_FOUND)
    return _ok(200, SERVICES)


async def _read_params(request: web.Request, limit: int) -> dict[str, Any]:
    from workers.intake.gateway import ApiError, parse_json, read_body

    ctype = request.content_type or ""
    if ctype == "application/json":
        body = await read_body(request, limit)
        data = parse_json(body) if body else {}
        try:
            check_nesting(data)  # before anything walks or re-encodes it
        except InvalidEvent:
            raise ApiError(400, "too_deep", "the body nests objects and arrays too deeply",
                           ) from None
        if not isinstance(data, dict):
            raise ApiError(400, "not_object", "the body must be a JSON object")
        return data
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes")
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes") from None
    except web.RequestPayloadError:  # a Content-Encoding that does not decode
        raise ApiError(400, "bad_body", "the body could not be decoded (Content-Encoding)",
                       ) from None
    except (ValueError, LookupError, RuntimeError):
        # What aiohttp raises for a form it cannot read: ValueError (a broken multipart
        # body), LookupError (an unknown charset of the body or of a part), RuntimeError (an
        # unknown Content-Transfer-Encoding of a part). The last two were a text/plain 500
        # for anyone, without an api_key, counted towards the AppealsGatewayErrors alert.
        raise ApiError(400, "bad_form", "the form could not be read") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    value = value.strip()
    return value or None


# A decimal number as JSON or a form writes it. float() also takes "1_0", "١٠", "nan", "inf".
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def _coordinate(params: dict[str, Any], name: str, bound: float) -> float | None:
    raw = _param(params, name)
    if raw is None:
        return None
    if not _NUMBER.match(raw):
        raise ValueError(f"{name} is not a decimal number")
    value = float(raw)
    if not -bound <= value <= bound:
        raise ValueError(f"{name} is out of range")
    return value


def _normalised(value: Any) -> Any:
    """A parameter as :func:`_param` reads it: trimmed text; a JSON number as its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if isinstance(value, str) else value


def _request_digest(client_id: str, params: dict[str, Any]) -> str:
    """SHA-256 over the client and the normalised request (all but ``api_key``)."""
    fields = {k: _normalised(v) for k, v in params.items() if k != "api_key"}
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(client_id.encode("utf-8", "surrogateescape") + b"\x00"
                          + body).hexdigest()


def keyed_external_id(client_id: str, key: str) -> str:
    """The external id of a request sent with an ``Idempotency-Key`` (``key`` as
    :func:`workers.intake.gateway.item_key` maps it): the client's key in Open311's own space.

    Not ``/v1/appeals``' id (:func:`~workers.intake.gateway.scoped_external_id`, then
    ``<client id>:<key>``): a client's web appeal posted there with key ``1001`` and its
    Open311 request with key ``1001`` had one appeal id, so one of them was lost.
    ``<client id>:open311:sha256:<digest of client id and key>`` is a form no ``/v1`` key
    gives by chance (the digest stands for the key: keys may be 180 characters).

    Upgrade: an Open311 request sent with a key before this form and resent after it is
    registered twice (its marker was under ``intake:idem:`` and its id was ``<client>:<key>``);
    let clients finish such retries first.
    """
    from workers.intake.gateway import digest_external_id

    return digest_external_id(client_id, "open311", "open311", key)


async def _retry_identity(gw: Gateway, client: Client, params: dict[str, Any],
                          now: datetime) -> tuple[str, datetime]:
    """(external id, submission time) of a keyless request: the first one's within the window.

    Raises ApiError 503 when Redis cannot say (nothing has been published yet).
    """
    from workers.intake.gateway import ApiError

    key = RETRY_KEY.format(prefix=read_model.key_prefix(gw.settings.app_id), client_id=client.id,
                           digest=_request_digest(client.id, params))
    mine = f"open311-{uuid.uuid4().hex} {now.isoformat(timespec='seconds')}"
    try:
        for _ in range(3):  # the first one's key may expire between SET NX and GET
            if await gw.redis.set(key, mine, nx=True, ex=gw.config.open311_retry_window_s):
                value: Any = mine
                break
            value = await gw.redis.get(key)
            if value is not None:
                break
        else:
            raise RuntimeError("retry key kept vanishing")
    except Exception as exc:
        log.error("redis unavailable for open311 retries client=%s error=%s", client.id,
                  type(exc).__name__)
        raise ApiError(503, "redis_unavailable", "the request was not stored; retry",
                       headers={"Retry-After": "5"}) from None
    text = value.decode() if isinstance(value, bytes) else str(value)
    external_id, _, at = text.partition(" ")
    try:
        return external_id, datetime.fromisoformat(at)
    except ValueError:  # not written by this code; keep the id, the time is ours
        return external_id, now


async def post_request(request: web.Request) -> web.Response:
    """``POST requests.json``; a ``400`` to an authenticated client counts as a rejected appeal
    (``appeals_gateway_appeals_total{outcome="rejected"}``; the others count in ``publish``)."""
    from workers.intake.gateway import CLIENT_ID

    response = await _post_request(request)
    if response.status == 400 and CLIENT_ID in request:
        metrics.child(metrics.GATEWAY_APPEALS, "rejected").inc()
    return response


async def _post_request(request: web.Request) -> web.Response:
    from workers.intake.gateway import CLIENT_ID, GATEWAY, IDEM_OPEN311, ApiError, item_key

    gw = request.app[GATEWAY]
    try:
        params = await _read_params(request, gw.config.max_body_bytes)
        api_key = params.get("api_key")
        if not isinstance(api_key, str) or not api_key.strip():
            return _errors(401, "api_key was not provided")
        client = gw.client_for_token(api_key.strip())
        request[CLIENT_ID] = client.id
        gw.check_rate(client)
        try:
            service_code = _param(params, "service_code")
            lat = _coordinate(params, "lat", 90.0)
            lon = _coordinate(params, "long", 180.0)
            address = _param(params, "address_string")
            address_id = _param(params, "address_id")
            description = _param(params, "description")
            first_name = _param(params, "first_name")
            last_name = _param(params, "last_name")
            email = _param(params, "email")
            phone = _param(params, "phone")
            media_url = _param(params, "media_url")
            jurisdiction = _param(params, "jurisdiction_id")
            device_id = _param(params, "device_id")
            account_id = _param(params, "account_id")
        except ValueError as exc:
            return _errors(400, str(exc))
        try:
            region = _region(jurisdiction, client.region, gw.settings.default_region)
        except UnknownJurisdiction:
            return _errors(404, _JURISDICTION_NOT_FOUND)
        if service_code is None:
            return _errors(400, "service_code was not provided")
        if service_code not in _SERVICE_NAMES:
            return _errors(400, f"service_code {service_code[:50]!r} not found")
        if (lat is None or lon is None) and address is None and address_id is None:
            return _errors(400, "a location is required: lat and long, or address_string")
        key = request.headers.get("Idempotency-Key")
        key = key.strip() if key else None
        if key is not None and (len(key) > 180 or not key.isprintable()):
            return _errors(400, "bad Idempotency-Key")
        # The SLA clock, which the gateway ages the request on (check_age) and intake reads it
        # by: stamped with the wall clock, every request was refused as too old once a
        # sped-up clock (APPEALS_TIME_SCALE) ran a year ahead.
        now = gw.now()
        if key is not None:
            # Keyed: the key scoped to the client (keys are per client), in Open311's own key
            # space (see keyed_external_id).
            key = item_key(key, None)
            external_id = keyed_external_id(client.id, key)
        else:
            external_id, now = await _retry_identity(gw, client, params, now)
        open311_extra: dict[str, Any] = {"service_code": service_code}
        for name, value in (("lat", lat), ("long", lon), ("address_id", address_id),
                            ("device_id", device_id), ("account_id", account_id),
                            ("jurisdiction_id", jurisdiction)):
            if value is not None:
                open311_extra[name] = value
        item: dict[str, Any] = {
            "schema_version": 1,
            "channel": "web",
            "external_id": external_id,
            "submitted_at": now.isoformat(timespec="seconds"),
            "region": region,
            "text": description or _SERVICE_NAMES[service_code],
            "category_hint": service_code,
            "address": address,
            "author": {
                "name": " ".join(p for p in (last_name, first_name) if p) or None,
                "email": email,
                "phone": phone,
            },
            "attachments": [{"url": media_url}] if media_url else [],
            # The marker registers the request as APPEALS_OPEN311_REGIME, not as the site's
            # form (APPEALS_WEB_REGIME): see workers.intake.core.regime_for.
            "extra": {"source": OPEN311_SOURCE, "open311": open311_extra},
        }
        if not any(item["author"].values()):
            item["author"] = None
        record = gw.prepare(item, 0, client, key, open311=True)
        results = await gw.publish(
            client, [record], [key], key_space=IDEM_OPEN311,
            fingerprint=None if key is None else _request_digest(client.id, params))
        appeal_id = results[0]["appeal_id"]
        # A keyed retry ("duplicate") too: the GET answers only where this record exists, and
        # the first attempt may have ended before writing it (a 504, Redis failing then).
        if results[0]["status"] in ("accepted", "duplicate"):
            await _remember(gw, appeal_id, service_code, now, lat, lon)
    except ApiError as exc:
        if exc.status == 504:
            return _errors(504, "the outcome is unknown: the request may have been stored. "
                           "Resend the same request (with the same Idempotency-Key, if any); "
                           "it cannot be created twice", headers=exc.headers)
        if exc.errors:
            return _errors(exc.status, *(
                f"{e['field']}: {e['message']}" if e.get("field") else e["message"]
                for e in exc.errors))
        return _errors(exc.status, exc.description or exc.error, headers=exc.headers)
    return _ok(201, [{
        "service_request_id": appeal_id,
        "service_notice": "Обращение принято. Срок ответа будет установлен после регистрации.",
        "account_id": None,
    }])


class UnknownJurisdiction(ValueError):
    """A ``jurisdiction_id`` that names no region: GeoReport v2's 404."""


def _region(jurisdiction: str | None, client_region: str | None, default: str) -> str:
    """The appeal's region: ``jurisdiction_id`` when given, else the client's, else the default.

    A ``jurisdiction_id`` must be a region code as :func:`normalize_code` reads it (``22``,
    ``022``, plate aliases such as ``122``); anything else raises :class:`UnknownJurisdiction`.
    It fell back to the default region, so a Moscow request sent with ``RU-MOW`` was routed
    to the default region's bodies and timed on its calendar and time zone. A client's region
    is checked when the clients are loaded.
    """
    if jurisdiction is not None:
        try:
            return normalize_code(jurisdiction)
        except UnknownRegion:
            raise UnknownJurisdiction(jurisdiction) from None
    return client_region or default


_JURISDICTION_NOT_FOUND = "jurisdiction_id provided was not found"


async def _remember(gw: Any, appeal_id: str, service_code: str, at: datetime,
                    lat: float | None, lon: float | None) -> None:
    """Keep what GET needs before the read model knows the appeal (no personal data); its
    existence is also what lets GET answer for the appeal at all. Fields already kept stay
    (``HSETNX``): a retry does not move the request's time."""
    key = OPEN311_KEY.format(prefix=read_model.key_prefix(gw.settings.app_id), appeal_id=appeal_id)
    fields: dict[str, str] = {
        "service_code": service_code,
        "requested_datetime": at.isoformat(timespec="seconds"),
    }
    if lat is not None and lon is not None:
        fields["lat"], fields["long"] = repr(lat), repr(lon)
    try:
        async with gw.redis.pipeline(transaction=False) as pipe:
            for name, value in fields.items():
                pipe.hsetnx(key, name, value)
            pipe.expire(key, gw.config.open311_ttl_s)  # APPEALS_OPEN311_TTL_DAYS
            await pipe.execute()
    except Exception as exc:  # the appeal is in Kafka; GET falls back to the read model
        log.warning("open311 record not stored appeal_id=%s error=%s", appeal_id,
                    type(exc).__name__)


async def get_request(request: web.Request) -> web.Response:
    from workers.intake.gateway import GATEWAY

    gw = request.app[GATEWAY]
    # Hex ids are case-insensitive; a client that prints them in upper case got 404.
    appeal_id = canonical_appeal_id(request.match_info["service_request_id"])
    if not _APPEAL_ID.match(appeal_id):
        return _errors(404, "service_request_id not found")
    try:
        async with gw.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(read_model.appeal_key(read_model.key_prefix(gw.settings.app_id),
                                               appeal_id))
            pipe.hgetall(OPEN311_KEY.format(prefix=read_model.key_prefix(gw.settings.app_id),
                                            appeal_id=appeal_id))
            model, mine = await pipe.execute()
    except Exception as exc:
        log.error("open311 lookup failed appeal_id=%s error=%s", appeal_id, type(exc).__name__)
        return _errors(503, "status store unavailable", headers={"Retry-After": "5"})
    if not mine:
        # Only requests that came in through Open311: the route is public (no credentials in
        # GeoReport v2), and appeal ids are derived from source ids anyone can guess (59-FZ
        # registration numbers, sequential message ids), so answering from the read model
        # alone told anyone an appeal's category, body and dates for any channel. The read
        # model does not keep the source; the gateway's record, written only here at
        # submission, is the marker. An appeal of another channel answers as an unknown one.
        return _errors(404, "service_request_id not found")
    model, mine = model or {}, mine or {}
    status, notes = status_for(_text(model, "status"))
    service_code = _text(model, "category") or _text(mine, "service_code")
    lat, lon = _text(mine, "lat"), _text(mine, "long")
    return _ok(200, [{
        "service_request_id": appeal_id,
        "status": status,
        "status_notes": notes,
        "service_name": _SERVICE_NAMES.get(service_code or ""),
        "service_code": service_code,
        "description": None,  # never kept (personal data); optional in the spec
        "agency_responsible": _text(model, "authority_id"),
        "service_notice": None,
        "requested_datetime": _iso(_text(mine, "requested_datetime"))
        or _iso(_text(model, "registered_at")),
        "updated_datetime": _iso(_text(model, "updated_at")),
        "expected_datetime": _iso(_text(model, "due_at")),
        "address": None,  # never kept (personal data); optional in the spec
        "address_id": None,
        "zipcode": None,
        "lat": float(lat) if lat else None,
        "long": float(lon) if lon else None,
        "media_url": None,
    }])


def setup(app: web.Application) -> None:
    """Mount the Open311 routes on the gateway application."""
    app.router.add_get("/open311/v2/services.json", get_services)
    app.router.add_post("/open311/v2/requests.json", post_request)
    app.router.add_get("/open311/v2/requests/{service_request_id}.json", get_request)
