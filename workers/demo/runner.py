"""``appeals demo``: the whole system on one machine, started and stopped by one command.

It starts the embedded broker and Redis, creates the topics, starts worker processes (the same
``appeals worker`` an operator runs), feeds synthetic appeals and answers on a sped-up SLA
clock, and watches the output topics to print what happened at every stage. Everything it
started is stopped on the way out: on Ctrl-C, SIGTERM or a closed terminal (SIGHUP) it drains
first. The workers run in a session of their own, so a Ctrl-C at the terminal reaches only the
demo, which stops them once the pipeline has caught up (before, they stopped with it and the
summary showed appeals sent but never registered); the broker, Redis and the workers are sent
SIGTERM by the kernel if the demo dies without its clean-up (``devstack.die_with_parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import heapq
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from schemas.validation import MAX_YEAR
from streams import topics as t
from streams.clock import SlaClock
from streams.devstack import DevStackError, dev_stack, free_port
from streams.processes import start_worker, stop_processes
from streams.settings import Settings
from workers.demo.generator import (
    DAY,
    GeneratedAppeal,
    Generator,
    PlannedEvent,
    lifecycle_bytes,
    triage_decision,
)
from workers.demo.terminal import HangupOutput, output_survives_hangup

log = logging.getLogger(__name__)

#: Where the output goes once the terminal is gone (workers/demo/terminal.py).
HANGUP_LOG = "demo-after-hangup.log"
#: Held by the demo writing to a log directory (``_lock_log_dir``).
LOCK_FILE = ".demo.lock"


@dataclass
class DemoOptions:
    duration: float | None = None
    rate: float = 50.0
    time_scale: float = 86400.0
    workers: int = 1
    #: None: 9464 (then 9465, …), or a free port with a notice when taken; 0: any free port;
    #: a number: that port, or an error when it is taken.
    metrics_port: int | None = None
    seed: int = 22
    #: Share of appeals too vague to classify: they go to the triage queue, and the demo's
    #: operator decides each one after TRIAGE_DELAY on the SLA clock.
    vague_share: float = 0.03
    log_dir: str = "var/demo"
    partitions: int = 4


@dataclass
class Tally:
    sent: int = 0
    malformed_sent: int = 0
    lifecycle_sent: int = 0
    registered: int = 0
    routed: int = 0
    triage: int = 0
    triage_decided: int = 0
    #: (appeal id, the classifier's first candidate) of triage items not decided yet
    to_decide: list[tuple[str, str]] = field(default_factory=list)
    #: (appeal id, registered_at on the SLA clock) read on appeals.registered, not yet planned
    registrations: list[tuple[str, float]] = field(default_factory=list)
    alerts: Counter[str] = field(default_factory=Counter)  # the answer deadline's, by level
    stage_alerts: Counter[str] = field(default_factory=Counter)  # "<stage> <level>"
    deadletter: Counter[str] = field(default_factory=Counter)
    #: (stage, reason, detail) of the first dead letter: before streaming, the probe's
    first_deadletter: tuple[str, str, str] | None = None
    categories: Counter[str] = field(default_factory=Counter)


class AwaitingRegistration:
    """Each sent appeal's lifecycle events, until the demo reads its ``registered_at``.

    Why: the events were planned from the clock when the demo sent the appeal, while the
    worker registers it (and starts its periods) when it processes it; at 86,400× an intake
    lag of 0.36 s is 0.36 SLA days, so a pause planned 0.3 × 1.2 days after sending fell
    before an incident's registration and was dead-lettered as ``before_period`` (1-12 per
    run). The events are planned when the appeal is sent, so the generator's random draws
    (and the appeals a seed gives) do not depend on the workers' timing, then moved to start
    at the registration.
    """

    def __init__(self) -> None:
        self._planned: dict[str, tuple[float, list[PlannedEvent]]] = {}

    def __len__(self) -> int:
        return len(self._planned)

    def add(self, appeal_id: str, planned_from: float, events: list[PlannedEvent]) -> None:
        """``events`` of an appeal sent at ``planned_from``, planned from that moment."""
        self._planned[appeal_id] = (planned_from, events)

    def registered(self, appeal_id: str, registered_sla: float) -> list[PlannedEvent]:
        """The appeal's events, moved to start at its registration (none for an appeal this
        run did not plan: the readiness probe, or one registered already)."""
        planned_from, events = self._planned.pop(appeal_id, (registered_sla, []))
        return [ev.moved(registered_sla - planned_from) for ev in events]


def registration(value: bytes) -> tuple[str, float]:
    """(appeal id, ``registered_at`` on the SLA clock) of an appeals.registered record."""
    doc = orjson.loads(value)
    return doc["appeal_id"], datetime.fromisoformat(doc["registered_at"]).timestamp()


#: How long (SLA time) the demo's triage operator takes to decide an appeal.
TRIAGE_DELAY = 0.25 * DAY
DEFAULT_METRICS_PORT = 9464
#: How long the drain waits for the pipeline to catch up before the final summary.
DRAIN_SECONDS = 20.0
METRICS_HOST = "127.0.0.1"  # the demo's /metrics, like its broker and Redis, stays local


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((METRICS_HOST, port))
        except OSError:
            return False
    return True


def _metrics_ports(opts: DemoOptions) -> list[int] | None:
    """Each worker's /metrics port; None (after one line on stderr) when an asked-for port is
    taken. The default port falls back to a free one, saying so: before, the fallback was
    silent and the README's URL answered from whatever else held 9464."""
    ports: list[int] = []
    for i in range(opts.workers):
        if opts.metrics_port == 0:
            ports.append(free_port())
            continue
        port = (opts.metrics_port or DEFAULT_METRICS_PORT) + i
        if not _port_free(port):
            if opts.metrics_port is not None:
                print(f"appeals demo: --metrics-port: port {port} (worker {i + 1}) is in use; "
                      "choose another, or 0 for any free port", file=sys.stderr)
                return None
            fallback = free_port()
            print(f"port {port} is in use: worker {i + 1} serves its metrics on {fallback} "
                  "instead", flush=True)
            port = fallback
        ports.append(port)
    return ports


def _fresh_logs(log_dir: Path) -> None:
    """Start each run with fresh logs: the worker logs were appended across runs and the
    broker's and Redis's piled up, one pair per run."""
    for pattern in ("worker-[0-9]*.log", "tansu-[0-9]*-[0-9]*.log", "redis-[0-9]*-[0-9]*.log",
                    HANGUP_LOG):
        for old in log_dir.glob(pattern):
            with contextlib.suppress(OSError):
                old.unlink()


#: Starts again on another port of a worker whose default metrics port was taken before it
#: bound it, before the demo gives up.
PORT_RETRIES = 3


class DemoWorkers:
    """The demo's worker processes and what it takes to start one again.

    Why: the default metrics port is checked free a few seconds before the worker binds it; a
    program (or a second demo) that took it meanwhile made the worker exit 2 and the demo say
    only that the workers did not come up. A port the user did not ask for is now replaced.
    """

    def __init__(self, settings: Settings, ports: list[int], log_dir: Path,
                 ports_movable: bool) -> None:
        self.settings = settings
        self.ports = ports
        self.logs = [log_dir / f"worker-{i + 1}.log" for i in range(len(ports))]
        self.ports_movable = ports_movable
        self.procs: list[subprocess.Popen[bytes]] = []
        self._log_starts: list[int] = []  # where each worker's current start begins its log
        self._moves = [0] * len(ports)

    def start(self) -> None:
        for i in range(len(self.ports)):
            self.procs.append(self._start(i))
            self._log_starts.append(0)

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        # Their own session only where the kernel stops them should the demo die
        # (die_with_parent): elsewhere the shared process group does.
        return start_worker(self.settings, self.ports[i], self.logs[i],
                            new_session=sys.platform == "linux")

    def exited(self) -> int | None:
        """The index of a worker that has exited, if any."""
        return next((i for i, proc in enumerate(self.procs) if proc.poll() is not None), None)

    def move_port(self, i: int) -> bool:
        """Start worker ``i`` again on another free port when it exited because its metrics
        port, one the user did not ask for, was taken; False when that is not why it exited."""
        if not self.ports_movable or self._moves[i] >= PORT_RETRIES:
            return False
        if not _port_taken(self._log_since(i), self.ports[i]):
            return False
        old = self.ports[i]
        self.ports[i] = free_port()
        self._moves[i] += 1
        print(f"port {old} was taken before worker {i + 1} bound it: starting it again with "
              f"its metrics on http://{METRICS_HOST}:{self.ports[i]}/metrics", flush=True)
        self._log_starts[i] = _size(self.logs[i])
        self.procs[i] = self._start(i)
        return True

    def _log_since(self, i: int) -> str:
        try:
            with open(self.logs[i], "rb") as f:
                f.seek(self._log_starts[i])
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def why(self, i: int) -> str:
        """Where worker ``i``'s log is and what it last said, for a one-line error."""
        proc = self.procs[i]
        state = "is running" if proc.poll() is None else f"exited with status {proc.returncode}"
        last = _last_line(self._log_since(i))
        return (f"worker {i + 1} {state}; its log {self.logs[i]} ends: {last}" if last else
                f"worker {i + 1} {state}; its log {self.logs[i]} is empty")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _port_taken(log: str, port: int) -> bool:
    """Whether a worker's output says its metrics port was in use: the start-up check's line
    (``cannot listen on 127.0.0.1:9464 (...): address already in use``) or the bind's own
    OSError when the port went between the check and the bind."""
    lowered = log.lower()
    return "address already in use" in lowered and str(port) in lowered


def _last_line(log: str, limit: int = 300) -> str:
    """The log's last line that says something: not blank, not a traceback's carets."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if text and set(text) - set("^~ "):
            return text if len(text) <= limit else text[:limit] + "…"
    return ""


def run_demo(opts: DemoOptions) -> int:
    log_dir = Path(opts.log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"appeals demo: --log-dir {log_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as held:
        lock = _lock_log_dir(log_dir)
        if lock is None:
            return 2
        held.callback(lock.close)
        ports = _metrics_ports(opts)
        if ports is None:
            return 2
        _fresh_logs(log_dir)
        with output_survives_hangup(log_dir / HANGUP_LOG) as hangup:
            return _run(opts, log_dir, ports, hangup)


def _lock_log_dir(log_dir: Path) -> IO[str] | None:
    """Hold ``<log-dir>/.demo.lock`` for the run (None, after one line on stderr, when another
    demo holds it). Why: each run starts with fresh logs, and a second demo in the same
    directory deleted the logs of the first while it ran."""
    path = log_dir / LOCK_FILE
    try:
        lock = open(path, "a+")  # noqa: SIM115 - held open for the run, closed by the caller
    except OSError as exc:
        print(f"appeals demo: --log-dir {log_dir}: {exc.strerror or exc}", file=sys.stderr)
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        print(f"appeals demo: another demo (pid {holder}) is running with its logs in "
              f"{log_dir}/; stop it first, or give this one another --log-dir", file=sys.stderr)
        return None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _run(opts: DemoOptions, log_dir: Path, ports: list[int], hangup: HangupOutput) -> int:
    # Before the broker and Redis: a bad APPEALS_* value is one line (ConfigError, the CLI's
    # exit 2) without servers started for nothing and their logs to read past.
    base = Settings.load()
    print(f"citizen-appeals demo: starting a local broker and Redis (logs in {log_dir}/)",
          flush=True)
    try:
        with dev_stack(log_dir=log_dir) as (broker, redis_server):
            settings = base.replace(
                kafka=broker.url,
                redis=redis_server.url,
                partitions=opts.partitions,
                time_scale=opts.time_scale,
                clock_epoch=time.time(),
                session_timeout=6.0,
                log_level="info",
                metrics_host=METRICS_HOST,
            )
            t.ensure_topics(settings)
            workers = DemoWorkers(settings, ports, log_dir,
                                  ports_movable=opts.metrics_port in (None, 0))
            stopping = Stopping()
            try:
                workers.start()
                print(f"workers: {opts.workers}; metrics: " +
                      ", ".join(f"http://{METRICS_HOST}:{p}/metrics" for p in ports),
                      flush=True)
                return asyncio.run(_stream(settings, opts, workers, hangup, stopping))
            except KeyboardInterrupt:  # a second Ctrl-C while draining, or one at start-up
                _say("\ninterrupted: stopping without draining")
                return 128 + (stopping.signum or signal.SIGINT)
            finally:
                _stop_workers(workers.procs)
    except DevStackError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


@dataclass
class Stopping:
    """What stopped the run: the first signal (None: none) and whether streaming had begun.

    Why kept: a signal before streaming begins aborts the start-up (status 128 + signal, as a
    shell reports a command the signal ended), one after it drains and ends normally (status
    0), and a second one aborts the drain (128 + the first signal).
    """

    signum: int | None = None
    streaming: bool = False
    aborted: bool = False


def _say(text: str) -> None:
    """Print, whatever happens to the output (a full disk under the hang-up file, say): these
    lines come from the clean-up, which must go on."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the workers together; further Ctrl-Cs cannot cut this short and leave workers
    running."""
    with contextlib.suppress(ValueError):  # not the main thread: no handler to change
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_processes(procs)


async def _stream(settings: Settings, opts: DemoOptions, workers: DemoWorkers,
                  hangup: HangupOutput, stopping: Stopping) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    clock = SlaClock(settings.time_scale, settings.clock_epoch)
    tally = Tally()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted(signum: int) -> None:
        if signum == signal.SIGHUP:  # before a print finds the terminal gone
            hangup.switch()
        if stop.is_set():  # the second one: stop without draining (once: the clean-up runs)
            if not stopping.aborted:
                stopping.aborted = True
                raise KeyboardInterrupt
            return
        stop.set()
        stopping.signum = signum
        name = signal.Signals(signum).name
        if stopping.streaming:
            _say(f"\n{name}: stopping; draining first (Ctrl-C again to stop without draining)")
        else:  # nothing to drain: the run had not begun
            _say(f"\n{name}: stopping before streaming began")

    # First of all: a Ctrl-C while the clients start found asyncio's own handler, which
    # cancelled the start-up and left the producer unclosed (an asyncio ERROR at exit).
    with contextlib.suppress(NotImplementedError):
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, interrupted, signum)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5, enable_idempotence=False)
    watched = [t.REGISTERED, t.ROUTED, t.TRIAGE, t.SLA_ALERTS, t.DEADLETTER]
    consumer = AIOKafkaConsumer(
        *(t.topic_name(settings, name) for name in watched),
        bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )
    watcher: asyncio.Task[None] | None = None
    try:
        await producer.start()
        await consumer.start()
        watcher = asyncio.create_task(_watch(consumer, settings, tally))
        ready = False
        if not stop.is_set():
            print("waiting for the workers to join the consumer group…", flush=True)
            ready = await _wait_ready(producer, settings, tally, stop, workers)
        if stop.is_set():  # before streaming began: stop now, nothing to drain
            return 128 + (stopping.signum or signal.SIGINT)
        if not ready:
            return 1
        stopping.streaming = True
        return await _feed(settings, opts, workers.procs, producer, tally, stop, clock,
                           workers)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await consumer.stop()
        await producer.stop()


#: What the SLA clock must stay in range for: the longest wait for the workers
#: (``_wait_ready``) and a minute of streaming.
STARTUP_SECONDS = 120.0
MIN_RUN_SECONDS = 60.0


DEFAULT_INTAKE_MAX_AGE: float = Settings.load({}, only={"intake_max_age"}).intake_max_age


def max_time_scale(now: float, intake_max_age: float = DEFAULT_INTAKE_MAX_AGE) -> float:
    """The fastest SLA clock that stays before the end of ``MAX_YEAR`` (less the week kept for
    deadlines) through start-up and a minute's run: at 1e9 the probe appeal was dead-lettered
    before the workers were up, and the demo waited two minutes to say they never came up.

    And under which an appeal waiting for the workers as long as start-up may take is not
    older than intake accepts (``APPEALS_INTAKE_MAX_AGE``, ``intake_max_age``) when they read
    it: at 1.2e7 a year of SLA time passed in 2.6 s, and the probe, sent while the workers
    started, was dead-lettered as submitted too long ago."""
    end = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC).timestamp() - 7 * 86400
    return min(max(0.0, end - now) / (STARTUP_SECONDS + MIN_RUN_SECONDS),
               intake_max_age / STARTUP_SECONDS)


def _capped_duration(opts: DemoOptions, sla_now: float) -> float:
    """The run's length in seconds, stopped before the scaled SLA clock leaves the years events
    may carry (``schemas.validation.MAX_YEAR``): past it every appeal would be dead-lettered as
    ``bad_timestamp``. At the default day a second that is about seven hours."""
    end = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()
    left = max(0.0, (end - 7 * 86400 - sla_now) / max(opts.time_scale, 1e-9))
    return min(opts.duration, left) if opts.duration else left


async def _feed(settings: Settings, opts: DemoOptions, procs: list[subprocess.Popen[bytes]],
                producer: Any, tally: Tally, stop: asyncio.Event, clock: SlaClock,
                workers: DemoWorkers | None = None) -> int:
    duration = _capped_duration(opts, clock.now())
    print(f"streaming {opts.rate:g} appeals/s; SLA clock runs {opts.time_scale:g}× "
          f"({opts.time_scale / 86400:g} day(s) per second)" +
          (f" for {opts.duration:g} s" if opts.duration else " until Ctrl-C"), flush=True)
    if duration != opts.duration:
        print(f"(the SLA clock reaches the end of {MAX_YEAR}, the last year events may carry, "
              f"after {duration / 3600:.1f} h at this speed: the demo stops there)", flush=True)
    gen = Generator(seed=opts.seed, max_text_length=settings.max_text_length,
                    vague_share=opts.vague_share)
    intended: dict[str, str] = {}  # vague appeals: the category the operator will give
    started = time.monotonic()
    plan: list[tuple[float, int, bytes, bytes]] = []
    seq = 0
    next_print = started + 5
    lifecycle_topic = t.topic_name(settings, t.LIFECYCLE)
    decisions: set[int] = set()  # plan entries that are triage decisions
    awaiting = AwaitingRegistration()

    async def send_due(seq: int) -> int:
        """Plan the events of the appeals registered since, decide the appeals triage has
        sent in, and send the lifecycle events now due."""
        for appeal_id, registered_sla in tally.registrations:
            for ev in awaiting.registered(appeal_id, registered_sla):
                seq += 1
                heapq.heappush(plan, (ev.at, seq, appeal_id.encode(), lifecycle_bytes(ev)))
        tally.registrations.clear()
        now_sla = clock.now()
        for appeal_id, first_candidate in tally.to_decide:
            # The operator reads it and decides: the intended category of a vague appeal,
            # the classifier's best guess for the rare other one.
            seq += 1
            decision = triage_decision(appeal_id, intended.pop(appeal_id, first_candidate),
                                       now_sla + TRIAGE_DELAY, seq)
            heapq.heappush(plan, (decision.at, seq, appeal_id.encode(),
                                  lifecycle_bytes(decision)))
            decisions.add(seq)
        tally.to_decide.clear()
        while plan and plan[0][0] <= now_sla:
            _, n, key, value = heapq.heappop(plan)
            await producer.send(lifecycle_topic, value, key=key)
            tally.lifecycle_sent += 1
            if n in decisions:  # counted when sent: one scheduled but dropped at the end was
                decisions.discard(n)  # counted as sent, and its appeal never routed
                tally.triage_decided += 1
        return seq

    if True:
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            if any(p.poll() is not None for p in procs):
                gone = workers.exited() if workers is not None else None
                print("a worker exited unexpectedly" +
                      (f": {workers.why(gone)}" if workers is not None and gone is not None
                       else "; see its log"), file=sys.stderr)
                return 1
            due_count = int((now - started) * opts.rate) - (tally.sent + tally.malformed_sent)
            for _ in range(max(0, due_count)):
                item = gen.next(clock.now())
                topic = t.topic_name(settings, t.intake_topic(item.channel))
                await producer.send(topic, item.value)
                if isinstance(item, GeneratedAppeal):
                    tally.sent += 1
                    if item.vague:
                        intended[item.appeal_id] = item.category
                    sent_sla = clock.now()
                    awaiting.add(item.appeal_id, sent_sla, gen.plan(item, sent_sla))
                else:
                    tally.malformed_sent += 1
            seq = await send_due(seq)
            if now >= next_print:
                _print_live(tally, clock, now - started)
                next_print = now + 5
            await asyncio.sleep(0.05)
        await producer.flush()
        print("draining: waiting for the pipeline to catch up…", flush=True)
        deadline = time.monotonic() + DRAIN_SECONDS
        # The operator goes on deciding what triage sends in, and the authorities go on
        # answering, until every appeal is registered and every triage decision is sent.
        while not drained(tally, decisions) and time.monotonic() < deadline:
            seq = await send_due(seq)
            await producer.flush()
            await asyncio.sleep(0.25)
        if not drained(tally, decisions):
            print(drain_shortfall(tally, decisions), flush=True)
        await asyncio.sleep(3)
    _print_final(tally, settings, clock)
    return 0


def drained(tally: Tally, decisions: set[int]) -> bool:
    """Every appeal sent is registered and routed, and no triage decision waits to be made or
    sent. An appeal sent to triage counts once in ``triage`` and again in ``routed`` when its
    decision is routed: the drain stopped at ``routed + triage >= registered``, up to
    ``triage`` appeals early, and the summary showed them as never routed."""
    return (tally.registered >= tally.sent and tally.routed >= tally.registered
            and not decisions and not tally.to_decide)


def drain_shortfall(tally: Tally, decisions: set[int]) -> str:
    """What the drain left undone when its time ran out."""
    parts = [f"{max(0, tally.registered - tally.routed)} registered appeal(s) not routed yet"]
    if tally.sent > tally.registered:
        parts.append(f"{tally.sent - tally.registered} sent but not registered yet")
    waiting = len(decisions) + len(tally.to_decide)
    if waiting:
        parts.append(f"{waiting} triage decision(s) not sent yet")
    return (f"the drain stopped after {DRAIN_SECONDS:g} s: " + ", ".join(parts) +
            " (the summary shows them as they were then)")


async def _wait_ready(producer: Any, settings: Settings, tally: Tally, stop: asyncio.Event,
                      workers: DemoWorkers, timeout: float = 120.0) -> bool:
    """Send one probe appeal and wait until it is routed: the whole pipeline is up.

    Returns as soon as ``stop`` is set (the caller looks at it first): a Ctrl-C while the
    workers started was only acted on once they were up, 13-15 s later, and the demo then
    streamed, drained and printed a summary of a run that never began."""
    gen = Generator(seed=0, malformed_share=0.0, run_id="probe")
    # On the SLA clock the workers judge it by, as every appeal the demo sends: stamped with
    # the wall time, it was a year old for intake after 2.6 s at --time-scale 1.2e7.
    probe = gen.appeal(SlaClock(settings.time_scale, settings.clock_epoch).now(), channel="pos")
    # Not past a Ctrl-C: the first send waits for the new topics' leaders.
    sent = asyncio.ensure_future(
        producer.send_and_wait(t.topic_name(settings, t.intake_topic("pos")), probe.value))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({sent, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not sent.done():
        sent.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sent
        return False
    sent.result()
    tally.sent += 1
    deadline = time.monotonic() + timeout
    while tally.routed + tally.triage == 0 and not stop.is_set():
        if tally.first_deadletter is not None:
            # Nothing but the probe was sent: it will never be routed (at --time-scale 1e9
            # its SLA clock passed the last year events may carry, and the demo waited the
            # whole timeout and blamed the workers).
            stage, reason, detail = tally.first_deadletter
            print(f"the probe appeal was dead-lettered at the {stage} stage ({reason}"
                  f"{': ' + detail if detail else ''}): the workers are up but refuse it",
                  file=sys.stderr)
            return False
        gone = workers.exited()
        if gone is not None:
            if workers.move_port(gone):
                continue
            print(f"the workers did not come up: {workers.why(gone)}", file=sys.stderr)
            return False
        if time.monotonic() > deadline:
            print(f"the workers did not come up within {timeout:g} s: " +
                  "; ".join(workers.why(i) for i in range(len(workers.procs))),
                  file=sys.stderr)
            return False
        await asyncio.sleep(0.2)
    return True


async def _watch(consumer: Any, settings: Settings, tally: Tally) -> None:
    names = {t.topic_name(settings, n): n for n in
             (t.REGISTERED, t.ROUTED, t.TRIAGE, t.SLA_ALERTS, t.DEADLETTER)}
    seen_alerts: set[str] = set()
    while True:
        batches = await consumer.getmany(timeout_ms=500, max_records=2000)
        for tp, records in batches.items():
            kind = names[tp.topic]
            for rec in records:
                if kind == t.REGISTERED:
                    tally.registered += 1
                    tally.registrations.append(registration(rec.value))
                elif kind == t.ROUTED:
                    tally.routed += 1
                    tally.categories[orjson.loads(rec.value)["category"]] += 1
                elif kind == t.TRIAGE:
                    tally.triage += 1
                    item = orjson.loads(rec.value)
                    tally.to_decide.append((item["appeal_id"], item["candidates"][0]["category"]))
                elif kind == t.SLA_ALERTS:
                    alert = orjson.loads(rec.value)
                    if alert["alert_id"] not in seen_alerts:
                        seen_alerts.add(alert["alert_id"])
                        if alert.get("stage"):  # README "Stage deadlines"
                            tally.stage_alerts[f"{alert['stage']} {alert['level']}"] += 1
                        else:
                            tally.alerts[alert["level"]] += 1
                else:
                    dead = orjson.loads(rec.value)
                    tally.deadletter[dead["reason"]] += 1
                    if tally.first_deadletter is None:
                        tally.first_deadletter = (dead.get("stage") or "?", dead["reason"],
                                                  dead.get("detail") or "")


def _print_live(tally: Tally, clock: SlaClock, elapsed: float) -> None:
    day = clock.now_dt().strftime("%Y-%m-%d")
    print(
        f"[{elapsed:5.0f}s | SLA clock {day}] sent {tally.sent} (+{tally.malformed_sent} "
        f"malformed) → registered {tally.registered} → routed {tally.routed} "
        f"(+{tally.triage} to triage, {tally.triage_decided} decided) | authorities' events "
        f"sent {tally.lifecycle_sent} | "
        f"warnings {tally.alerts['warning']}, breaches {tally.alerts['breach']}, escalations "
        f"{tally.alerts['escalation']} (+{sum(tally.stage_alerts.values())} of stage "
        "deadlines) | "
        f"dead letters {sum(tally.deadletter.values())}",
        flush=True,
    )


def _print_final(tally: Tally, settings: Settings, clock: SlaClock) -> None:
    import redis as redis_sync

    from workers.aggregates.readmodel import read_figures

    print("\n=== final summary ===")
    # The SLA clock runs on while the workers stop: alerts raised in those last moments are in
    # the workers' logs and metrics, not here.
    print("(as the drain ended; alerts raised while the workers stopped are only in their logs)")
    rows = [
        ("appeals sent", tally.sent),
        ("malformed sent", tally.malformed_sent),
        ("registered", tally.registered),
        ("routed", tally.routed),
        ("sent to triage", tally.triage),
        ("triage decisions sent", tally.triage_decided),
        ("lifecycle events sent", tally.lifecycle_sent),
        ("SLA warnings", tally.alerts["warning"]),  # of the answer deadline
        ("SLA breaches", tally.alerts["breach"]),
        ("SLA escalations", tally.alerts["escalation"]),
        ("dead letters", sum(tally.deadletter.values())),
    ]
    for label, value in rows:
        print(f"  {label:24} {value:>8}")
    if tally.stage_alerts:
        print("  stage deadline alerts: " +
              ", ".join(f"{k} {v}" for k, v in sorted(tally.stage_alerts.items())))
    if tally.deadletter:
        print("  dead letters by reason: " +
              ", ".join(f"{k} {v}" for k, v in tally.deadletter.most_common()))
    if tally.categories:
        print("  routed by category: " +
              ", ".join(f"{k} {v}" for k, v in tally.categories.most_common()))
    try:
        client = redis_sync.Redis.from_url(settings.redis)
        figures = read_figures(client, f"{settings.app_id}:", settings.partitions)
    except Exception as exc:  # the summary must not fail the demo
        print(f"  (authority figures unavailable: {exc})")
        return
    from workers.aggregates.partials import RETENTION_DAYS

    # Not the whole run: the figures keep day buckets for RETENTION_DAYS SLA days, which at
    # the demo's clock speed is the run's last seconds (the table said "whole run", and its
    # received counts fell short of the totals above).
    window = RETENTION_DAYS * 86400 / max(settings.time_scale, 1e-9)
    span = f"{window:.0f} s" if window < 3600 else f"{window / 3600:.1f} h"
    print(f"\n  per authority: what the figures' API shows now (received, answered, on time, "
          f"breaches: the last {RETENTION_DAYS} SLA days, i.e. the last {span} of this run, "
          "so an answer can belong to an appeal received before them; open and overdue: now; "
          "the 20 busiest):")
    print(f"  {'authority':28} {'recv':>5} {'ans':>5} {'on time':>7} {'open':>5} "
          f"{'overdue':>7} {'breach':>6} {'on-time share':>13} {'median resp':>11}")
    top = sorted(figures.values(), key=lambda f: -f.received)[:20]
    for f in top:
        share = f"{f.on_time_share:.0%}" if f.on_time_share is not None else "—"
        median = (f"{f.median_response_s / 86400:.1f} d" if f.median_response_s is not None
                  else "—")
        print(f"  {f.authority_id:28} {f.received:>5} {f.answered:>5} {f.answered_on_time:>7} "
              f"{f.open:>5} {f.open_overdue:>7} {f.breaches:>6} {share:>13} {median:>11}")
    if len(figures) > len(top):
        print(f"  … and {len(figures) - len(top)} more authorities")
