"""``appeals bench``: the pipeline against a bare-consumer ceiling and a naive Faust agent.

Everything runs on the embedded broker (Tansu) and a private Redis in one process tree, on the
same pre-produced intake topics, in one run, so the ratios mean something even on a shared,
noisy machine (absolute figures do not: the report carries the load average).

What is measured, and how (from outside the measured process, with nothing added to it):

* **ceiling** - ``probes.ceiling``: aiokafka group consumer + orjson decode, own process.
* **naive** - ``probes.naive``: one Faust agent, one table write per event, own process; capped
  in time, because at its speed 200,000 events would take minutes (the rate is what counts).
* **pipeline** - one ``appeals worker`` process over the N appeals plus their lifecycle events,
  all pre-produced. "Done" = the worker's consumer group has committed every offset of every
  input topic on end offsets a fetch confirmed (Tansu can report them short), then the last
  change of the aggregates published to Redis after that (``last_publication``: issue 7 ends
  the window at the last aggregate updated). Elapsed = first output seen to done, polled every
  0.2 s.
  CPU and peak RSS come from ``/proc/<pid>``. Per-stage rates come from the same timeline
  (output topic growth; SLA from committed offsets); per-stage compute cost is measured
  separately in this process on a sample, with no Kafka at all, to show framework overhead.
* **latency** - a fresh worker on a broker of its own (``--latency-shared-broker``: the
  others'), appeals produced at a steady rate; latency = when a live consumer of
  appeals.routed in this process had the routed record, minus the intake record's CreateTime
  (same clock); the routed record's own CreateTime (the worker producer's hand-over, before
  linger and acknowledgement) gives ``latency_to_handover_*`` for comparison.
* **scale-out** - two workers started together on N appeals: the speed-up against the single
  worker; then a smaller run where the second worker starts once the first has committed 30%
  of the work, half of whose input is sent while it runs (a rebalance with work in flight and
  input arriving, its generations read from the workers' logs).
  Both runs' outputs are checked exactly-once in effect appeal by appeal against truth from
  the workload (:mod:`workers.bench.effect`), duplicates in raw topics counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from schemas.records import CHANNELS
from streams import topics as t
from streams.devstack import die_with_parent
from streams.settings import Settings
from workers.bench import procstat

Message = tuple[str, bytes | None, bytes]
#: APPEALS_SLA_FUTURE_TOLERANCE of the benchmark's workers, seconds: longer than the furthest
#: lifecycle event ``Generator.plan`` stamps after an appeal (a 59-FZ answer at 1.5 periods,
#: 45 days), so none of the workload is refused as stamped in the future.
BENCH_FUTURE_TOLERANCE = 120 * 86400.0
#: The probes and workers run in a session of their own where the kernel stops them should the
#: bench die (``devstack.die_with_parent``, Linux); elsewhere they share its process group.
OWN_SESSION = sys.platform == "linux"
#: Seconds from the start of a pipeline phase's workers to their first registered record before
#: the phase fails: start-up, the group join and (with two workers) its rebalance take well under
#: a minute even on the shared machine. Without it a worker that wrote no registered record (no
#: appeals to process, every appeal dead-lettered) kept the bench waiting for ever.
PIPELINE_NO_OUTPUT_S = 180.0
#: Seconds without a new routed or triage record, after the latency run's sending, before the
#: phase fails: the worker drains its backlog for as long as it makes progress.
LATENCY_STALL_S = 30.0
#: Share of the work (intake, lifecycle and the SLA stage's routed input) the first worker of
#: the rebalance run has committed when the second one starts: late enough that the first holds
#: committed work and state, early enough that the second (a few seconds to start and join)
#: still finds work left to take over.
REBALANCE_JOIN_AT = 0.3
#: Share of the rebalance run's appeals (with their lifecycle events) produced before its first
#: worker starts; the rest is sent while the run goes on (:class:`Feeder`). Above
#: ``REBALANCE_JOIN_AT`` by enough that the triaged appeals (never routed, so never in the
#: share's routed part) do not keep the share from reaching it.
REBALANCE_HEAD = 0.5
#: Seconds over which the rest of the rebalance run's input is spread once the second worker
#: starts, until it has its partitions (then the remainder goes at once): its start and group
#: join take well under this even on the shared machine, so the input is still arriving when
#: the partitions move, however small the run or fast the host.
REBALANCE_FEED_S = 60.0
#: Seconds the published aggregates must stay unchanged, once the inputs are all committed,
#: before the last change seen is taken for the last publication: the SLA agent publishes what
#: changed every 2 s, so this is one period and a margin for the publication itself.
PUBLISH_QUIET_S = 4.0
#: Cap of that wait: figures that still change this long after the inputs are done change for
#: some other reason (a deadline fired), and the window ends where the inputs did.
PUBLISH_WAIT_S = 20.0


class BenchError(RuntimeError):
    """A phase of the bench could not be measured (a probe or worker died, stalled, wrote
    nothing); ``appeals bench`` reports it in one line, exit status 1."""


def _interrupted_child(proc: subprocess.Popen[bytes]) -> None:
    """KeyboardInterrupt when ``proc`` was ended by SIGINT: a Ctrl-C meant for the bench (a
    ``kill -INT`` to its process group), to be reported as an interruption (the CLI's
    "interrupted", status 130), not as a probe or worker that failed."""
    if proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT):
        raise KeyboardInterrupt


@dataclass
class BenchOptions:
    events: int = 200_000
    latency_seconds: float = 60.0
    latency_rate: int = 1000
    naive_cap_seconds: float = 25.0
    partitions: int = 4
    skip_latency: bool = False
    latency_shared_broker: bool = False
    skip_scaleout: bool = False
    scaleout_events: int = 50_000
    rebalance_events: int = 20_000
    lifecycle: bool = True
    log_dir: Path = Path("var/bench")
    seed: int = 7
    batch_size: int | None = None
    batch_linger: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None
    command: str = ""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs to typed worker settings; ValueError names the bad one."""
    import dataclasses

    from streams.settings import ConfigError, _coerce

    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().lower().removeprefix("appeals_")
        if not sep or name not in fields:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE with NAME one of the "
                             f"settings of `appeals config`")
        try:
            out[name] = _coerce(name, raw.strip(), getattr(Settings(), name))
        except ConfigError as exc:
            raise ValueError(f"--set {item!r}: {exc}") from None
    return out


@dataclass
class Workload:
    appeals: list[Message]
    lifecycle: list[Message]
    by_id: dict[str, str] = field(default_factory=dict)  # appeal_id -> channel

    @property
    def n(self) -> int:
        return len(self.appeals)

    def subset(self, n: int) -> Workload:
        """The first ``n`` appeals and their lifecycle events."""
        if n >= self.n:
            return self
        ids = list(self.by_id)[:n]
        keep = {i.encode() for i in ids}
        return Workload(self.appeals[:n], [m for m in self.lifecycle if m[1] in keep],
                        {i: self.by_id[i] for i in ids})

    def split(self, share: float) -> tuple[list[Message], list[Message]]:
        """The first ``share`` of the appeals with their lifecycle events (appeals first, as
        the pre-produced runs send them), and the rest, each appeal followed by its own
        lifecycle events: the order of a stream arriving while the run goes on."""
        k = max(1, min(self.n, round(self.n * share)))
        ids = list(self.by_id)
        head_ids = {i.encode() for i in ids[:k]}
        head = self.appeals[:k] + [m for m in self.lifecycle if m[1] in head_ids]
        life_of: dict[bytes | None, list[Message]] = {}
        for m in self.lifecycle:
            if m[1] not in head_ids:
                life_of.setdefault(m[1], []).append(m)
        tail: list[Message] = []
        for appeal_id, msg in zip(ids[k:], self.appeals[k:], strict=True):
            tail.append(msg)
            tail.extend(life_of.get(appeal_id.encode(), []))
        return head, tail


class Bench:
    def __init__(self, opts: BenchOptions) -> None:
        self.opts = opts
        self.started = time.monotonic()
        self.result: dict[str, Any] = {}
        self._runs = 0
        #: Later phases (latency, scale-out) that failed: reported, the rest still printed.
        self.failed_phases: list[str] = []
        self.log_dir = opts.log_dir / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # -- helpers ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        line = f"[bench {time.monotonic() - self.started:6.1f} s] {text}"
        if self.opts.progress:
            self.opts.progress(line)

    def settings(self, kafka: str, redis: str) -> Settings:
        """Isolated topics and app id, and a Redis database of its own per run.

        Own database although every key carries the run's app id (the intake's dedupe keys
        too, since 343e25a): the scale-out run re-sends the very appeals of the single-worker
        run, and a run that found them "already registered" would measure nothing, so runs
        are kept apart twice over.
        """
        from streams.testing import isolated_settings

        self._runs += 1
        redis = f"{redis.rsplit('/', 1)[0]}/{self._runs % 16}"

        # The workload's lifecycle events are planned on the real clock from the moment it is
        # generated (``make_workload``): weeks ahead of it, the late answers. The benchmark
        # measures their application, so the SLA agent is told to accept them rather than
        # dead-letter them as future_timestamp (the demo's planned events are sent when due).
        changes: dict[str, Any] = {"partitions": self.opts.partitions, "session_timeout": 6.0,
                                   "sla_future_tolerance": BENCH_FUTURE_TOLERANCE}
        if self.opts.batch_size:
            changes["batch_size"] = self.opts.batch_size
        if self.opts.batch_linger is not None:
            changes["batch_linger"] = self.opts.batch_linger
        changes.update(self.opts.overrides)
        return isolated_settings(kafka, redis, **changes)

    # -- workload ---------------------------------------------------------------------------

    def make_workload(self) -> Workload:
        from workers.demo.generator import Generator, lifecycle_bytes

        gen = Generator(seed=self.opts.seed, malformed_share=0.0, run_id=f"bench{self.opts.seed}")
        now = time.time()
        appeals: list[Message] = []
        lifecycle: list[Message] = []
        by_id: dict[str, str] = {}
        for _ in range(self.opts.events):
            a = gen.appeal(now)
            appeals.append((t.intake_topic(a.channel), None, a.value))
            by_id[a.appeal_id] = a.channel
            if self.opts.lifecycle:
                for ev in gen.plan(a, now):
                    lifecycle.append((t.LIFECYCLE, a.appeal_id.encode(), lifecycle_bytes(ev)))
        return Workload(appeals, lifecycle, by_id)

    # -- phases -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from streams.devstack import dev_stack

        opts = self.opts
        load_before = procstat.loadavg()
        self.say(f"generating {opts.events:,} appeals and their lifecycle events")
        work = self.make_workload()
        size = sum(len(v) for _, _, v in work.appeals) / max(1, work.n)
        self.say(f"{work.n:,} appeals (avg {size:.0f} bytes), {len(work.lifecycle):,} lifecycle "
                 "events; starting broker and Redis")
        with dev_stack(log_dir=self.log_dir) as (broker, redis_server):
            base = self.settings(broker.url, redis_server.url)
            t.ensure_topics(base)
            rate = produce(base, work.appeals + work.lifecycle)
            self.say(f"pre-produced {work.n + len(work.lifecycle):,} records ({rate:,.0f}/s)")
            intake_topics = [t.topic_name(base, t.intake_topic(c)) for c in CHANNELS]

            ceiling = self.probe("ceiling", broker.bootstrap, intake_topics, work.n, cap=120)
            self.say(f"ceiling: {_rate(ceiling['events_per_s'])}")
            naive = self.probe("naive", broker.bootstrap, intake_topics, work.n,
                               cap=opts.naive_cap_seconds)
            self.say(f"naive: {_rate(naive['events_per_s'])} "
                     f"({naive['count']:,} events in {naive['elapsed_s']:.1f} s)")
            pipeline = self.pipeline(base, work, workers=1)
            self.say(f"pipeline: {pipeline['appeals_per_s']:,.0f} appeals/s, "
                     f"{pipeline['events_per_s']:,.0f} input events/s")
            stages = stage_compute(work)
            latency: dict[str, Any] = {}
            if not opts.skip_latency:
                latency = self.later_phase(
                    "latency", lambda: self.latency_phase(broker.url, redis_server.url))
            scale: dict[str, Any] = {}
            if not opts.skip_scaleout:
                scale = self.later_phase(
                    "scale-out", lambda: self.scaleout(broker.url, redis_server.url, work,
                                                       pipeline))
        return self.report(work, ceiling, naive, pipeline, stages, latency, scale, load_before)

    def later_phase(self, name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A phase after the pipeline's: its failure is reported beside what was measured.

        Why: the latency and scale-out phases come after minutes of measuring; a worker that
        died in one of them (or a broker that would not start) ended the bench with one line
        and every earlier figure lost. Now the phase is marked ``failed`` with the reason, the
        table and ``--json`` still print, and ``appeals bench`` exits 1 (``failed_phases``).
        """
        from streams.devstack import DevStackError

        try:
            return measure()
        except (BenchError, DevStackError) as exc:
            self.say(f"{name}: FAILED: {exc}")
            self.failed_phases.append(name)
            return {"failed": str(exc)}

    def scaleout(self, kafka: str, redis: str, work: Workload,
                 pipeline: dict[str, Any]) -> dict[str, Any]:
        """The speed-up (two workers from the start), then exactly-once across a rebalance.

        Why two runs: workers started together join in one assignment generation, so the
        speed-up run moves no partition with work in flight and says nothing about the
        rebalance. The second, smaller run starts the second worker once the first has
        committed ``REBALANCE_JOIN_AT`` of the intake, and its outputs are checked appeal by
        appeal; the verdict fails when no rebalance was seen in the workers' logs.
        """
        other = self.settings(kafka, redis)
        t.ensure_topics(other)
        sub = work.subset(self.opts.scaleout_events)
        produce(other, sub.appeals + sub.lifecycle)
        scale = self.pipeline(other, sub, workers=2)
        # Rates, not times: the 2-worker run may use a subset to fit the time budget.
        scale["speedup"] = round(scale["events_per_s"] / pipeline["events_per_s"], 2)
        self.say(f"scale-out: 2 workers {scale['appeals_per_s']:,.0f} appeals/s, "
                 f"speed-up x{scale['speedup']}")
        moved = self.settings(kafka, redis)
        t.ensure_topics(moved)
        part = work.subset(self.opts.rebalance_events)
        # Half pre-produced, the rest sent while the run goes on: with everything pre-produced
        # a small run (or a fast host) consumed the whole input before the second worker had
        # joined, and the verdict failed on "no rebalance seen" with nothing wrong.
        head, tail = part.split(REBALANCE_HEAD)
        produce(moved, head)
        reb = self.pipeline(moved, part, workers=2, join_at=REBALANCE_JOIN_AT, feed=tail)
        keep = ("appeals", "lifecycle_events", "elapsed_s", "joined_at_share",
                "assigned_at_share", "fed_records", "fed_before_assignment",
                "assignments", "generations", "rebalance_seen",
                "exactly_once_in_effect", "exactly_once_across_rebalance",
                "effect_differences", "registered_records", "registered_distinct",
                "routed_records", "routed_distinct", "triaged_distinct", "alert_records",
                "alerts_firing_distinct", "read_model_entries", "aggregate_received")
        scale["rebalance"] = {k: reb[k] for k in keep if k in reb}
        self.say(f"rebalance: second worker started at {reb.get('joined_at_share')} of the "
                 f"work committed; rebalance seen {reb['rebalance_seen']}; exactly once "
                 f"across it {reb['exactly_once_across_rebalance']}")
        return scale

    def probe(self, kind: str, bootstrap: str, topics: list[str], expected: int,
              cap: float) -> dict[str, Any]:
        status_path = self.log_dir / f"{kind}.json"
        group = f"bench-{kind}-{os.getpid()}-{int(time.time())}"
        cmd = [sys.executable, "-m", "workers.bench.probes", kind, "--bootstrap", bootstrap,
               "--topics", ",".join(topics), "--group", group, "--expected", str(expected),
               "--status", str(status_path)]
        self.say(f"{kind}: consuming {expected:,} pre-produced appeals")
        with open(self.log_dir / f"{kind}.log", "wb") as out:
            # In a session of its own (where the kernel stops it should the bench die), so a
            # terminal's Ctrl-C reaches only the bench, which stops the probe on its way out:
            # the naive probe (Faust) stops cleanly on SIGINT, exit status 0, and the bench
            # could see it gone before its own KeyboardInterrupt ("naive probe exited early").
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=OWN_SESSION,
                                    preexec_fn=die_with_parent())
        doc: dict[str, Any] = {}

        def read_status() -> dict[str, Any]:
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                return dict(orjson.loads(status_path.read_bytes()))
            return doc

        deadline = time.monotonic() + 90  # start-up and group join
        # The cap runs on the bench's own clock from the first count it saw: the probe's
        # elapsed_s (first record to last) stops growing when the probe stalls, and a cap on it
        # alone waited for ever.
        counting_since: float | None = None
        try:
            while True:
                time.sleep(0.25)
                doc = read_status()
                if doc.get("done"):
                    break
                # Every time round, not only before the first count: a probe that died after
                # its first records left a status that never changes, and the bench waited on.
                if proc.poll() is not None:
                    doc = read_status()  # it may have written its last status on its way out
                    if doc.get("done"):
                        break
                    _interrupted_child(proc)
                    raise BenchError(
                        f"{kind} probe exited with status {proc.returncode} after "
                        f"{doc.get('count', 0):,} of {expected:,} events; see {out.name}")
                if doc.get("count"):
                    now = time.monotonic()
                    counting_since = counting_since or now
                    if doc.get("elapsed_s", 0) >= cap or now - counting_since >= cap:
                        break
                elif time.monotonic() > deadline:
                    raise BenchError(f"{kind} probe made no progress in 90 s; see {out.name}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        count, elapsed = doc.get("count", 0), doc.get("elapsed_s", 0.0)
        timed = doc.get("timed_count", count)
        return {
            "count": count,
            "elapsed_s": round(elapsed, 2),
            # Events after the first batch over the time since it arrived; None when everything
            # came in one batch (too few events to time: the ceiling reads 10,000 per fetch).
            "events_per_s": round(timed / elapsed, 1) if elapsed > 0 and timed > 0 else None,
            # The probe's CPU baseline is taken after its first batch too: per timed event.
            "cpu_s_per_1k": (round(1000 * doc.get("cpu_s", 0.0) / timed, 4)
                             if timed > 0 else None),
            "peak_rss_mb": round(doc.get("peak_rss_mb", 0.0), 1),
            "capped": not doc.get("done", False),
        }

    def pipeline(self, settings: Settings, work: Workload, workers: int,
                 join_at: float | None = None,
                 feed: list[Message] | None = None) -> dict[str, Any]:
        """One run of ``workers`` worker processes over ``work``, pre-produced (but ``feed``).

        ``join_at``: the workers after the first start only once the group has committed that
        share of the work, so partitions move from a worker in mid-stream (a rebalance with
        work in flight), which workers started together never see: they join in one
        assignment generation.

        ``feed`` (with ``join_at``): the part of ``work`` not pre-produced, sent from the moment
        the others start, spread over ``REBALANCE_FEED_S`` until they all have partitions, then
        the rest at once (:class:`Feeder`); the share and "done" still count all of ``work``.
        """
        from streams.testing import WorkerProcess

        name = ("pipeline" if workers == 1 else f"scaleout{workers}" if join_at is None
                else f"rebalance{workers}")
        n, n_life = work.n, len(work.lifecycle)
        if n < 1:
            raise BenchError(f"{name}: no appeals to process (--events and --scaleout-events "
                             "must be at least 1)")
        self.say(f"{name}: {workers} worker(s) over {n:,} appeals + {n_life:,} lifecycle events")
        tn = lambda base: t.topic_name(settings, base)  # noqa: E731
        inputs = [tn(t.intake_topic(c)) for c in CHANNELS] + [
            tn(b) for b in (t.LIFECYCLE, t.TRIAGE_PENDING, t.TRIAGE_DECISIONS, t.SLA_LIFECYCLE,
                            t.ROUTED, t.SLA_TICKS)]
        outputs = [tn(b) for b in (t.REGISTERED, t.TRIAGE, t.DEADLETTER)]
        progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id,
                                          inputs + outputs)
        # A state directory each: with --set store=rocksdb:// two workers must not share one.
        procs = [WorkerProcess(settings.replace(data_dir=str(self.log_dir / f"{name}-{i}-state")),
                               self.log_dir / f"{name}-{i}.log", new_session=OWN_SESSION)
                 for i in range(workers)]
        for p in procs[:1] if join_at is not None else procs:
            p.start()
        started = time.monotonic()
        # Share of the work committed when the others started, when the last got partitions.
        joined_at_share: float | None = None
        assigned_at_share: float | None = None
        feeder: Feeder | None = None
        fed_before_assignment: int | None = None
        timeline: list[procstat.GroupSnapshot] = []
        t0: float | None = None
        cpu0: list[float] = []
        done_at: float | None = None
        intake_topics = [tn(t.intake_topic(c)) for c in CHANNELS]
        last_say = last_change = time.monotonic()
        try:
            while True:
                snap = progress.snapshot()
                if timeline and (snap.committed, snap.end) != (timeline[-1].committed,
                                                                timeline[-1].end):
                    last_change = snap.at
                timeline.append(snap)
                if t0 is None and snap.end[tn(t.REGISTERED)] > 0:
                    t0 = snap.at
                    cpu0 = [procstat.cpu_seconds(p.proc.pid) for p in procs if p.proc]
                consumed = sum(snap.committed[x] for x in intake_topics)
                # The share of the run's work committed: intake, lifecycle and the SLA stage's
                # routed input (it trails the intake by far: partitions move with work left).
                share = min(1.0, (consumed + snap.committed[tn(t.LIFECYCLE)]
                                  + snap.committed[tn(t.ROUTED)]) / (2 * n + n_life))
                if join_at is not None and joined_at_share is None and share >= join_at:
                    joined_at_share = round(share, 3)
                    self.say(f"{name}: {share:.0%} of the work committed; starting the other "
                             f"worker(s)")
                    for p in procs[1:]:
                        p.start()
                    if feed:
                        feeder = Feeder(settings, feed, REBALANCE_FEED_S, self.say)
                        feeder.start()
                if (joined_at_share is not None and assigned_at_share is None
                        and all(assignments(p.log_path) for p in procs[1:])):
                    assigned_at_share = round(share, 3)
                    if feeder is not None:
                        fed_before_assignment = feeder.sent
                        feeder.rush()
                if feeder is not None:
                    feeder.check()
                # Only on end offsets a fetch confirmed: the broker's own can be short by a
                # batch, and "committed >= end" on them declared done a batch early.
                if (t0 is not None and snap.confirmed and consumed >= n
                        and snap.committed[tn(t.LIFECYCLE)] >= n_life
                        and all(snap.committed[x] >= snap.end[x] for x in inputs)):
                    done_at = snap.at
                    break
                if any(not p.alive for p in procs if p.proc is not None):
                    for p in procs:
                        if p.proc is not None and p.proc.poll() is not None:
                            _interrupted_child(p.proc)
                    raise BenchError(f"{name}: a worker died; see {self.log_dir}")
                if t0 is not None and time.monotonic() - last_change > 60:
                    detail = ", ".join(f"{x}: {snap.committed[x]}/{snap.end[x]}" for x in inputs)
                    raise BenchError(f"{name}: no progress for 60 s (committed/end: {detail}); "
                                     f"see {self.log_dir}")
                if t0 is None and time.monotonic() - started > PIPELINE_NO_OUTPUT_S:
                    raise BenchError(
                        f"{name}: no registered record {PIPELINE_NO_OUTPUT_S:.0f} s after the "
                        f"worker(s) started (intake committed {consumed:,}/{n:,}, dead letters "
                        f"{snap.end[tn(t.DEADLETTER)]:,}); see {self.log_dir}")
                if time.monotonic() - last_say > 10:
                    last_say = time.monotonic()
                    # Intake, lifecycle and the SLA's routed input are committed offsets
                    # (they trail the work done by up to a commit interval); routed and triage
                    # are records written.
                    self.say(f"{name}: committed: intake {consumed:,}/{n:,}, lifecycle "
                             f"{snap.committed[tn(t.LIFECYCLE)]:,}/{n_life:,}, routed by "
                             f"the SLA stage {snap.committed[tn(t.ROUTED)]:,}; written: "
                             f"routed {snap.end[tn(t.ROUTED)]:,}, triage "
                             f"{snap.end[tn(t.TRIAGE)]:,}")
                time.sleep(0.2)
            if t0 is None:
                raise BenchError(f"{name}: no output; see {self.log_dir}")
            inputs_done_at = done_at
            # "To the last aggregate updated" (issue 7): the window and its CPU end with the
            # aggregates' last publication to Redis (up to 2 s after the inputs are committed).
            done_at, cpu_end, settled = last_publication(
                settings, done_at,
                lambda: sum(procstat.cpu_seconds(p.proc.pid) for p in procs if p.proc))
            cpu = cpu_end - sum(cpu0)
            # Per worker process, and their sum: two workers hold twice the memory of one (the
            # max alone, reported until 2026-11-28, read as the pair's footprint).
            peaks = [procstat.peak_rss_mb(p.proc.pid) for p in procs if p.proc]
            # Appeal by appeal with two workers; one worker gets the light check (counts).
            check = verify_effect(settings, work, light=workers == 1)
        finally:
            if feeder is not None:
                feeder.stop()
            for p in procs:
                p.stop()
            progress.close()
        assert done_at is not None
        elapsed = done_at - t0
        events = n + n_life
        out: dict[str, Any] = {
            "workers": workers,
            "appeals": n,
            "lifecycle_events": n_life,
            "elapsed_s": round(elapsed, 2),
            # Of which after the inputs were all committed, until the last publication seen.
            "publication_s": round(done_at - inputs_done_at, 2),
            "aggregates_settled": settled,
            "appeals_per_s": round(n / elapsed, 1),
            "events_per_s": round(events / elapsed, 1),
            "cpu_s": round(cpu, 1),
            "cpu_s_per_1k_events": round(1000 * cpu / events, 4),
            "cpu_s_per_1k_appeals": round(1000 * cpu / n, 4),
            "cpu_utilisation": round(cpu / elapsed / workers, 2),
            "peak_rss_mb": round(sum(peaks), 1),
            "peak_rss_mb_per_worker": [round(x, 1) for x in peaks],
            "stages": stage_rates(timeline, settings, n, n_life),
            "triaged": timeline[-1].end[tn(t.TRIAGE)],
            "dead_letters": timeline[-1].end[tn(t.DEADLETTER)],
        }
        out.update(check)
        if join_at is not None:
            out.update(rebalance_report(procs, joined_at_share, assigned_at_share))
            if feed:
                out["fed_records"] = len(feed)
                out["fed_before_assignment"] = fed_before_assignment
            out["exactly_once_across_rebalance"] = bool(
                out.get("exactly_once_in_effect") and out["rebalance_seen"])
        return out

    def latency_phase(self, shared_kafka: str, redis: str) -> dict[str, Any]:
        """The latency run on a broker of its own, unless told to share the others' broker.

        Why its own: the embedded broker keeps every earlier phase's records in memory (about
        600,000 in the default run, 15,000 with ``--events 5000``), so on a shared broker the
        latency figure would depend on how much the earlier phases produced; on Apache Kafka
        they sit on disk. A broker of its own makes short and full runs measure the same thing.
        The run's own topics and worker are fresh either way.
        """
        from streams.devstack import start_broker

        if self.opts.latency_shared_broker:
            return {**self.latency(shared_kafka, redis), "latency_broker": "shared"}
        broker = start_broker(log_dir=self.log_dir)
        try:
            return {**self.latency(broker.url, redis), "latency_broker": "fresh"}
        finally:
            broker.stop()

    def latency(self, kafka: str, redis: str) -> dict[str, Any]:
        from streams.testing import WorkerProcess, read_topic
        from workers.demo.generator import Generator

        opts = self.opts
        settings = self.settings(kafka, redis)
        t.ensure_topics(settings)
        gen = Generator(seed=opts.seed + 1, malformed_share=0.0, run_id="lat")
        worker = WorkerProcess(settings, self.log_dir / "latency.log",
                               new_session=OWN_SESSION).start()
        try:
            warm = [gen.appeal(time.time()) for _ in range(200)]
            produce(settings, [(t.intake_topic(a.channel), None, a.value) for a in warm])
            progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id,
                                              [t.topic_name(settings, t.ROUTED),
                                               t.topic_name(settings, t.TRIAGE)])
            try:
                deadline = time.monotonic() + 120
                while sum(progress.snapshot().end.values()) < len(warm):
                    if time.monotonic() > deadline or not worker.alive:
                        if worker.proc is not None and worker.proc.poll() is not None:
                            _interrupted_child(worker.proc)
                        raise BenchError(f"latency: worker not ready; see {worker.log_path}")
                    time.sleep(0.2)
            finally:
                progress.close()
            total = int(opts.latency_rate * opts.latency_seconds)
            self.say(f"latency: {opts.latency_rate}/s for {opts.latency_seconds:.0f} s "
                     f"({total:,} appeals)")
            steady = [gen.appeal(time.time()) for _ in range(total)]
            watch = RoutedWatch(settings)
            watch.start()
            try:
                sent_rate = asyncio.run(paced_produce(
                    settings, [(t.intake_topic(a.channel), None, a.value) for a in steady],
                    opts.latency_rate, self.say))
                self._check_alive(worker, "during the steady run")
                self._await_outputs(settings, worker, len(warm) + total)
                watch.settle()
            finally:
                watch.stop()
            cpu = procstat.cpu_seconds(worker.proc.pid) if worker.proc else 0.0
            rss = procstat.peak_rss_mb(worker.proc.pid) if worker.proc else 0.0
            try:
                loop_lag = loop_lag_summary(worker.metrics_text())
            except OSError:
                loop_lag = {}
            want = {a.appeal_id for a in steady}
            # Every output is written (_await_outputs): these reads only collect them.
            routed = read_topic(settings, t.ROUTED, until=1, timeout=120, idle=2.0)
            triaged = {orjson.loads(r.value)["appeal_id"]
                       for r in read_topic(settings, t.TRIAGE, timeout=60, idle=1.0)}
            intake = []
            for c in CHANNELS:
                intake.extend(read_topic(settings, t.intake_topic(c), timeout=60, idle=1.0))
        finally:
            worker.stop()
        from workers.intake.core import appeal_id_for

        sent_at = {}
        for r in intake:
            doc = orjson.loads(r.value)
            sent_at[appeal_id_for(doc["channel"], doc["external_id"])] = r.timestamp
        timed: list[tuple[float, float]] = []
        handover: list[float] = []
        seen: set[str] = set()
        for r in routed:
            aid = orjson.loads(r.value)["appeal_id"]
            if aid in want and aid in sent_at and aid in watch.arrived and aid not in seen:
                seen.add(aid)
                # To arrival: when a consumer of appeals.routed had the record in hand.
                timed.append((sent_at[aid], watch.arrived[aid] - sent_at[aid]))
                # To hand-over: the routed record's CreateTime, stamped when the worker's
                # producer took it, before its linger and the broker's acknowledgement.
                handover.append(r.timestamp - sent_at[aid])
        # Percentiles over the appeals that made it would hide the ones that did not (a worker
        # that died mid-run "passed" on the 40% it routed before): every steady appeal not sent
        # to triage must have its sample.
        missing = want - triaged - seen
        if missing:
            raise BenchError(
                f"latency: {len(missing):,} of {len(want - triaged):,} appeals to be routed "
                f"have no routed record seen arriving (or no intake record)"
                + (f"; the consumer stamping arrivals failed: {watch.error}" if watch.error
                   else "")
                + f"; see {self.log_dir / 'latency.log'}")
        lat = sorted(x for _, x in timed)
        if len(lat) < 2:
            # Percentiles need two points (statistics.quantiles raised on one, and the whole
            # bench ended there, its other phases' figures lost).
            return {"latency_samples": len(lat), "latency_p50_ms": None,
                    "latency_p99_ms": None}
        q = statistics.quantiles(lat, n=100, method="inclusive")
        return {
            # Under 100 samples the 99th percentile is an interpolation between the largest
            # few, not a measured tail: said so beside it.
            **({"latency_p99_warning": f"from {len(lat)} samples (fewer than 100)"}
               if len(lat) < 100 else {}),
            "latency_rate_per_s": opts.latency_rate,
            "latency_achieved_rate_per_s": round(sent_rate, 1),
            "latency_seconds": opts.latency_seconds,
            "latency_samples": len(lat),
            "latency_p50_ms": round(q[49], 1),
            "latency_p90_ms": round(q[89], 1),
            "latency_p99_ms": round(q[98], 1),
            "latency_max_ms": round(lat[-1], 1),
            "latency_measured_to": "arrival at a consumer of appeals.routed",
            **_handover(handover),
            "latency_by_third": latency_by_window(timed, 3),
            **loop_lag,
            "latency_worker_cpu_s": round(cpu, 1),
            "latency_worker_peak_rss_mb": round(rss, 1),
        }

    @staticmethod
    def _check_alive(worker: Any, when: str) -> None:
        if not worker.alive:
            if worker.proc is not None and worker.proc.poll() is not None:
                _interrupted_child(worker.proc)
            raise BenchError(f"latency: the worker died {when}; see {worker.log_path}")

    def _await_outputs(self, settings: Settings, worker: Any, expected: int) -> None:
        """Wait until the routed and triage topics hold ``expected`` records in all.

        No fixed timeout: a worker that fell behind at the steady rate has a backlog to drain,
        and the 120 s read that stood here cut a long backlog short (its appeals silently left
        out of the percentiles). The wait lasts as long as the outputs grow; it fails when the
        worker dies or nothing new is written for ``LATENCY_STALL_S``.
        """
        progress = procstat.GroupProgress(settings.kafka_bootstrap, settings.app_id,
                                          [t.topic_name(settings, t.ROUTED),
                                           t.topic_name(settings, t.TRIAGE)])
        try:
            last, last_change = -1, time.monotonic()
            while True:
                written = sum(progress.snapshot().end.values())
                if written >= expected:
                    return
                if written != last:
                    last, last_change = written, time.monotonic()
                self._check_alive(worker, f"with {expected - written:,} appeals to route")
                if time.monotonic() - last_change > LATENCY_STALL_S:
                    raise BenchError(
                        f"latency: {written:,} of {expected:,} appeals routed or triaged and "
                        f"nothing new for {LATENCY_STALL_S:.0f} s; see {worker.log_path}")
                time.sleep(0.2)
        finally:
            progress.close()

    # -- report -----------------------------------------------------------------------------

    def report(self, work: Workload, ceiling: dict[str, Any], naive: dict[str, Any],
               pipeline: dict[str, Any], stages: dict[str, Any], latency: dict[str, Any],
               scale: dict[str, Any], load_before: float) -> dict[str, Any]:
        ceil = ceiling["events_per_s"]
        nv = naive["events_per_s"]
        doc: dict[str, Any] = {
            "command": self.opts.command,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": procstat.machine(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(procstat.loadavg(), 2),
            "appeals": work.n,
            "lifecycle_events": len(work.lifecycle),
            "partitions": self.opts.partitions,
            "ceiling_events_per_s": ceiling["events_per_s"],
            "naive_events_per_s": naive["events_per_s"],
            "pipeline_events_per_s": pipeline["events_per_s"],
            "pipeline_appeals_per_s": pipeline["appeals_per_s"],
            "pipeline_to_ceiling": _ratio(pipeline["events_per_s"], ceil, 4),
            "pipeline_appeals_to_ceiling": _ratio(pipeline["appeals_per_s"], ceil, 4),
            "pipeline_to_naive": _ratio(pipeline["events_per_s"], nv, 2),
            "pipeline_appeals_to_naive": _ratio(pipeline["appeals_per_s"], nv, 2),
            "naive_to_ceiling": _ratio(nv, ceil, 4),
            "latency_p50_ms": latency.get("latency_p50_ms"),
            "latency_p99_ms": latency.get("latency_p99_ms"),
            "peak_rss_mb": pipeline["peak_rss_mb"],
            "ceiling": ceiling,
            "naive": naive,
            "pipeline": pipeline,
            "stage_compute_us_per_event": stages,
            "latency": latency,
            "scaleout": scale,
            "scaleout_speedup": scale.get("speedup"),
            "failed_phases": list(self.failed_phases),
            "total_seconds": round(time.monotonic() - self.started, 1),
        }
        doc["failed_verdicts"] = failed_verdicts(doc)
        return doc


def failed_verdicts(doc: dict[str, Any]) -> list[str]:
    """The correctness verdicts of a report that came out false, by their keys in ``--json``.

    Why apart from ``failed_phases``: a phase that measured its outputs and found them not
    exactly once did not fail to run, so it was printed (``false`` in the table and the JSON)
    and ``appeals bench`` still exited 0; a script or CI job running the bench took a broken
    pipeline for a pass. ``appeals bench`` exits 1 when this is not empty. A verdict not
    reached (its phase skipped or failed) is not listed here: ``failed_phases`` has those.
    """
    out: list[str] = []
    scale = doc.get("scaleout") or {}
    for key, run in (("pipeline", doc.get("pipeline") or {}), ("scaleout", scale)):
        if run.get("exactly_once_in_effect") is False:
            out.append(f"{key}.exactly_once_in_effect")
    reb = scale.get("rebalance") or {}
    if reb.get("exactly_once_across_rebalance") is False:
        why = ("outputs not exactly once in effect" if reb.get("exactly_once_in_effect") is False
               else "no rebalance seen while work was left" if not reb.get("rebalance_seen")
               else "")
        out.append("scaleout.rebalance.exactly_once_across_rebalance"
                   + (f" ({why})" if why else ""))
    return out


# -- measurement pieces ---------------------------------------------------------------------


def produce(settings: Settings, messages: list[Message]) -> float:
    """Send everything with acks=all as fast as aiokafka goes; returns records/s."""
    return asyncio.run(_produce(settings, messages))


async def _producer(settings: Settings) -> Any:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5, max_batch_size=512 * 1024,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    return producer


async def _produce(settings: Settings, messages: list[Message]) -> float:
    producer = await _producer(settings)
    started = time.perf_counter()
    try:
        pending = []
        for base, key, value in messages:
            pending.append(await producer.send(t.topic_name(settings, base), value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(messages) / max(1e-9, time.perf_counter() - started)


async def paced_produce(settings: Settings, messages: list[Message], rate: float,
                        say: Callable[[str], None], *, label: str = "latency",
                        rush: threading.Event | None = None,
                        sent_count: Callable[[int], None] | None = None) -> float:
    """Send at ``rate`` records/s in 10 ms slices (each record stamped when sent); once
    ``rush`` is set, the rest as fast as it goes. ``sent_count`` hears the count so far."""
    producer = await _producer(settings)
    started = time.perf_counter()
    sent = 0
    pending = []
    try:
        last_say = started
        while sent < len(messages):
            due = (len(messages) if rush is not None and rush.is_set() else
                   min(len(messages), int((time.perf_counter() - started) * rate) + 1))
            while sent < due:
                base, key, value = messages[sent]
                pending.append(await producer.send(t.topic_name(settings, base), value,
                                                   key=key))
                sent += 1
            if sent_count is not None:
                sent_count(sent)
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending = []
            if time.perf_counter() - last_say > 15:
                last_say = time.perf_counter()
                say(f"{label}: {sent:,}/{len(messages):,} sent")
            await asyncio.sleep(0.01)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent / max(1e-9, time.perf_counter() - started)


class Feeder:
    """Sends the rebalance run's input not pre-produced, in a thread, while the run goes on:
    spread evenly over ``seconds``, and all that is left at once after :meth:`rush`.

    Why: the rebalance must happen while input is still arriving. Pre-produced, a small run
    (or a fast host) had consumed all of it before the second worker joined, and the verdict
    failed with nothing wrong; fed over a time longer than a join takes, the input outlasts the
    join on any host. It does not make a missing rebalance pass: a second worker that has no
    partitions when all the input is committed still fails the verdict.
    """

    def __init__(self, settings: Settings, messages: list[Message], seconds: float,
                 say: Callable[[str], None]) -> None:
        self.settings = settings
        self.messages = messages
        self.rate = len(messages) / max(seconds, 1e-3)
        self.say = say
        #: Records handed to the producer so far.
        self.sent = 0
        self.error = ""
        self._rush = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebalance-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def rush(self) -> None:
        self._rush.set()

    def _count(self, n: int) -> None:
        self.sent = n

    def _run(self) -> None:
        try:
            asyncio.run(paced_produce(self.settings, self.messages, self.rate, self.say,
                                      label="rebalance feed", rush=self._rush,
                                      sent_count=self._count))
        except Exception as exc:  # reported by check() in the run's loop
            self.error = f"{type(exc).__name__}: {exc}"

    def check(self) -> None:
        """BenchError when sending failed: the run would wait for input that never comes."""
        if self.error:
            raise BenchError(f"rebalance: sending the rest of the input failed "
                             f"({self.error}) after {self.sent:,} of {len(self.messages):,}")

    def stop(self) -> None:
        """Send what is left at once and wait for it (a few seconds), so no send is cut off
        mid-way when the run ends early (an error) or no thread outlives the run."""
        self.rush()
        if self._thread.is_alive():
            self._thread.join(60)


def last_publication(settings: Settings, since: float, sample: Callable[[], float],
                     quiet: float = PUBLISH_QUIET_S,
                     cap: float = PUBLISH_WAIT_S) -> tuple[float, float, bool]:
    """When the aggregates in Redis last changed, ``since`` the inputs were all committed
    (monotonic clock, polled every 0.2 s), with ``sample()`` (the workers' CPU) taken then,
    and whether they settled (no change for ``quiet`` s before ``cap``).

    Why: the pipeline's window ended when the inputs were committed, but the SLA agent
    publishes the figures every 2 s, so the last aggregate update (where issue 7 ends the
    window) came up to 2 s later and was left out. No change after ``since``: the inputs' end
    stands. Figures still changing at ``cap`` change for another reason than the input (a
    deadline fired): the inputs' end stands too, and ``settled`` says so.
    """
    import redis

    from workers.aggregates.partials import counters_key, sketches_key

    client = redis.Redis.from_url(settings.redis)
    prefix = f"{settings.app_id}:"
    keys = [f(prefix, p) for f in (counters_key, sketches_key)
            for p in range(settings.partitions)]

    def figures() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return list(pipe.execute())

    try:
        first = sample()
        at, value, seen = since, first, figures()
        while True:
            now = time.monotonic()
            if now - at >= quiet:
                return at, value, True
            if now - since >= cap:
                return since, first, False
            time.sleep(0.2)
            current = figures()
            if current != seen:
                at, value, seen = time.monotonic(), sample(), current
    finally:
        client.close()


def assignments(log_path: Path) -> list[str]:
    """The Faust assignment generations a worker's log shows, in order (one per assignment).

    Faust logs ``generation id N`` on each assignment it takes (``Executing
    _on_partitions_assigned`` just before): a worker present at a rebalance logs one more.
    """
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split("generation id ", 1)[1].split()[0] for line in text.splitlines()
            if "generation id " in line]


def rebalance_report(procs: list[Any], joined_at_share: float | None,
                     assigned_at_share: float | None) -> dict[str, Any]:
    """Whether partitions moved in mid-stream: the first worker took a second assignment
    after the others started, and they got theirs while intake was still uncommitted."""
    seen = {f"worker-{i}": assignments(p.log_path) for i, p in enumerate(procs)}
    first = seen["worker-0"]
    others = [seen[f"worker-{i}"] for i in range(1, len(procs))]
    return {
        "joined_at_share": joined_at_share,
        "assigned_at_share": assigned_at_share,
        "assignments": {w: len(g) for w, g in seen.items()},
        "generations": seen,
        "rebalance_seen": bool(joined_at_share is not None and len(first) >= 2
                               and all(others) and assigned_at_share is not None
                               and assigned_at_share < 1.0),
    }


def stage_rates(timeline: list[procstat.GroupSnapshot], settings: Settings, n: int,
                n_life: int) -> dict[str, Any]:
    """Rate of each stage while it was active, from the growth of its output (or commits)."""
    tn = lambda base: t.topic_name(settings, base)  # noqa: E731

    def span(value: Callable[[procstat.GroupSnapshot], int], total: int) -> dict[str, Any]:
        start = next((s.at for s in timeline if value(s) > 0), None)
        end = next((s.at for s in timeline if value(s) >= total), None)
        if start is None or end is None or total == 0:
            return {"events": total, "events_per_s": None}
        # The first observation lags the first output by up to one poll: credit it back.
        secs = max(0.2, end - start + 0.2)
        return {"events": total, "active_s": round(secs, 2),
                "events_per_s": round(total / secs, 1)}

    routed_t = tn(t.ROUTED)
    life_t, rekeyed_t = tn(t.LIFECYCLE), tn(t.SLA_LIFECYCLE)
    return {
        # Registration, classification and routing run in one agent (one batch, one step).
        "intake_classify_route": span(lambda s: s.end[routed_t] + s.end[tn(t.TRIAGE)], n),
        # Lifecycle events are applied where they are read (re-keyed ones: read twice).
        "sla": span(lambda s: s.committed[routed_t] + s.committed[life_t]
                    + s.committed[rekeyed_t],
                    timeline[-1].end[routed_t] + n_life + timeline[-1].end[rekeyed_t]),
    }


def _classify_cost(classifier: Any, work: Workload, texts: list[str],
                   warm_with: int = 10_000) -> dict[str, float]:
    """Classification per appeal twice: with the per-token caches empty, and in steady state.

    Why both: the classifier caches lemmas and character n-grams per token, so texts whose
    words it has seen cost ~5x less than a first sight (the bench's generated typos keep adding
    new tokens, so the cost never falls to a fully cached one). ``classify_cold`` is this
    process's first pass (caches as empty as a fresh worker's); ``classify`` is measured on
    other appeals after up to ``warm_with`` appeals the sample does not contain went through,
    which is what a worker pays after its first few thousand appeals. Until 2026-11-26 only a
    cold-ish figure (50 texts of warming) was printed, and read as the steady cost.
    """
    def per_text_us(batch: list[str]) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(batch), 500):
            classifier.classify_batch(batch[i:i + 500])
        return round((time.perf_counter() - t0) / max(len(batch), 1) * 1e6, 1)

    half = len(texts) // 2
    cold = per_text_us(texts[:half])
    others = [orjson.loads(v).get("text") or "" for _, _, v in
              work.appeals[len(texts):len(texts) + warm_with]]
    per_text_us(others)
    return {"classify": per_text_us(texts[half:]), "classify_cold": cold}


def stage_compute(work: Workload, sample: int = 3000) -> dict[str, Any]:
    """Business-logic cost per event of each stage, in this process, with no Kafka at all.

    Compared with the worker's CPU per event, this shows how much is framework overhead.
    """
    from schemas.records import SourcePosition
    from workers.classification.classifier import load_classifier
    from workers.intake import agent as intake_agent
    from workers.intake import core
    from workers.pipeline import load_router
    from workers.route.agent import route_input, routed_record
    from workers.sla.deadline_service import DeadlineService
    from workers.sla.engine import apply_lifecycle, new_state

    intake_agent._load_plugins()
    raw = [v for _, _, v in work.appeals[:sample]]
    m = len(raw)
    out: dict[str, Any] = {}
    now = dt.datetime.now(dt.UTC)

    t0 = time.perf_counter()
    regs = []
    for i, value in enumerate(raw):
        appeal = core.decode_intake(value, max_text_length=20_000, max_message_bytes=1_000_000)
        reg = core.register(appeal, registered_at=now, source=SourcePosition("b", 0, i))
        regs.append(reg.to_json())
    out["intake_decode_register_serialise"] = round((time.perf_counter() - t0) / m * 1e6, 1)

    classifier = load_classifier()
    router, _ = load_router(Settings())
    docs = [orjson.loads(r) for r in regs]
    out.update(_classify_cost(classifier, work, [d["text"] for d in docs]))
    results = classifier.classify_batch([d["text"] for d in docs])
    t0 = time.perf_counter()
    routed = []
    for d, r in zip(docs, results, strict=True):
        decision = router.route(route_input(d, r.category))
        rec = routed_record(d, decision, r.category, r.urgent, r.confidence, r.model_version)
        routed.append(rec.to_json())
    out["route_and_serialise"] = round((time.perf_counter() - t0) / m * 1e6, 1)

    rules = DeadlineService().rules()
    t0 = time.perf_counter()
    states = {}
    for value in routed:
        data = orjson.loads(value)
        ts = dt.datetime.fromisoformat(data["registered_at"]).timestamp()
        states[data["appeal_id"]], _ = new_state(data, 0, ts, "Asia/Barnaul", rules)
    out["sla_new_state"] = round((time.perf_counter() - t0) / m * 1e6, 1)
    life = [v for _, _, v in work.lifecycle[: sample * 2]]
    t0 = time.perf_counter()
    applied = 0
    for value in life:
        data = orjson.loads(value)
        state = states.get(data["appeal_id"])
        if state is not None:
            apply_lifecycle(state, data, rules)
            applied += 1
    if applied:
        out["sla_apply_lifecycle"] = round((time.perf_counter() - t0) / applied * 1e6, 1)
    return out


def verify_effect(settings: Settings, work: Workload, light: bool = False) -> dict[str, Any]:
    """Exactly-once in effect of a run's outputs.

    Without ``light``: appeal by appeal against truth from the workload (``effect.verify``:
    routed once, read-model entry with its authority and status, alerts unique, figures equal
    to the truth). With ``light`` (the single-worker run, no rebalance to check, 200,000
    appeals): only the number of read-model entries and the aggregates' received count.
    """
    if not light:
        from workers.bench import effect

        return effect.verify(settings, work)
    import redis

    from streams.testing import wait_for
    from workers.aggregates.readmodel import read_figures

    client = redis.Redis.from_url(settings.redis)
    prefix = f"{settings.app_id}:"
    out: dict[str, Any] = {}
    read_model = 0
    for _ in client.scan_iter(match=f"{prefix}appeal:*", count=10_000):
        read_model += 1
    out["read_model_entries"] = read_model

    def received() -> int:
        # Per category, where every appeal is received once: per authority a redirected
        # appeal counts for each body that received it (engine.contributions).
        figures = read_figures(client, prefix, settings.partitions, kind="cat")
        return sum(f.received for f in figures.values())

    # Aggregates are published every 2 s: wait for the last publication.
    try:
        out["aggregate_received"] = wait_for(lambda: received() == read_model and read_model,
                                             timeout=15, what="aggregates") and received()
    except TimeoutError:
        out["aggregate_received"] = received()
    return out


# -- output -------------------------------------------------------------------------------


def latency_by_window(timed: list[tuple[float, float]], parts: int) -> list[dict[str, Any]]:
    """p50 / p99 of the latency per equal part of the sending time, in order.

    Why: on the embedded broker a fetch costs more the more record batches the fetched
    partitions hold (``python -m benchmarks.broker_fetch``), while the worker does the same
    work per appeal in every part; a rise from the first part to the last points at the broker.
    ``timed`` holds (send time, latency) pairs in ms.
    """
    if not timed or parts < 1:
        return []
    first = min(t for t, _ in timed)
    span = max(t for t, _ in timed) - first or 1.0
    groups: list[list[float]] = [[] for _ in range(parts)]
    for sent, latency in timed:
        groups[min(parts - 1, int((sent - first) / span * parts))].append(latency)
    out = []
    for i, xs in enumerate(groups):
        xs.sort()
        if len(xs) < 2:
            continue
        q = statistics.quantiles(xs, n=100, method="inclusive")
        out.append({"part": i + 1, "samples": len(xs), "p50_ms": round(q[49], 1),
                    "p99_ms": round(q[98], 1)})
    return out


def _handover(xs: list[float]) -> dict[str, Any]:
    """The latency to the routed record's CreateTime (the earlier definition), to compare."""
    if len(xs) < 2:
        return {}
    q = statistics.quantiles(sorted(xs), n=100, method="inclusive")
    return {"latency_to_handover_p50_ms": round(q[49], 1),
            "latency_to_handover_p99_ms": round(q[98], 1)}


class RoutedWatch:
    """A live consumer of appeals.routed that stamps each record when it arrives (ms, this
    host's clock, the one the intake records' CreateTime comes from).

    Why: the routed record's CreateTime is stamped when the worker's producer takes it
    (``timestamp=None``), before its linger and the broker's acknowledgement, so "routed
    CreateTime - intake CreateTime" left out the last hop (review: ~14 ms at p50, 22 ms at
    p99). It reads from the topic's end as it was before the sending began, with a 5 ms fetch
    wait (Tansu answers a waiting fetch only when the wait is over; a wait of 0 returns
    nothing).

    Why a process of its own: run as a thread of the bench, it shared the interpreter lock with
    the paced producer, whose sends then went out in bursts; the worker's own latency (to the
    hand-over) rose from ~95 ms to 126-152 ms at p99 on this 2-core host. In a process of its
    own it costs the host a consumer, not the producer its pacing.
    """

    def __init__(self, settings: Settings) -> None:
        import multiprocessing

        self.settings = settings
        self.arrived: dict[str, float] = {}
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._ready = self._ctx.Event()
        self._failed = self._ctx.Event()
        #: The child's error, once collected (start, stop).
        self.error = ""
        self._last_new = self._ctx.Value("d", time.monotonic())
        self._results: Any = self._ctx.Queue()
        self._proc: Any = None

    def start(self) -> None:
        self._proc = self._ctx.Process(
            target=_routed_watch_main, name="routed-watch", daemon=True,
            args=(self.settings, self._stop, self._ready, self._failed, self._last_new,
                  self._results))
        self._proc.start()
        # Polled, so a child that dies before it is ready (an import or unpickling error) is
        # seen at once rather than after the whole minute.
        deadline = time.monotonic() + 60
        while not self._ready.wait(0.5):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                break
        if not self._ready.is_set() or self._failed.is_set() or not self._proc.is_alive():
            # A child that failed sets ``failed`` before ``ready``: it may still be alive,
            # sending its error, when this wakes (a live child was taken for a started one).
            error = self._collect(5.0)
            self.stop()
            raise BenchError(f"latency: the consumer of appeals.routed did not start "
                             f"({error or self.error or 'no assignment in 60 s'})")

    def settle(self, idle: float = 1.0, cap: float = 10.0) -> None:
        """Every output is written: let the last ones arrive here too."""
        deadline = time.monotonic() + cap
        while time.monotonic() - self._last_new.value < idle and time.monotonic() < deadline:
            time.sleep(0.1)

    def _collect(self, timeout: float) -> str:
        """Take the child's stamps (and its error, if any) once it has sent them."""
        import queue

        try:
            arrived, error = self._results.get(timeout=timeout)
        except queue.Empty:
            return ""
        self.arrived.update(arrived)
        self.error = self.error or error
        return error

    def stop(self) -> None:
        if self._proc is None:
            return
        self._stop.set()
        if self._proc.is_alive() or not self._results.empty():
            self._collect(30.0)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        self._proc = None


def _routed_watch_main(settings: Settings, stop: Any, ready: Any, failed: Any, last_new: Any,
                       results: Any) -> None:
    """The :class:`RoutedWatch` process: stamps until ``stop``, then sends its stamps. Ctrl-C
    reaches the whole process group: the bench stops this process itself (or it dies with it,
    a daemon), so it ignores SIGINT rather than print a traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    arrived: dict[str, float] = {}
    error = ""

    async def run() -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            t.topic_name(settings, t.ROUTED),
            bootstrap_servers=settings.kafka_bootstrap, group_id=None,
            auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=5)
        try:
            await consumer.start()
            while not consumer.assignment() and not stop.is_set():
                await consumer.getmany(timeout_ms=50)
            for tp in consumer.assignment():
                await consumer.position(tp)  # fixed before the first appeal is sent
            ready.set()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50)
                now = time.time() * 1000
                for records in batches.values():
                    for r in records:
                        last_new.value = time.monotonic()
                        arrived.setdefault(orjson.loads(r.value)["appeal_id"], now)
        finally:
            await consumer.stop()

    try:
        asyncio.run(run())
    except Exception as exc:  # reported by start() or as missing samples
        error = f"{type(exc).__name__}: {exc}"
        failed.set()  # before ready: start() must not take a failed child for a started one
        ready.set()
    results.put((arrived, error))


def loop_lag_summary(metrics_text: str) -> dict[str, Any]:
    """The worker's event-loop probe over its life: how often its loop was held, and how long.

    From the ``appeals_event_loop_lag_seconds`` histogram of a /metrics scrape (cumulative
    buckets): the share of 100 ms probes that woke 25 ms / 100 ms late or more.
    """
    from prometheus_client.parser import text_string_to_metric_families

    buckets = {float(s.labels["le"]): s.value
               for family in text_string_to_metric_families(metrics_text)
               if family.name == "appeals_event_loop_lag_seconds"
               for s in family.samples if s.name.endswith("_bucket")}
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return {}

    def share_over(bound: float) -> float:
        return round(1.0 - buckets.get(bound, total) / total, 4)

    return {"loop_probes": int(total), "loop_lag_over_25ms_share": share_over(0.025),
            "loop_lag_over_100ms_share": share_over(0.1)}


def _ratio(a: float | None, b: float | None, digits: int) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def _rate(rate: float | None) -> str:
    return f"{rate:,.0f} events/s" if rate is not None else "too few events to time"


def render_table(doc: dict[str, Any]) -> str:
    """The human-readable report: one row per measurement, ratios to the ceiling and naive."""
    ceil = doc["ceiling_events_per_s"]
    nv = doc["naive_events_per_s"]
    p = doc["pipeline"]
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(name: str, rate: float | None, cpu: float | None, rss: float | None,
            note: str = "") -> None:
        if rate is None:
            rows.append((name, "-", "-", "-", "-", note))
            return
        rows.append((name, f"{rate:,.0f}", f"{rate / ceil:.3f}" if ceil else "-",
                     f"{rate / nv:.2f}" if nv else "-",
                     f"{cpu:.3f}" if cpu is not None else "-",
                     (f"{rss:,.0f}" if rss else "-") + (f"  {note}" if note else "")))

    c, n = doc["ceiling"], doc["naive"]
    row("ceiling: aiokafka + orjson", c["events_per_s"], c["cpu_s_per_1k"], c["peak_rss_mb"])
    row("naive Faust agent + table", n["events_per_s"], n["cpu_s_per_1k"], n["peak_rss_mb"],
        f"({n['count']:,} events{', time-capped' if n['capped'] else ''})")
    row("pipeline, input events/s", p["events_per_s"], p["cpu_s_per_1k_events"],
        p["peak_rss_mb"], f"({p['appeals']:,} appeals + {p['lifecycle_events']:,} lifecycle)")
    row("pipeline, appeals/s", p["appeals_per_s"], p["cpu_s_per_1k_appeals"], None)
    for stage, s in p["stages"].items():
        # Output growth (SLA: committed offsets, in 1 s commit steps) between first and last
        # change: no CPU or RSS of their own, all stages share one process.
        row(f"  stage {stage}", s.get("events_per_s"), None, None,
            "(while active; rate only, from output growth)")
    sc = doc.get("scaleout") or {}
    if sc.get("failed"):
        rows.append(("scale-out 2 workers, appeals/s", "-", "-", "-", "-", "FAILED"))
    elif sc:
        row("scale-out 2 workers, appeals/s", sc["appeals_per_s"], sc["cpu_s_per_1k_appeals"],
            sc["peak_rss_mb"], f"speed-up x{sc['speedup']} (CPU and RSS: both workers, summed)")
    header = ("measurement", "events/s", "/ceiling", "/naive", "CPU s/1k", "peak RSS MB")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [f"appeals bench - {doc['date']} - {doc['machine']['cpu']}, "
             f"{doc['machine']['cores']} cores, load avg {doc['load_average_before']} before / "
             f"{doc['load_average_after']} after (shared machine: compare ratios, not absolutes)",
             f"command: {doc['command']}", ""]
    for r in [header, *rows]:
        lines.append("  ".join(r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i])
                               for i in range(5)) + "  " + r[5])
    lines.append("")
    lines.append(f"pipeline: {p['elapsed_s']} s"
                 + (f" (to the last aggregate publication, {p['publication_s']} s after the "
                    f"inputs were committed)" if p.get("publication_s") is not None else "")
                 + f", worker CPU {p['cpu_s']} s "
                 f"({p['cpu_utilisation']:.0%} of one core), triaged {p['triaged']:,}, "
                 f"read-model entries {p.get('read_model_entries', '-')}, "
                 f"aggregate received {p.get('aggregate_received', '-')}")
    lines.append("stage compute, us/event, isolated (no Kafka): " + ", ".join(
        f"{k} {v}" for k, v in doc["stage_compute_us_per_event"].items()))
    lat = doc.get("latency") or {}
    if lat.get("failed"):
        lines.append(f"latency intake->routed: FAILED: {lat['failed']}")
    elif lat.get("latency_samples", 0) < 2 and "latency_samples" in lat:
        lines.append(f"latency intake->routed: {lat['latency_samples']} sample(s), too few for "
                     "percentiles (at least 2)")
    elif lat.get("latency_samples"):
        lines.append(
            f"latency intake->routed at {lat['latency_rate_per_s']}/s for "
            f"{lat['latency_seconds']:.0f} s (achieved {lat['latency_achieved_rate_per_s']:.0f}/s,"
            f" {lat['latency_samples']:,} samples): p50 {lat['latency_p50_ms']} ms, "
            f"p90 {lat['latency_p90_ms']} ms, p99 {lat['latency_p99_ms']} ms, "
            f"max {lat['latency_max_ms']} ms"
            + (f" (p99 {lat['latency_p99_warning']})" if lat.get("latency_p99_warning") else "")
            + (" (a broker of its own)" if lat.get("latency_broker") == "fresh" else
               " (the other phases' broker)" if lat.get("latency_broker") == "shared" else ""))
        if lat.get("latency_to_handover_p50_ms") is not None:
            lines.append(f"  (to arrival at a consumer of appeals.routed; to the worker's "
                         f"hand-over to its producer: p50 {lat['latency_to_handover_p50_ms']} "
                         f"ms, p99 {lat['latency_to_handover_p99_ms']} ms)")
        thirds = lat.get("latency_by_third") or []
        if thirds:
            lines.append("  by third of the run (p50 / p99 ms): " + ", ".join(
                f"{w['p50_ms']:g} / {w['p99_ms']:g}" for w in thirds))
        if lat.get("loop_probes"):
            lines.append(
                f"  worker event loop ({lat['loop_probes']:,} probes of 100 ms): held "
                f"25 ms or more in {lat['loop_lag_over_25ms_share']:.1%}, 100 ms or more in "
                f"{lat['loop_lag_over_100ms_share']:.1%}")
    if sc.get("failed"):
        lines.append(f"scale-out: FAILED: {sc['failed']}")
    elif sc:
        lines.append(
            f"scale-out over {sc['appeals']:,} appeals: 2 workers {sc['events_per_s']:,.0f} vs "
            f"1 worker {p['events_per_s']:,.0f} input events/s = x{sc['speedup']}; "
            f"exactly-once in effect: {sc.get('exactly_once_in_effect')} "
            f"(registered {sc.get('registered_records'):,} records / "
            f"{sc.get('registered_distinct'):,} distinct, routed {sc.get('routed_records'):,} / "
            f"{sc.get('routed_distinct'):,}, triaged {sc.get('triaged_distinct'):,}, read-model "
            f"{sc.get('read_model_entries'):,}, aggregate received "
            f"{sc.get('aggregate_received'):,})")
        reb = sc.get("rebalance") or {}
        if reb:
            lines.append(
                f"rebalance over {reb['appeals']:,} appeals: second worker started at "
                f"{reb.get('joined_at_share')} of the work committed, assigned at "
                f"{reb.get('assigned_at_share')}"
                + (f" (by then {reb['fed_before_assignment']:,} of the "
                   f"{reb['fed_records']:,} records fed during the run were sent)"
                   if reb.get("fed_records") and reb.get("fed_before_assignment") is not None
                   else "")
                + f"; assignments {reb.get('assignments')} "
                f"(generations {reb.get('generations')}); rebalance seen "
                f"{reb.get('rebalance_seen')}; exactly once in effect across it: "
                f"{reb.get('exactly_once_across_rebalance')}")
        for what in (sc, reb):
            if what.get("effect_differences"):
                lines.append("  differences: " + "; ".join(
                    f"{kind} {d['count']:,} (e.g. {', '.join(d['e.g.'])})"
                    for kind, d in what["effect_differences"].items()))
    if doc.get("failed_phases"):
        lines.append("FAILED phases: " + ", ".join(doc["failed_phases"]))
    if doc.get("failed_verdicts"):
        lines.append("FAILED verdicts: " + ", ".join(doc["failed_verdicts"]))
    lines.append(f"total bench time {doc['total_seconds']} s")
    return "\n".join(lines)


def command_line() -> str:
    return "appeals " + shlex.join(sys.argv[1:]) if sys.argv else "appeals bench"
