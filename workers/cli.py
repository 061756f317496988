"""``appeals``: the one command-line entry point (worker, demo, tools of every sub-system).

Sub-systems contribute their own sub-commands through a ``register(subparsers)`` function, so
this module only wires them together and keeps the top-level ``--help`` readable.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from streams.settings import ConfigError, Settings

log = logging.getLogger("appeals")

# Optional sub-command groups: (module, what it adds). Each module has ``register(subparsers)``.
PLUGINS: tuple[tuple[str, str], ...] = (
    ("workers.deadlines.cli", "sla"),
    ("workers.classification.cli", "classify"),
    ("workers.intake.cli", "produce, gateway"),
    ("workers.api.cli", "api"),
    ("workers.bench.cli", "bench"),
)


def setup_logging(level: str = "info") -> None:
    """One line per record, UTC timestamps; Kafka clients' chatter kept to warnings."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka", "faust.transport", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        print(f"appeals: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.kafka:
        settings = settings.replace(kafka=args.kafka)
    if args.redis:
        settings = settings.replace(redis=args.redis)
    if args.metrics_port is not None:
        settings = settings.replace(metrics_port=args.metrics_port)
    setup_logging(settings.log_level)
    from workers.pipeline import run_worker

    run_worker(settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging("warning" if args.quiet else "info")
    from workers.demo.runner import DemoOptions, run_demo

    return run_demo(DemoOptions(
        duration=args.duration, rate=args.rate, time_scale=args.time_scale,
        workers=args.workers, metrics_port=args.metrics_port, seed=args.seed,
        log_dir=args.log_dir,
    ))


def cmd_topics(args: argparse.Namespace) -> int:
    settings = _settings()
    setup_logging(settings.log_level)
    from streams.topics import SPECS, ensure_topics, topic_name

    if args.action == "create":
        created = ensure_topics(settings)
        print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))
    else:
        for spec in SPECS:
            origin = "external" if spec.external else "pipeline"
            print(f"{topic_name(settings, spec.name):32} {origin:9} {spec.description}")
    return 0


def cmd_config(_: argparse.Namespace) -> int:
    for var, default, meaning in Settings.describe():
        print(f"{var:30} {default:28} {meaning}")
    print("\nAPPEALS_CONFIG names a TOML file whose keys are the lower-case names without the "
          "APPEALS_ prefix; the environment overrides the file.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appeals",
        description=(
            "Citizens' appeals processing on Kafka/Faust: intake, classification, routing, "
            "SLA timers on the Russian production calendar, ratings of authorities."
        ),
        epilog="Configuration comes from APPEALS_* environment variables: see `appeals config`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "worker",
        help="run the pipeline workers against an external Kafka and Redis",
        description=(
            "Run every agent (intake, lifecycle, classify+route, SLA, notify) in one process. "
            "Start several for scale-out: they share the work through the consumer group. "
            "Kafka and Redis come from APPEALS_KAFKA and APPEALS_REDIS."
        ),
    )
    p.add_argument("--kafka", help="override APPEALS_KAFKA (kafka://host:port)")
    p.add_argument("--redis", help="override APPEALS_REDIS (redis://host:port/db)")
    p.add_argument("--metrics-port", type=int, help="override APPEALS_METRICS_PORT")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "demo",
        help="run everything locally: broker, Redis, workers, a stream of synthetic appeals",
        description=(
            "Start a local Kafka-protocol broker (Tansu) and Redis on free loopback ports, "
            "create the topics, run the workers, feed synthetic Russian-language appeals and "
            "authorities' answers (some late, so warnings and breaches happen) on a sped-up "
            "SLA clock, serve /metrics, print a live summary and a final one, stop everything. "
            "Ctrl-C stops it cleanly."
        ),
    )
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of streaming after start-up (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=50.0, help="appeals per second (default 50)")
    p.add_argument("--time-scale", type=float, default=86400.0,
                   help="SLA-clock seconds per real second (default 86400: a day a second)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--metrics-port", type=int, default=9464,
                   help="first worker's /metrics port; 0 = any free port (default 9464)")
    p.add_argument("--seed", type=int, default=22, help="random seed of the generator")
    p.add_argument("--log-dir", default="var/demo", help="where logs go (default var/demo)")
    p.add_argument("--quiet", action="store_true", help="only the summaries, no info logs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("topics", help="list or create the Kafka topics",
                       description="List the topics, or create the missing ones (idempotent).")
    p.add_argument("action", choices=("list", "create"), nargs="?", default="list")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("config", help="print every setting, its default and meaning")
    p.set_defaults(func=cmd_config)

    for module_name, _what in PLUGINS:
        register = _plugin(module_name)
        if register is not None:
            register(sub)
    return parser


def _plugin(module_name: str) -> Callable[[argparse._SubParsersAction], None] | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, "register", None)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
