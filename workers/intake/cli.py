"""Intake sub-commands of ``appeals``: ``produce`` and ``gateway``.

``appeals produce FILE.jsonl [--channel C] [--kafka URL]`` publishes appeals, one JSON object a
line (canonical, or a channel's native shape), through the producer SDK: each line is validated
locally with the intake rules before it is sent, so a broken line is reported with the same
reason code intake would give it and never reaches Kafka. Progress goes to stderr (a line
rewritten in place on a terminal, a line every 10 % otherwise); the summary at the end lists the
lines sent (and the topics they went to) and the lines rejected, grouped by reason with the
first few line numbers and the first refusal's detail (which names the field, not its value).

Exit status: ``0`` when every line was sent, ``1`` when some lines were rejected (the valid ones
*were* sent and acknowledged: a script can tell "partly bad input" from success), ``2`` when
the broker did not acknowledge everything, or the file or broker could not be opened.

``appeals gateway [--host H] [--port P]`` runs the HTTP intake gateway
(:mod:`workers.intake.gateway`) in the foreground.

``register(subparsers)`` adds both to the main CLI; ``main(argv)`` runs them stand-alone.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from schemas.records import CHANNELS
from schemas.validation import InvalidEvent
from workers.cli import (
    broker_unreachable,
    check_listen,
    kafka_errors,
    kafka_failure_message,
    port_number,
    setting_value,
)
from workers.intake.core import loads_json

__all__ = ["main", "produce", "register"]


def register(subparsers: Any) -> None:
    """Add ``produce`` and ``gateway`` to an argparse sub-parser collection."""
    p = subparsers.add_parser(
        "produce",
        help="publish appeals from a JSON Lines file to the intake topics",
        description="Validate each line with the intake rules and publish the valid ones "
        "(acks=all). Exit 0: all sent; 1: some lines rejected (the rest sent); "
        "2: delivery or I/O failure.",
    )
    p.add_argument("file", help="JSON Lines file, one appeal per line ('-' for stdin)")
    p.add_argument("--channel", choices=CHANNELS,
                   help="channel of lines that don't name one (native payloads)")
    # The settings' own checks: a prefix Kafka cannot name topics with ended in a traceback
    # after the file was read, an address that is no host:port in a 30 s bootstrap timeout.
    p.add_argument("--kafka", type=setting_value("kafka"),
                   help="broker URL, kafka://host:port (default: APPEALS_KAFKA)")
    p.add_argument("--topic-prefix", type=setting_value("topic_prefix"), default=None,
                   help="topic name prefix (default: APPEALS_TOPIC_PREFIX)")
    p.add_argument("--idempotence", action="store_true",
                   help="enable the idempotent producer: a retry then writes no broker-side "
                        "duplicate (off by default; intake drops such a repeat by its id "
                        "anyway)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_produce)

    g = subparsers.add_parser(
        "gateway",
        help="run the HTTP intake gateway (POST /v1/appeals, Open311)",
        description="HTTP intake gateway: POST /v1/appeals (one appeal or a batch, with an "
        "Idempotency-Key) and Open311 GeoReport v2, authenticated by client tokens, rate "
        "limited per client, published to Kafka with acks=all. Configured by "
        "APPEALS_GATEWAY_* variables or a [gateway] table of the APPEALS_CONFIG file: "
        "`appeals config` lists them with their defaults.",
    )
    g.add_argument("--host", default=None, help="listen address (default APPEALS_GATEWAY_HOST)")
    g.add_argument("--port", type=port_number, default=None,
                   help="listen port (default APPEALS_GATEWAY_PORT, 8081)")
    g.set_defaults(func=_cmd_gateway)


class _Progress:
    """A progress line on stderr without a dependency: redrawn at most 10 times a second."""

    def __init__(self, stream: IO[str], total: int | None, quiet: bool) -> None:
        self.stream = stream
        self.total = total
        self.quiet = quiet
        self.tty = stream.isatty()
        self.last = 0.0
        self.last_decile = -1
        self.last_line: tuple[int, int, int] | None = None
        self.start = time.monotonic()

    def update(self, done: int, sent: int, rejected: int, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            if not final and now - self.last < 0.1:
                return
            self.last = now
            self.stream.write("\r" + self._line(done, sent, rejected, now)
                              + ("\n" if final else ""))
            self.stream.flush()
        elif self.total:
            decile = done * 10 // self.total
            # The final call repeats the last line's figures when the last line reached 100 %:
            # it was printed twice.
            line = (done, sent, rejected)
            if decile != self.last_decile or (final and line != self.last_line):
                self.last_decile = decile
                self.last_line = line
                self.stream.write(self._line(done, sent, rejected, now) + "\n")

    def _line(self, done: int, sent: int, rejected: int, now: float) -> str:
        rate = done / max(now - self.start, 1e-6)
        if self.total:
            width = 30
            filled = width * done // self.total
            bar = "#" * filled + "." * (width - filled)
            return (f"[{bar}] {done}/{self.total} sent {sent} rejected {rejected} "
                    f"{rate:,.0f}/s")
        return f"{done} lines sent {sent} rejected {rejected} {rate:,.0f}/s"


def produce(
    lines: Sequence[bytes] | IO[bytes],
    producer: Any,
    *,
    channel: str | None = None,
    progress: _Progress | None = None,
    details: dict[str, str] | None = None,
) -> tuple[int, dict[str, list[int]]]:
    """Send each line through ``producer`` (an IntakeProducer); ``(sent, {reason: [line no]})``.

    Blank lines are skipped. Delivery failures surface from ``producer.flush()``. A line Kafka's
    client refuses for its size (``MessageSizeTooLargeError`` from ``send()``) is rejected as
    ``message_too_large`` and the file goes on: it aborted the whole file (exit 2, no summary,
    the lines after it not sent). Other Kafka errors of ``send()`` (no metadata for the topic
    within ``max_block_ms``, a full buffer) are the broker's, not the line's: every later line
    would wait as long for the same error, so they still end the command.

    ``details``, if given, gets the first refusal's detail per reason (see :func:`_detail`).
    """
    from kafka.errors import MessageSizeTooLargeError

    sent = 0
    rejected: dict[str, list[int]] = defaultdict(list)
    done = 0
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        done += 1
        try:
            data = loads_json(raw)
            if not isinstance(data, dict):
                raise InvalidEvent("not_object", "a line must hold a JSON object")
            producer.send(data, channel)
            sent += 1
        except orjson.JSONEncodeError:  # accepted but not writable: that line only, go on
            rejected["unserialisable"].append(lineno)
        except MessageSizeTooLargeError:  # that line only, go on
            rejected["message_too_large"].append(lineno)
        except InvalidEvent as exc:
            rejected[exc.reason].append(lineno)
            if details is not None:
                details.setdefault(exc.reason, _detail(exc))
        if progress is not None:
            progress.update(done, sent, sum(len(v) for v in rejected.values()))
    if progress is not None:
        progress.update(done, sent, sum(len(v) for v in rejected.values()), final=True)
    return sent, dict(rejected)


def _cmd_produce(args: argparse.Namespace) -> int:
    from streams.clock import SlaClock
    from streams.settings import Settings
    from workers.intake.producer import DeliveryError, IntakeProducer

    settings = Settings.load()
    url = args.kafka or settings.kafka
    prefix = settings.topic_prefix if args.topic_prefix is None else args.topic_prefix
    try:
        if args.file == "-":
            lines = sys.stdin.buffer.read().splitlines()
        else:
            with open(args.file, "rb") as fh:
                lines = fh.read().splitlines()
    except OSError as exc:
        print(f"appeals produce: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    total = sum(1 for line in lines if line.strip())
    progress = _Progress(sys.stderr, total, args.quiet)
    unreachable = broker_unreachable(url, wait=3.0)
    if unreachable:
        # kafka-python tries to bootstrap for 30 s before it says so.
        print(f"appeals produce: cannot reach Kafka at {unreachable} "
              f"({'--kafka' if args.kafka else 'APPEALS_KAFKA'}={url}): connection refused or "
              "timed out", file=sys.stderr)
        return 2
    try:
        producer = IntakeProducer(url, prefix, enable_idempotence=args.idempotence,
                                  max_text_length=settings.max_text_length,
                                  max_message_bytes=settings.max_message_bytes,
                                  max_age=settings.intake_max_age,
                                  now=SlaClock(settings.time_scale, settings.clock_epoch).now_dt)
    except Exception as exc:
        print(kafka_failure_message("produce", url, exc,
                                    "--kafka" if args.kafka else "APPEALS_KAFKA"),
              file=sys.stderr)
        return 2
    from kafka.errors import KafkaError

    from streams.topics import TopicMissing

    undelivered = 0
    details: dict[str, str] = {}
    try:
        sent, rejected = produce(lines, producer, channel=args.channel, progress=progress,
                                 details=details)
        try:
            producer.close()
        except DeliveryError as exc:
            undelivered = len(exc.failed)
    except TopicMissing as exc:  # a wrong prefix, or `appeals topics create` not run
        _break_progress(progress)
        sent_before = sum(producer.topics_sent.values())
        with contextlib.suppress(DeliveryError):  # the lines before it: sent if they can be
            producer.close(timeout=10)
        print(f"appeals produce: {exc}"
              + (f"; {sent_before} line(s) before it were sent" if sent_before else ""),
              file=sys.stderr)
        return 2
    except KafkaError as exc:  # e.g. the broker went away
        _break_progress(progress)
        print(f"appeals produce: Kafka error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _break_progress(progress)
        # What is queued gets 5 s to be acknowledged; a delivery error or a flush timeout
        # only leaves those lines out of the count below.
        with contextlib.suppress(Exception):
            producer.close(timeout=5)
        print(_interrupted_summary(producer.acknowledged, total,
                                   settings.dedupe_window_days), file=sys.stderr)
        raise
    print(_summary(sent - undelivered, rejected, undelivered, producer.topics_sent, details),
          file=sys.stderr)
    if undelivered:
        return 2
    return 1 if rejected else 0


def _interrupted_summary(acknowledged: int, total: int, window_days: int) -> str:
    """What a Ctrl-C leaves behind, and that sending the file again is the remedy.

    Why re-sending is safe: an appeal's id derives from its channel and source id (never
    from the run), and intake registers each (channel, source id) once within
    APPEALS_DEDUPE_WINDOW_DAYS (its Redis ``SET NX`` mark; a resend from another offset is
    counted in ``appeals_duplicates_total``). Past the window, or while the workers' Redis is
    down, a repeat is registered again under the same appeal id, which the per-appeal state
    downstream absorbs (workers/intake/agent.py)."""
    return (f"appeals produce: interrupted: the broker acknowledged {acknowledged} of the "
            f"file's {total} line(s) (the others were rejected, not sent yet or not "
            "confirmed); running the same file again is safe within the workers' "
            f"APPEALS_DEDUPE_WINDOW_DAYS ({window_days} here) of this run: appeal ids derive "
            "from the channel and source id, and intake registers each one once in that window")


#: Longest reason detail the summary shows (the line above it names reason and lines).
DETAIL_CHARS = 160


def _detail(exc: InvalidEvent) -> str:
    """What the summary says about a reason: the first refusal's detail, shortened.

    Why it is safe to show: intake's details name the field and the rule, never the value
    (they go into dead letters; a timestamp refused for its year is quoted, which holds no
    personal data). The exception is ``adapter_failed``, whose detail carries a Python
    exception's text, which may quote the payload: only its channel part is shown."""
    detail = exc.detail
    if exc.reason == "adapter_failed":
        detail = detail.split(":", 1)[0] + ": the channel's adapter could not read it"
    detail = " ".join(detail.split())  # one line
    return detail if len(detail) <= DETAIL_CHARS else detail[:DETAIL_CHARS - 1] + "…"


def _break_progress(progress: _Progress) -> None:
    """End a progress line a terminal shows, so a message after it starts a line of its own."""
    if progress.tty and not progress.quiet:
        progress.stream.write("\n")


def _summary(sent: int, rejected: dict[str, list[int]], undelivered: int,
             topics: Mapping[str, int] | None = None,
             details: Mapping[str, str] | None = None) -> str:
    count = sum(len(v) for v in rejected.values())
    out = [f"sent {sent}, rejected {count}" + (f", undelivered {undelivered}" if undelivered
                                                 else "")]
    if topics:
        # Which topics: a prefix nobody reads is visible here (the topics must exist now).
        out.append("  to " + ", ".join(f"{topic} ({n})" for topic, n in sorted(topics.items())))
    for reason, lines in sorted(Counter({r: len(v) for r, v in rejected.items()}).items(),
                                key=lambda kv: (-kv[1], kv[0])):
        where = ", ".join(str(n) for n in rejected[reason][:5])
        more = " ..." if len(rejected[reason]) > 5 else ""
        out.append(f"  {reason}: {lines} (lines {where}{more})")
        if details and reason in details:  # "invalid_value: 6" alone did not say which field
            out.append(f"    first: {details[reason]}")
    return "\n".join(out)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from streams.settings import Settings
    from workers.intake.gateway import GatewayConfig, run_gateway

    settings = Settings.load()
    config = GatewayConfig.load(settings)
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    # Before Kafka is asked for anything: a taken port used to end in a traceback once the
    # producer had started.
    check_listen("gateway", host, port, "--host" if args.host else "APPEALS_GATEWAY_HOST",
                 "--port" if args.port is not None else "APPEALS_GATEWAY_PORT")
    with kafka_errors("gateway", settings.kafka):
        run_gateway(settings, host=host, port=port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appeals", description="citizen-appeals intake")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
