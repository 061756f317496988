"""``appeals``: the one command-line entry point (worker, demo, tools of every sub-system).

Sub-systems contribute their own sub-commands through a ``register(subparsers)`` function, so
this module only wires them together and keeps the top-level ``--help`` readable.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from streams.settings import OTHER_VARIABLES, TOOLING_VARIABLES, ConfigError, Settings, _coerce

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


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors as one line (``appeals api: error: argument --port: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# -- argparse types: a bad option value is a one-line usage error naming the option, exit 2.

def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def demo_time_scale(text: str) -> float:
    """``--time-scale`` of the demo: > 0 and slow enough that the SLA clock stays within the
    years events may carry (``schemas.validation.MAX_YEAR``) through start-up and a minute,
    and that an appeal waiting out the workers' start-up is not older than intake accepts
    (``APPEALS_INTAKE_MAX_AGE``)."""
    import time

    from schemas.validation import MAX_YEAR
    from workers.demo.runner import (
        DEFAULT_INTAKE_MAX_AGE,
        MIN_RUN_SECONDS,
        STARTUP_SECONDS,
        max_time_scale,
    )

    value = positive_float(text)
    try:
        max_age = Settings.load(only={"intake_max_age"}).intake_max_age
    except ConfigError:
        max_age = DEFAULT_INTAKE_MAX_AGE  # the demo's own load reports the bad value
    by_year = max_time_scale(time.time(), math.inf)
    limit = min(by_year, max_time_scale(time.time(), max_age))
    if value > limit:
        why = (f"the SLA clock passes the end of {MAX_YEAR}, the last year events may carry, "
               f"before the workers are up and {MIN_RUN_SECONDS:g} s have streamed"
               if limit == by_year else
               f"an appeal waiting up to {STARTUP_SECONDS:g} s for the workers to start is "
               f"older than APPEALS_INTAKE_MAX_AGE ({max_age / 86400:g} days) when intake "
               "reads it, and is dead-lettered")
        raise argparse.ArgumentTypeError(
            f"must be at most {limit:.3g} ({limit / 86400:.3g} SLA days a second), got "
            f"{text}: faster, {why}")
    return value


def finite_float(text: str) -> float:
    """A number that is not nan or inf; its range is the command's to check (``bench`` lets
    a run it leaves out have any value, and says which option to drop)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def setting_value(name: str) -> Callable[[str], Any]:
    """An argparse type for an option overriding setting ``name``: the setting's own checks."""
    field = next(f for f in dataclasses.fields(Settings) if f.name == name)

    def parse(text: str) -> Any:
        try:
            value = _coerce(name, text, field.default, str(field.type))
            Settings().replace(**{name: value})
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        print(f"appeals: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# -- Kafka not reachable: one line naming APPEALS_KAFKA and the address, exit 2 (as `produce`).

def kafka_cause(exc: BaseException) -> BaseException | None:
    """The Kafka client error behind ``exc`` (itself, or what ``ensure_topics``' RuntimeError
    wraps), or None when ``exc`` is something else."""
    from kafka.errors import KafkaError

    kinds: tuple[type[BaseException], ...] = (KafkaError,)
    try:
        from aiokafka.errors import KafkaError as AioKafkaError

        kinds += (AioKafkaError,)
    except ImportError:  # pragma: no cover
        pass
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, kinds):
            return candidate
    return None


def kafka_failure_message(command: str, url: str, exc: BaseException,
                          source: str = "APPEALS_KAFKA") -> str:
    """``appeals CMD: cannot reach Kafka at host:port (APPEALS_KAFKA=url): Error: detail``."""
    cause = kafka_cause(exc) or exc
    name = type(cause).__name__
    detail = str(cause)
    if not detail.startswith(name):  # kafka-python's errors print their class name already
        detail = f"{name}: {detail}" if detail else name
    bootstrap = url.split("://", 1)[-1].replace(";", ",")
    return f"appeals {command}: cannot reach Kafka at {bootstrap} ({source}={url}): {detail}"


#: How long a command waits for the broker to accept a connection before it says it cannot
#: reach it: long enough for a broker that is still starting, far shorter than kafka-python's
#: 30 s bootstrap with a log line per attempt.
BROKER_WAIT_S = 5.0


def broker_unreachable(url: str, wait: float = BROKER_WAIT_S) -> str:
    """The bootstrap addresses of ``url`` when none of them accepts a TCP connection within
    ``wait`` seconds ("" when one does, or when an address is not host:port: the client then
    says what is wrong)."""
    import socket
    import time

    from workers.intake.producer import bootstrap_from_url

    addresses = [a.strip() for a in bootstrap_from_url(url).split(",") if a.strip()]
    endpoints: list[tuple[str, int]] = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            return ""
        endpoints.append((host.strip("[]") or "localhost", int(port)))
    deadline = time.monotonic() + wait
    while True:
        for endpoint in endpoints:
            left = deadline - time.monotonic()
            try:
                with socket.create_connection(endpoint, timeout=max(0.5, min(3.0, left))):
                    return ""
            except OSError:
                continue
        if time.monotonic() >= deadline:
            return ", ".join(addresses)
        time.sleep(0.25)


@contextlib.contextmanager
def kafka_errors(command: str, url: str, source: str = "APPEALS_KAFKA") -> Iterator[None]:
    """Turn a Kafka client error raised inside into one line on stderr and exit status 2;
    a broker that accepts no connection is reported that way before anything is asked of it
    (kafka-python tried for 30 s and logged ~40 lines first)."""
    unreachable = broker_unreachable(url)
    if unreachable:
        print(f"appeals {command}: cannot reach Kafka at {unreachable} ({source}={url}): "
              f"no connection accepted within {BROKER_WAIT_S:g} s", file=sys.stderr)
        raise SystemExit(2)
    try:
        yield
    except Exception as exc:
        if kafka_cause(exc) is None:
            raise
        print(kafka_failure_message(command, url, exc, source), file=sys.stderr)
        raise SystemExit(2) from None


# -- Redis not reachable: running without it is by design, but say so once, naming the setting
# and the address (a worker pointed at a wrong Redis logged ~200 warnings in 90 s naming
# neither, the API only "rating refresh failed: ConnectionError").

#: Seconds the start-up PING may take: a Redis that answers at all answers in milliseconds.
REDIS_PROBE_S = 2.0


def redis_problem(url: str, timeout: float = REDIS_PROBE_S) -> BaseException | None:
    """The error of one PING to ``url`` (connect and reply within ``timeout`` s), or None."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                  retry_on_timeout=False)
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        return exc
    finally:
        client.close()
    return None


def warn_if_redis_unreachable(url: str, without: str, source: str = "APPEALS_REDIS") -> bool:
    """One WARNING when Redis at ``url`` does not answer a PING; True when it does.

    The URL is shown with its password replaced (:func:`streams.urls.redacted_url`), the error
    by its class only (a message could quote the server's reply)."""
    from streams.urls import redacted_url

    problem = redis_problem(url)
    if problem is None:
        return True
    log.warning("%s=%s unreachable (%s): running without %s until it is back", source,
                redacted_url(url), type(problem).__name__, without)
    return False


#: What a worker does without Redis (README, "Derived data is rebuilt").
WORKER_WITHOUT_REDIS = ("intake's exact dedupe and near-duplicate flags, the SLA due-time index "
                        "and the read model (rebuilt from the SLA table)")
#: What the API does without Redis.
API_WITHOUT_REDIS = ("the read model (requests that need it answer 503 unavailable; ratings "
                     "are not refreshed)")


# -- A listen address that cannot be used: one line naming the setting, exit 2, before anything
# starts (the API and the gateway ended in a traceback; a worker found out after it had joined
# the consumer group, when its metrics task died).

def check_listen(command: str, host: str, port: int, host_source: str,
                 port_source: str) -> None:
    """Exit 2 with one line when ``host:port`` cannot be listened on: an unknown host, an
    address of no interface, a port in use or not allowed. Binds every address ``host``
    stands for as the servers do (SO_REUSEADDR, as asyncio's ``create_server``), then lets go.
    """
    import errno
    import socket

    def fail(source: str, value: Any, reason: str) -> NoReturn:
        print(f"appeals {command}: cannot listen on {host}:{port} ({source}={value}): {reason}",
              file=sys.stderr)
        raise SystemExit(2)

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        fail(host_source, host, f"unknown host ({getattr(exc, 'strerror', None) or exc})")
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    fail(port_source, port, reason)
                fail(host_source, host, reason)


def _override(settings: Settings, **changes: Any) -> Settings:
    try:
        return settings.replace(**changes)
    except ConfigError as exc:  # a combination the single-option checks cannot see
        print(f"appeals: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def check_faust_patches(settings: Settings) -> None:
    """Stop with one line, exit 2, when a Faust patch the loss fixes rest on cannot be
    installed on this faust-streaming (unless APPEALS_REQUIRE_FAUST_PATCHES=false)."""
    from streams.faust_patches import FaustPatchError, check

    try:
        check(settings, warn=False)  # create_app warns, once
    except FaustPatchError as exc:
        print(f"appeals worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def check_classifier(settings: Settings, command: str = "worker") -> None:
    """Exit 2 with one line when APPEALS_CLASSIFIER_MODEL is not a model this version reads.

    Loaded here, before Kafka, with the classifier's own checks (format, lexicons): a wrong
    file otherwise failed in build_worker after the topics were ensured. The load is cached,
    so the worker's own costs nothing more."""
    if not settings.classifier_model:
        return
    from workers.classification.classifier import load_classifier
    from workers.classification.dataio import DataError

    try:
        load_classifier(settings.classifier_model)
    except (DataError, OSError) as exc:
        print(f"appeals {command}: APPEALS_CLASSIFIER_MODEL={settings.classifier_model}: "
              f"cannot load the model: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    changes: dict[str, Any] = {}
    if args.kafka:
        changes["kafka"] = args.kafka
    if args.redis:
        changes["redis"] = args.redis
    if args.metrics_port is not None:
        changes["metrics_port"] = args.metrics_port
    settings = _override(settings, **changes)
    if settings.metrics_port:  # 0: any free port, always there
        check_listen("worker", settings.metrics_host, settings.metrics_port,
                     "APPEALS_METRICS_HOST",
                     "--metrics-port" if args.metrics_port is not None
                     else "APPEALS_METRICS_PORT")
    setup_logging(settings.log_level)
    from streams.topics import ensure_topics
    from workers.intake.agent import check_environment
    from workers.pipeline import run_worker

    check_environment()  # a bad APPEALS_NEAR_DUP_* or APPEALS_PHONE_REGION: one line, exit 2
    check_faust_patches(settings)  # before Kafka: a Faust the patches do not fit, one line
    check_classifier(settings)
    with kafka_errors("worker", settings.kafka, "--kafka" if args.kafka else "APPEALS_KAFKA"):
        ensure_topics(settings)
    warn_if_redis_unreachable(settings.redis, WORKER_WITHOUT_REDIS,
                              "--redis" if args.redis else "APPEALS_REDIS")
    from streams.rocksdb_store import DataDirInUse

    try:
        run_worker(settings, create_topics=False)
    except DataDirInUse as exc:  # a second worker on one APPEALS_DATA_DIR: one line, exit 2
        print(f"appeals worker: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.metrics_port and args.metrics_port + args.workers - 1 > 65535:
        print(f"appeals demo: --metrics-port {args.metrics_port} leaves no port for worker "
              f"{args.workers} (ports {args.metrics_port}..{args.metrics_port + args.workers - 1})",
              file=sys.stderr)
        return 2
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
        with kafka_errors("topics create", settings.kafka):
            created = ensure_topics(settings)
        print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))
    else:
        for spec in SPECS:
            origin = "external" if spec.external else "pipeline"
            print(f"{topic_name(settings, spec.name):32} {origin:9} {spec.description}")
    return 0


def cmd_config(_: argparse.Namespace) -> int:
    # The settings are loaded as every command loads them: a broken APPEALS_CONFIG file or a bad
    # variable is one line and exit 2 here too (the defaults were printed, exit 0, while
    # `appeals api` refused the same file).
    _settings()
    for var, default, meaning in Settings.describe():
        print(f"{var:30} {default:28} {meaning}")
    print("\nRead by sub-systems straight from the environment (gateway ones also from a "
          "[gateway] table of the APPEALS_CONFIG file):")
    for var, default, meaning in OTHER_VARIABLES:
        print(f"{var:30} {default:28} {meaning}")
    print("\nRead only by the project's tests and scripts (any other APPEALS_* variable is "
          "warned about at start-up, with the setting it most resembles):")
    for var, default, meaning in TOOLING_VARIABLES:
        print(f"{var:30} {default:28} {meaning}")
    print("\nAPPEALS_CONFIG names a TOML file whose keys are the lower-case names without the "
          "APPEALS_ prefix; the environment overrides the file. Values are checked like "
          "environment values; a key that is not a setting is an error, except tables "
          "(sections such as [gateway], whose keys `appeals gateway` checks likewise when it "
          "starts).")
    return 0


#: The distribution ``appeals`` is installed as (pyproject.toml's project name).
DISTRIBUTION = "citizen-appeals"


def package_version() -> str:
    """The installed version of :data:`DISTRIBUTION`; a checkout run without installing says
    so rather than failing (``--version`` must answer wherever ``--help`` does)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "(version unknown: not installed, run from a source tree)"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="appeals",
        description=(
            "Citizens' appeals processing on Kafka/Faust: intake, classification, routing, "
            "SLA timers on the Russian production calendar, ratings of authorities."
        ),
        epilog="Configuration comes from APPEALS_* environment variables: see `appeals config`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "worker",
        help="run the pipeline workers against an external Kafka and Redis",
        description=(
            "Run every agent (intake, lifecycle, classify+route, triage, SLA, notify, "
            "notify-retry) in one process. "
            "Start several for scale-out: they share the work through the consumer group. "
            "Kafka and Redis come from APPEALS_KAFKA and APPEALS_REDIS."
        ),
    )
    p.add_argument("--kafka", type=setting_value("kafka"),
                   help="override APPEALS_KAFKA (kafka://host:port)")
    p.add_argument("--redis", type=setting_value("redis"),
                   help="override APPEALS_REDIS (redis://host:port/db)")
    p.add_argument("--metrics-port", type=port_number, help="override APPEALS_METRICS_PORT")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "demo",
        help="run everything locally: broker, Redis, workers, a stream of synthetic appeals",
        description=(
            "Start a local Kafka-protocol broker (Tansu) and Redis on free loopback ports, "
            "create the topics, run the workers, feed synthetic Russian-language appeals and "
            "authorities' answers (some late, so warnings and breaches happen) on a sped-up "
            "SLA clock, serve /metrics, print a live summary and a final one, stop everything. "
            "Ctrl-C (or SIGTERM) drains the pipeline, prints the final summary and stops "
            "everything it started; a second Ctrl-C stops without draining. Closing the "
            "terminal does the same, writing the rest to <log-dir>/demo-after-hangup.log."
        ),
    )
    p.add_argument("--duration", type=positive_float, default=None,
                   help="seconds of streaming after start-up, > 0 (default: until Ctrl-C)")
    p.add_argument("--rate", type=positive_float, default=50.0,
                   help="appeals per second (default 50)")
    p.add_argument("--time-scale", type=demo_time_scale, default=86400.0,
                   help="SLA-clock seconds per real second (default 86400: a day a second; at "
                        "most APPEALS_INTAKE_MAX_AGE / 120 s, about 2.6e5 with its default of "
                        "365 days, so an appeal waiting out the workers' start-up is not too "
                        "old for intake, and never so fast that the clock leaves the years "
                        "events may carry)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes, at least 1 (default 1)")
    p.add_argument("--metrics-port", type=port_number, default=None,
                   help="first worker's /metrics port on 127.0.0.1, an error if taken; 0 = any "
                        "free port (default: 9464, or a free port with a notice if 9464 is "
                        "taken)")
    p.add_argument("--seed", type=int, default=22, help="random seed of the generator")
    p.add_argument("--log-dir", default="var/demo", help="where logs go (default var/demo)")
    p.add_argument("--quiet", action="store_true", help="only the summaries, no info logs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("topics", help="list or create the Kafka topics",
                       description="List the topics, or create the missing ones (idempotent).")
    p.add_argument("action", choices=("list", "create"), nargs="?", default="list",
                   help="list (default) or create the missing topics")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser(
        "config", help="print every setting, its default and meaning",
        description="Print every APPEALS_* variable the code reads: the settings (environment, "
                    "else the APPEALS_CONFIG TOML file, else the default) with their defaults "
                    "and meanings, then the variables sub-systems read on their own.")
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


def _dispatch(args: argparse.Namespace) -> Any:
    if args.command == "classify":
        # Through the group's own wrapper: data errors become one line and exit status 2.
        from workers.classification.cli import run

        return run(args)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the sub-commands' modules are imported
        return interrupted(whole_process=argv is None)


def _main(argv: Sequence[str] | None) -> int:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = _dispatch(args)
        sys.stdout.flush()
    except ConfigError as exc:  # settings read by a command or a sub-system (APPEALS_GATEWAY_*)
        print(f"appeals: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``appeals config | head``): no traceback, and nothing more to
        # flush into the closed pipe at exit. 141 is a shell's status for a SIGPIPE death.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return int(result or 0)


#: A shell's status for a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


def interrupted(whole_process: bool = True) -> int:
    """One line and the Ctrl-C status, for a command the operator stopped with Ctrl-C.

    Why here: every command waits on something an operator may give up on (stdin, a broker
    that is not up, a long run), and each one ended in a KeyboardInterrupt traceback. The
    clean-up (``finally`` blocks, context managers stopping child processes) has already run
    when the exception gets here. With ``whole_process`` (``appeals`` run as a program, not
    ``main([...])`` in a test) a further Ctrl-C while the interpreter shuts down (joining
    threads, flushing) ends the process at once, by the signal, instead of printing another
    traceback.
    """
    if whole_process:
        import signal

        with contextlib.suppress(ValueError):  # not the main thread: nothing to change
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        print("appeals: interrupted", file=sys.stderr, flush=True)
    return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
