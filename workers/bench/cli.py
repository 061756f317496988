"""``appeals bench``: throughput, latency and scale-out of the pipeline, in one command.

Registered into the main CLI by :func:`register`; the work is in :mod:`workers.bench.runner`.
Progress goes to stderr, so ``--json`` leaves exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from workers.cli import finite_float, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark the pipeline against a bare aiokafka ceiling and a naive Faust agent",
        description=(
            "Start the embedded broker and Redis, pre-produce N realistic appeals and their "
            "lifecycle events, and measure in one run: a bare aiokafka consume+decode loop "
            "(the ceiling), a naive one-event-at-a-time Faust agent with a table counter, the "
            "full pipeline in one worker process, intake->routed latency at a steady rate, and "
            "two workers against one (speed-up), and exactly-once in effect across a "
            "rebalance (a second worker joining mid-stream). Compare the "
            "ratios: absolute figures depend on what else runs on the machine."
        ),
    )
    p.add_argument("--events", type=int, default=200_000,
                   help="appeals to pre-produce (default 200000; the ceiling needs more than "
                        "10000, one fetch of its loop, to be timed)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--skip-latency", action="store_true", help="skip the latency run")
    p.add_argument("--latency-shared-broker", action="store_true",
                   help="run the latency phase on the broker the other phases filled instead "
                        "of a fresh one (the embedded broker stalls more the more it holds)")
    p.add_argument("--skip-scaleout", action="store_true", help="skip the 2-worker run")
    p.add_argument("--scaleout-events", type=int, default=50_000,
                   help="appeals in the 2-worker run (default 50000, at most --events)")
    p.add_argument("--rebalance-events", type=int, default=20_000,
                   help="appeals in the rebalance run: half are pre-produced, the second "
                        "worker starts once the first has committed 30%% of the work, and the "
                        "other half is sent while the run goes on, so the rebalance happens "
                        "with input still arriving (default 20000, at most --events)")
    p.add_argument("--latency-seconds", type=finite_float, default=60.0,
                   help="length of the steady-rate latency run (default 60)")
    p.add_argument("--latency-rate", type=int, default=1000,
                   help="appeals per second in the latency run (default 1000)")
    p.add_argument("--naive-seconds", type=positive_float, default=25.0,
                   help="time cap of the naive baseline, from its first event (default 25)")
    # Checked here: nan, inf, 0 or a negative count ended in a traceback after the broker and
    # Redis had started (review of the CLI, D6). --latency-rate, --latency-seconds and
    # --scaleout-events are checked by cmd_bench only when their run is not left out.
    p.add_argument("--partitions", type=positive_int, default=4,
                   help="partitions per topic (default 4)")
    p.add_argument("--no-lifecycle", action="store_true",
                   help="appeals only, no authorities' lifecycle events")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="override APPEALS_BATCH_SIZE of the measured workers")
    p.add_argument("--batch-linger", type=float, default=None,
                   help="override APPEALS_BATCH_LINGER of the measured workers")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override any worker setting of the measured workers, by its field "
                        "name (see `appeals config`), e.g. --set stream_buffer=32768; "
                        "repeatable")
    p.add_argument("--log-dir", type=Path, default=Path("var/bench"),
                   help="logs and probe status files (default var/bench)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import logging

    from streams.devstack import DevStackError
    from workers.bench.runner import (
        Bench,
        BenchError,
        BenchOptions,
        command_line,
        parse_overrides,
        render_table,
    )

    logging.basicConfig(level=logging.WARNING)
    if args.events < 1000:
        print("appeals bench: --events must be at least 1000", file=sys.stderr)
        return 2
    if not args.skip_latency:
        problem = ""
        if args.latency_seconds <= 0 or args.latency_rate <= 0:
            problem = "--latency-seconds and --latency-rate must be positive"
        elif int(args.latency_rate * args.latency_seconds) < 2:
            problem = ("--latency-rate x --latency-seconds must make at least 2 appeals, the "
                       "fewest that give percentiles")
        if problem:
            print(f"appeals bench: {problem} (got {args.latency_rate} appeals/s for "
                  f"{args.latency_seconds:g} s); --skip-latency leaves the latency run out",
                  file=sys.stderr)
            return 2
    if not args.skip_scaleout and args.scaleout_events < 1:
        print(f"appeals bench: --scaleout-events must be at least 1 (got "
              f"{args.scaleout_events}); --skip-scaleout leaves the 2-worker run out",
              file=sys.stderr)
        return 2
    if not args.skip_scaleout and args.rebalance_events < 1:
        print(f"appeals bench: --rebalance-events must be at least 1 (got "
              f"{args.rebalance_events}); --skip-scaleout leaves the 2-worker runs out",
              file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as exc:
        print(f"appeals bench: {exc}", file=sys.stderr)
        return 2
    opts = BenchOptions(
        events=args.events, latency_seconds=args.latency_seconds,
        latency_rate=args.latency_rate, naive_cap_seconds=args.naive_seconds,
        partitions=args.partitions, skip_latency=args.skip_latency,
        latency_shared_broker=args.latency_shared_broker,
        skip_scaleout=args.skip_scaleout, scaleout_events=args.scaleout_events,
        rebalance_events=args.rebalance_events,
        lifecycle=not args.no_lifecycle,
        log_dir=args.log_dir, batch_size=args.batch_size, batch_linger=args.batch_linger,
        progress=progress, command=command_line(), overrides=overrides,
    )
    try:
        doc = Bench(opts).run()
    # A probe or worker died or stalled (the line names its log), or the embedded broker or
    # Redis could not be started (the line says which and why): one line, no traceback.
    except (BenchError, DevStackError) as exc:
        print(f"appeals bench: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_table(doc))
    return exit_status(doc)


def exit_status(doc: dict[str, Any]) -> int:
    """1 when a phase failed or a correctness verdict came out false, with one line on stderr
    saying which; else 0. What was measured is printed before, with both marked in it.

    Why the verdicts too: a run whose outputs were not exactly once in effect exited 0, the
    ``false`` visible only to whoever read the table (a CI job or script took it for a pass).
    """
    from workers.bench.runner import failed_verdicts

    problems = []
    phases = doc.get("failed_phases") or []
    if phases:
        problems.append(f"phase(s) failed: {', '.join(phases)}")
    verdicts = failed_verdicts(doc)  # from the verdicts themselves, as the report lists them
    if verdicts:
        problems.append(f"verdict(s) false: {', '.join(verdicts)}")
    if problems:
        print(f"appeals bench: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0
