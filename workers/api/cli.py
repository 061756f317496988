"""``appeals api``: the HTTP API and supervisor page as their own process."""

from __future__ import annotations

import argparse
import sys

from workers.cli import port_number, setting_value


def cmd_api(args: argparse.Namespace) -> int:
    from workers.api.app import run_api
    from workers.cli import (
        API_WITHOUT_REDIS,
        _override,
        _settings,
        check_listen,
        setup_logging,
        warn_if_redis_unreachable,
    )
    from workers.routing.loader import RulesError, default_rules_path

    settings = _settings()
    if args.redis:
        settings = _override(settings, redis=args.redis)
    setup_logging(settings.log_level)
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    check_listen("api", host, port, "--host" if args.host else "APPEALS_API_HOST",
                 "--port" if args.port is not None else "APPEALS_API_PORT")
    warn_if_redis_unreachable(settings.redis, API_WITHOUT_REDIS,
                              "--redis" if args.redis else "APPEALS_REDIS")
    try:
        run_api(settings, host, port)
    except RulesError as exc:  # at start-up only: a running API keeps its rules on a bad edit
        path = settings.routing_rules or str(default_rules_path())
        problems = [f"{f}: {p or '<root>'}: {m}" for f, p, m in exc.problems]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        print(f"appeals api: invalid routing rules (APPEALS_ROUTING_RULES={path}): "
              + "; ".join(problems[:3]) + more, file=sys.stderr)
        return 2
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "api",
        help="serve the HTTP API (appeal status, figures, ratings) and the supervisor page",
        description=(
            "Serve the read API (/v1/appeals/{id}, /v1/authorities, /v1/authorities/{id}/stats, "
            "/v1/municipalities/{id}/stats, /v1/categories/{code}/stats, /v1/ratings, "
            "/v1/breaches, /openapi.json, /healthz, /metrics) and the supervisor "
            "page (/) from the Redis read model. Recomputes figures and ratings every "
            "APPEALS_RATING_REFRESH seconds and publishes the ratings to Redis. Read-only: run "
            "as many as you like."
        ),
    )
    p.add_argument("--host", help="listen address (default APPEALS_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=port_number,
                   help="listen port (default APPEALS_API_PORT, 8080)")
    p.add_argument("--redis", type=setting_value("redis"),
                   help="override APPEALS_REDIS (redis://host:port/db)")
    p.set_defaults(func=cmd_api)
