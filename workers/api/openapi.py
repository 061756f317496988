"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``.

Written by hand (no framework generates it) and kept next to the handlers; a test checks that
every route the application serves is documented here and every documented path is served.
"""

from __future__ import annotations

from typing import Any

from workers.aggregates.rating import BREACH_PENALTY, OVERDUE_PENALTY, PRIOR_WEIGHT

_NUM_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
_WINDOW = {"name": "window", "in": "query", "required": False,
           "schema": {"type": "string", "enum": ["1d", "7d", "30d"], "default": "30d"},
           "description": "Rolling window of local days ending today in the region's zone."}


#: Paths that answer without a token: probes, the scrape and this document carry no appeal.
OPEN_PATHS = ("/healthz", "/metrics", "/openapi.json")


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


#: Every path that reads Redis can answer this (the page and /metrics included).
UNAVAILABLE: dict[str, Any] = {
    **_error_response(
        "error.code `unavailable`: the read model (Redis) is not reachable (after a failed read "
        "of the figures it is not retried for one APPEALS_RATING_REFRESH interval, which "
        "Retry-After then counts down; an appeal or the breach list asks Redis again at the next "
        "request, Retry-After 5); or error.code `busy`: every Redis connection of this API "
        "process (APPEALS_API_REDIS_CONNECTIONS) stayed in use for the wait; Redis itself is "
        "fine, retry after Retry-After seconds; or error.code `rebuilding`: Redis answers but "
        "fewer of the APPEALS_PARTITIONS partitions than all have published their figures "
        "({app_id}:agg:partitions) since Redis lost its data, so figures, appeals and breaches "
        "would read as missing (retry after Retry-After seconds); or error.code "
        "`read_model_full`: Redis answers but is over its maxmemory and refuses the read (an "
        "operator must act)"),
    "headers": {"Retry-After": {
        "description": "seconds to wait before retrying (always with `unavailable`, "
                       "`busy` and `rebuilding`; never with `read_model_full`)",
        "schema": {"type": "integer", "minimum": 1}}},
}


def _json(ref: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


RATING_DESCRIPTION = (
    "score = 100 · S · (1 − β·B) · (1 − ω·O), where u = open_overdue + closed_overdue + "
    "redirected_overdue, "
    "n = answered + u, "
    f"S = (answered_on_time + M·p0)/(n + M) with M = {PRIOR_WEIGHT:g} and p0 the region's pooled "
    f"on-time share, B = min(1, breaches/n), O = u/n, β = {BREACH_PENALTY:g}, "
    f"ω = {OVERDUE_PENALTY:g}. Published only when n ≥ APPEALS_RATING_MIN_VOLUME. Ties share a "
    "rank. trend = score − score of the same window ending 7 days earlier."
)


def document(version: str = "0.1.0") -> dict[str, Any]:
    figures = {
        "type": "object",
        "required": ["received", "answered", "answered_on_time", "open", "open_overdue",
                     "breaches", "escalations", "on_time_share"],
        "properties": {
            "authority_id": {"type": "string", "description": "the subject key"},
            "received": {"type": "integer"},
            "answered": {"type": "integer"},
            "answered_on_time": {"type": "integer"},
            "breaches": {"type": "integer"},
            "escalations": {"type": "integer"},
            "open": {"type": "integer", "description": "current, not windowed"},
            "open_overdue": {"type": "integer", "description": "current, not windowed"},
            "closed_overdue": {"type": "integer",
                               "description": "closed unanswered past the deadline, by day closed"},
            "redirected_overdue": {"type": "integer",
                                   "description": "redirected onwards unanswered past this "
                                                  "body's deadline, by day redirected"},
            "on_time_share": {**_NUM_OR_NULL,
                              "description": "answered_on_time / (answered + open_overdue + "
                                             "closed_overdue + redirected_overdue)"},
            "median_response_s": {**_NUM_OR_NULL,
                                  "description": "DDSketch, 1% relative accuracy"},
            "p90_response_s": {**_NUM_OR_NULL, "description": "DDSketch, 1% relative accuracy"},
        },
    }
    rating_entry = {
        "type": "object",
        "description": RATING_DESCRIPTION,
        "properties": {
            "authority_id": {"type": "string"},
            "name": {"type": "string"},
            "rated": {"type": "boolean"},
            "score": _NUM_OR_NULL,
            "rank": {"type": ["integer", "null"]},
            "volume": {"type": "integer"},
            "shrunk_share": _NUM_OR_NULL,
            "breach_rate": _NUM_OR_NULL,
            "overdue_share": _NUM_OR_NULL,
            "previous_score": _NUM_OR_NULL,
            "previous_rank": {"type": ["integer", "null"]},
            "trend": _NUM_OR_NULL,
            "rank_change": {"type": ["integer", "null"]},
            "figures": {"$ref": "#/components/schemas/Figures"},
        },
    }
    authority = {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
            "region": {"type": "string"}, "parent": {"type": ["string", "null"]},
            "municipality": {"type": ["string", "null"]},
            "supervisor_roles": {"type": "array", "items": {"type": "string"}},
            "figures": {"$ref": "#/components/schemas/Figures"},
        },
    }
    breach = {
        "type": "object",
        "properties": {
            "appeal_id": {"type": "string"}, "authority_id": {"type": "string"},
            "category": {"type": ["string", "null"]}, "regime": {"type": "string"},
            "municipality": {"type": ["string", "null"]},
            "due_at": {"type": "string", "format": "date-time"},
            "overdue_s": {"type": "number", "description": "SLA-clock seconds past the deadline"},
            "sla_status": {"type": "string"},
        },
    }
    appeal = {
        "type": "object",
        "description": "Status of one appeal. Carries no personal data.",
        "properties": {
            "appeal_id": {"type": "string"}, "status": {"type": ["string", "null"]},
            "sla_status": {"type": ["string", "null"]}, "regime": {"type": ["string", "null"]},
            "category": {"type": ["string", "null"]},
            "municipality": {"type": ["string", "null"]},
            "authority": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
            "registered_at": {"type": ["string", "null"]},
            "due_at": {"type": ["string", "null"]},
            "answered_at": {"type": ["string", "null"]},
            "updated_at": {"type": ["string", "null"]},
            "overdue_s": _NUM_OR_NULL,
            "open_breach": {"type": "boolean"},
            "stages": {"type": "array", "description": (
                "Tracked stage deadlines (fz59 redirect, incident/hotline final answer)"),
                "items": {"type": "object", "properties": {
                    "stage": {"type": "string"}, "run": {"type": "integer"},
                    "started_at": {"type": "string"}, "due_at": {"type": "string"},
                    "settled_at": {"type": ["string", "null"]},
                    "ended_at": {"type": ["string", "null"]},
                    "breached": {"type": "boolean", "description": "this run's breach"},
                    "breaches": {"type": "integer", "description": "over every run"}}}},
            "duplicate_of": {"type": ["string", "null"], "description": (
                "the earlier appeal this one repeats (intake's near-duplicate flag)")},
            "history": {"type": "array", "items": {"type": "object", "properties": {
                "at": {"type": "string"}, "event": {"type": "string"}}}},
        },
    }
    stats = {
        "type": "object",
        "properties": {
            "subject": {"type": "string"}, "window": {"type": "string"},
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "figures": {"$ref": "#/components/schemas/Figures"},
            "rating": {"oneOf": [{"$ref": "#/components/schemas/RatingEntry"},
                                 {"type": "null"}]},
        },
    }
    bad = _error_response("invalid parameter (e.g. an unknown window); on the /v1 paths also "
                          "error.code `unknown_parameter`, a query parameter the path does "
                          "not list (a misspelt filter is not ignored)")
    missing = _error_response("unknown appeal, authority, region, municipality or category")
    stats_get = {
        "parameters": [_WINDOW],
        "responses": {"200": _json("Stats"), "400": bad, "404": missing, "503": UNAVAILABLE},
    }
    paths: dict[str, Any] = {
        "/healthz": {"get": {"summary": "Liveness and Redis reachability", "responses": {
            "200": {"description": (
                "status `ok`: this process and Redis answer. read_model `rebuilding`: fewer "
                "partitions than APPEALS_PARTITIONS have published their figures since Redis "
                "lost its data, and the figure, appeal and breach paths answer 503 "
                "`rebuilding` meanwhile; still 200, since every replica shares that state and "
                "a restart or a balancer taking them out would not end it"),
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"], "properties": {
                        "status": {"type": "string", "enum": ["ok"]},
                        "read_model": {"type": "string", "enum": ["ready", "rebuilding"]},
                        "partitions_published": {"type": "integer", "minimum": 0},
                        "partitions": {"type": "integer", "minimum": 1}}}}}},
            "503": {"description": "status `redis_unreachable`: Redis not reachable; status "
                                   "`busy` (with Retry-After): every Redis connection of this "
                                   "process stayed in use for the wait",
                    "headers": UNAVAILABLE["headers"]}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (appeals_on_time_ratio, answers by "
                                        "route and code, read model readiness)",
                             "responses": {"200": {
                                 "description": "text exposition format; with Redis away or "
                                                "the read model rebuilding the gauges as last "
                                                "computed and the Redis error counters (never "
                                                "a 503)",
                                 "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/": {"get": {"summary": "Supervisor page (HTML, refreshes itself)",
                      "parameters": [
                          {"name": "region", "in": "query", "schema": {"type": "string"}},
                          _WINDOW],
                      "responses": {"200": {"description": "HTML",
                                            "content": {"text/html": {}}}, "400": bad,
                                    "404": missing, "503": UNAVAILABLE}}},
        "/v1/appeals/{appeal_id}": {"get": {
            "summary": "Status, category, authority, deadlines and history of one appeal",
            "parameters": [{"name": "appeal_id", "in": "path", "required": True,
                            "description": "the appeal id as listed (any characters but "
                                           "control characters, 1-128 of them, not . or ..), "
                                           "percent-encoded: a / as %2F, a space as %20; "
                                           "anything else: 400 bad_appeal_id",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 128,
                                       "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
                                       "not": {"enum": [".", ".."]}}}],
            "responses": {"200": _json("Appeal"), "400": bad, "404": missing,
                          "503": UNAVAILABLE}}},
        "/v1/authorities": {"get": {
            "summary": "Authorities of the routing rules with their current figures",
            "parameters": [{"name": "region", "in": "query", "schema": {"type": "string"}},
                           _WINDOW],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "window": {"type": "string"},
                    "authorities": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Authority"}}}}}}},
                "400": bad, "404": missing, "503": UNAVAILABLE}}},
        "/v1/authorities/{authority_id}/stats": {"get": {
            **stats_get, "summary": "Figures and rating of one authority in a window",
            "parameters": [{"name": "authority_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _WINDOW]}},
        "/v1/municipalities/{municipality_id}/stats": {"get": {
            **stats_get, "summary": "Figures of the appeals from one municipality",
            "parameters": [{"name": "municipality_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _WINDOW]}},
        "/v1/categories/{category}/stats": {"get": {
            **stats_get, "summary": "Figures of one category of appeals",
            "parameters": [{"name": "category", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _WINDOW]}},
        "/v1/ratings": {"get": {
            "summary": "Rating of a region's authorities: rated by rank, then unrated",
            "description": RATING_DESCRIPTION,
            "parameters": [{"name": "region", "in": "query", "schema": {"type": "string"},
                            "description": "region code (default APPEALS_DEFAULT_REGION)"},
                           _WINDOW],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "region": {"type": "string"}, "window": {"type": "string"},
                    "computed_at": {"type": "string"}, "min_volume": {"type": "integer"},
                    "entries": {"type": "array",
                                "items": {"$ref": "#/components/schemas/RatingEntry"}}}}}}},
                "400": bad, "404": missing, "503": UNAVAILABLE}}},
        "/v1/breaches": {"get": {
            "summary": "Open breached appeals, most overdue first",
            "description": "authority and region both filter when both are given (an "
                           "authority outside the region: none). total is the number of "
                           "open breaches of the authorities asked for (all of them "
                           "unfiltered, on every page, not only those after the cursor), "
                           "read from per-authority indexes; entries whose appeal record is "
                           "gone count until they are met. Pages: pass the answer's "
                           "next_cursor as cursor (with the same filters) for the breaches "
                           "after the last one listed, until next_cursor is null; a breach "
                           "that stays open is listed once over the pages whatever comes or "
                           "goes between them (one that opens behind the cursor shows on a "
                           "listing started again).",
            "parameters": [
                {"name": "authority", "in": "query", "schema": {"type": "string"}},
                {"name": "region", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"},
                 "description": "next_cursor of the page before, unchanged (opaque; anything "
                                "else: 400 bad_cursor)"}],
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": {"type": "object",
                           "required": ["total", "truncated", "breaches", "next_cursor"],
                           "properties": {
                    "next_cursor": {"type": ["string", "null"],
                                    "description": "cursor of the next page; null on the "
                                                   "last"},
                    "total": {"type": "integer"},
                    "truncated": {"type": "boolean",
                                  "description": "always false: every count is complete "
                                                 "(kept for clients of the earlier scan "
                                                 "limit)"},
                    "breaches": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Breach"}}}}}}},
                "400": bad, "404": missing, "503": UNAVAILABLE}}},
    }
    # Bearer on every path when APPEALS_API_TOKENS is set; these three stay open (probes,
    # the scrape, this document), which an empty ``security`` list says per operation.
    for path in OPEN_PATHS:
        for operation in paths[path].values():
            operation["security"] = []
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "citizen-appeals read API",
            "version": version,
            "description": "Appeal status, authorities' figures and the rating of authorities. "
                           "Read-only, derived from Kafka through the Redis read model; "
                           "no personal data. When APPEALS_API_TOKENS is set every path "
                           "but /healthz, /metrics and /openapi.json needs "
                           "`Authorization: Bearer <token>` (else 401 with WWW-Authenticate); "
                           "appeal ids are guessable, so that token (or an authenticating "
                           "proxy) is what keeps appeals from being read by anyone.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Figures": figures,
            "RatingEntry": rating_entry,
            "Authority": authority,
            "Breach": breach,
            "Appeal": appeal,
            "Stats": stats,
            }},
    }
