"""Assembles one worker process: the Faust app, every agent, the metrics endpoint.

Every worker runs every agent; Kafka's consumer group spreads the partitions over however many
workers run. Nothing here assumes a single process.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitoring import metrics
from streams import fastpath, faust_patches, gc_tuning
from streams.app import create_app
from streams.payload_logging import quiet_payload_loggers
from streams.settings import Settings
from workers import lag, progress
from workers.intake import agent as intake_agent
from workers.notify import agent as notify_agent
from workers.route import agent as route_agent
from workers.runtime import WorkerContext
from workers.sla import agent as sla_agent

log = logging.getLogger(__name__)


def load_router(settings: Settings) -> tuple[Any, Any]:
    from workers.routing import Router, load_rules
    from workers.routing.loader import default_rules_path

    path = settings.routing_rules or str(default_rules_path())
    # APPEALS_DEFAULT_REGION, as the API loads them: the two must agree on where an appeal
    # from a region without rules goes.
    return Router(load_rules(path, default_region=settings.default_region)), path


def build_worker(settings: Settings) -> tuple[faust.App, WorkerContext]:
    from workers.classification.classifier import load_classifier

    app = create_app(settings)
    active = faust_patches.active()
    for patch in faust_patches.PATCHES:
        metrics.FAUST_PATCH_ACTIVE.labels(patch=patch).set(1 if active[patch] else 0)
    ctx = WorkerContext.create(app, settings)
    router, rules_path = load_router(settings)
    started = time.perf_counter()
    classifier = load_classifier(settings.classifier_model or None)
    log.info("classifier %s loaded in %.2f s; routing rules %s (version %s)",
             classifier.version, time.perf_counter() - started, rules_path,
             router.rules.version)

    intake_agent.install(app, ctx, router, classifier)
    route_agent.install_triage(app, ctx, router)
    sla_agent.install(app, ctx, router)
    notify_agent.install(app, ctx, deliver=_delivery(settings, router))
    _install_rules_watcher(app, router, rules_path, settings.default_region)
    _install_metrics_endpoint(app, settings)
    _install_lag_monitor(app, settings.lag_interval)
    _install_loop_probe(app)
    return app, ctx


def _delivery(settings: Settings, router: Any) -> Any:
    try:
        from workers.notify.delivery import build_delivery
    except ImportError:
        return None
    return build_delivery(settings, router)


def _install_rules_watcher(
    app: faust.App, router: Any, path: str, default_region: str | None
) -> None:
    from workers.routing.watcher import POLL_INTERVAL_S, RulesWatcher

    @app.task
    async def watch_rules() -> None:
        watcher = RulesWatcher(path, router.swap, interval=POLL_INTERVAL_S, initial=router.rules,
                               default_region=default_region)
        watcher.start()


def _install_metrics_endpoint(app: faust.App, settings: Settings) -> None:
    async def metrics_handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        ok = app.consumer is not None and not app.should_stop
        if not ok:
            return web.json_response({"status": "stopping"}, status=503)
        return _stall_report(progress.STAGES, settings.stage_stall_timeout)

    @app.task
    async def serve_metrics() -> None:
        web_app = web.Application()
        web_app.router.add_get("/metrics", metrics_handler)
        web_app.router.add_get("/healthz", health)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else settings.metrics_port
        shown = settings.metrics_host
        if shown in ("0.0.0.0", "::"):
            shown = "127.0.0.1"
        elif ":" in shown:
            shown = f"[{shown}]"
        log.info("metrics on http://%s:%d/metrics", shown, port)
        metrics.WORKER_UP.set(1)


def _stall_report(stages: progress.StageProgress, threshold: float) -> web.Response:
    """``/healthz``: 503 while a stage is stalled (:mod:`workers.progress`), so a worker whose
    agents hang is not taken for a healthy one by its healthcheck."""
    stalled = stages.stalled(threshold)
    if not stalled:
        return web.json_response({"status": "ok"})
    detail = "; ".join(
        f"stage {s.stage}: no batch finished for {s.seconds:.0f} s while {s.backlog} records "
        "of its partitions wait" for s in stalled)
    return web.json_response({
        "status": "stalled",
        "stalled_stages": {s.stage: {"seconds": round(s.seconds, 1), "backlog": s.backlog}
                           for s in stalled},
        "stall_timeout_seconds": threshold,
        "detail": f"{detail} (APPEALS_STAGE_STALL_TIMEOUT {threshold:g} s): an agent hangs; "
                  "its log and the broker's and Redis's health tell why, a restart replays "
                  "what it had not committed",
    }, status=503)


def _install_lag_monitor(app: faust.App, interval: float) -> None:
    """Every ``interval`` (``APPEALS_LAG_INTERVAL``, 5 s): consumer lag per partition, and
    records the fast path delivered again.

    Lag is the records after the committed offset (:mod:`workers.lag`): those read into a
    stream's buffer but not processed count, so a worker whose agents hang shows its backlog.
    Partitions whose high watermark stands still while records wait (Faust stopped fetching
    them, their buffer being full) get their end from a probe every
    :data:`workers.lag.PROBE_INTERVAL_S`, and their log start: a partition the group never
    committed counts from there, not from offset 0 (retention may have deleted its head).

    Only partitions assigned to this worker are exported: after a rebalance a revoked
    partition's series is removed, else its last lag would stay and be counted again (by
    ``topic:appeals_consumer_lag:sum``) with the new owner's. Table changelogs are left out:
    they are read only during recovery and then paused, and nothing commits offsets for them,
    so a stale lag stayed in the total (review of session 14).
    """
    exported: set[tuple[str, str]] = set()
    probe = lag.EndProbe()
    latest: dict[str, Any] = {"lags": {}, "highs": {}}

    @app.timer(interval)
    async def consumer_lag() -> None:
        consumer = app.consumer
        assigned = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
        committed = lag.committed_offsets(consumer, assigned)
        probe.keep_only(assigned)
        lags: dict[Any, int | None] = {}
        highs: dict[Any, int | None] = {}
        for tp in assigned:
            try:
                high = consumer.highwater(tp)
            except Exception:  # the partition may have just been revoked
                continue
            highs[tp] = high
            lags[tp] = behind = lag.committed_lag(high, probe.end(tp, high), committed[tp],
                                                  probe.start(tp, high))
            if behind is None:
                continue
            labels = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(behind)
            exported.add(labels)
        latest["lags"], latest["highs"] = lags, highs
        progress.STAGES.observe(lags, progress.can_work(app))
        for labels in exported - {(tp.topic, str(tp.partition)) for tp in assigned}:
            with contextlib.suppress(KeyError):  # removed elsewhere already
                metrics.CONSUMER_LAG.remove(*labels)
            exported.discard(labels)
        redelivered = fastpath.take_redelivered()
        if redelivered:
            metrics.RECORDS_REDELIVERED.inc(redelivered)
            log.info("%d records re-read after a seek were delivered again (Faust would have "
                     "dropped them as already read)", redelivered)

    failures = {"in_a_row": 0}

    @app.timer(lag.PROBE_INTERVAL_S)
    async def probe_end_offsets() -> None:
        due = [tp for tp in probe.due(latest["lags"], latest["highs"])
               if not progress.STAGES.waits_on_purpose(tp.topic)]
        if not due:
            return
        import asyncio

        from streams import end_offsets

        try:
            found, starts = await asyncio.wait_for(
                end_offsets.current_offsets(
                    end_offsets.probe_consumer(app, app.consumer.transport), due),
                3 * end_offsets.PROBE_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next round tries again
            failures["in_a_row"] += 1
            if failures["in_a_row"] == 1:  # once per spell, not every 20 s
                log.warning("end offsets of %d partitions whose records wait could not be "
                            "probed (%s): their consumer lag is counted to the last end the "
                            "worker saw", len(due), type(exc).__name__)
            return
        failures["in_a_row"] = 0
        probe.found(found, starts)


LOOP_PROBE_INTERVAL_S = 0.1
LOOP_STALL_WARN_S = 1.0


def _install_loop_probe(app: faust.App) -> None:
    """Measure how long the event loop is held (intake latency's tail, a stuck worker at 3 am).

    A plain task rather than a Faust timer: Faust's timers correct their own drift, which is
    exactly the delay this measures.
    """
    import asyncio

    @app.task
    async def event_loop_probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_PROBE_INTERVAL_S)
            lag = max(0.0, loop.time() - started - LOOP_PROBE_INTERVAL_S)
            metrics.EVENT_LOOP_LAG.observe(lag)
            if lag >= LOOP_STALL_WARN_S:
                log.warning("event loop was held for %.2f s: every agent and timer of this "
                            "worker waited", lag)


def run_worker(settings: Settings, *, create_topics: bool = True) -> None:
    """Run until stopped (SIGTERM/SIGINT): the ``appeals worker`` command.

    ``create_topics=False`` when the caller has already run ``ensure_topics`` (the CLI does, to
    report an unreachable broker in one line).
    """
    import asyncio

    if create_topics:
        from streams.topics import ensure_topics

        ensure_topics(settings)
    try:
        import uvloop

        loop_name = "uvloop"
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        loop_name = "asyncio"
    app, _ctx = build_worker(settings)
    gc_tuning.tune(settings)  # after the model and rules are loaded: they are never scanned
    log.info("worker starting (%s loop)", loop_name)
    worker = _Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()


class _Worker(faust.Worker):
    """Faust's worker, with message bodies kept out of the logs at every level: Faust configures
    logging as it starts, after anything set before, so the cap is applied here."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        quiet_payload_loggers()
