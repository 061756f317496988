"""After recovery a worker processes every record from the committed offsets (streams.resume_order).

Faust resumes the stream partitions, then seeks, then clears the stream buffers: what is fetched
while it seeks is cleared and never read again. The worker here starts on a pre-filled topic and
table changelog, with a seek made 1 s slow. With Faust's order it processed 1,720 of 2,000
records and then nothing more (measured 2026-11-26); with the seek first it processes all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streams import topics as t
from streams.processes import WorkerProcess
from streams.settings import Settings
from streams.testing import isolated_settings, read_topic, wait_for

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

N = 2000
SOURCE = "resume-source"  # the topic resume_worker.py reads (with the settings' prefix)


def _start(settings: Settings, report: Path, log: Path, table: bool,
           seek_delay: float = 1.0) -> WorkerProcess:
    env = {"RESUME_REPORT": str(report), "RESUME_SEEK_DELAY": str(seek_delay)}
    if not table:
        env["RESUME_NO_TABLE"] = "1"
    script = str(Path(__file__).with_name("resume_worker.py"))
    return WorkerProcess(settings, log, extra_env=env, command=[sys.executable, script]).start()


def _processed(report: Path) -> set[tuple[int, int]]:
    if not report.exists():
        return set()
    return {(int(p), int(o)) for p, o in (line.split() for line in
                                           report.read_text().splitlines() if line)}


def _run(broker, redis_server, tmp_path: Path,  # type: ignore[no-untyped-def]
         seek_first: bool, table: bool = True, attempt: int = 1, seek_delay: float = 1.0,
         ) -> tuple[set[tuple[int, int]], set[tuple[int, int]], str]:
    settings = isolated_settings(broker.url, redis_server.url, partitions=2, batch_size=20,
                                 seek_before_resume=seek_first)
    topic = t.topic_name(settings, SOURCE)
    changelog = f"{settings.app_id}-resume-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1), NewTopic(changelog, 2, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=20)
    try:
        for i in range(N):
            producer.send(topic, key=b"k%d" % i, value=b"v%d" % i)
        # Table state to recover: a worker restarting after a crash (Faust starts its fetcher
        # for the recovery, so it is already running when the streams resume).
        for i in range(20):
            producer.send(changelog, key=b"s%d" % i, value=b"1", partition=i % 2)
        producer.flush()
    finally:
        producer.close()
    report = tmp_path / f"report-{seek_first}-{attempt}"
    log = tmp_path / f"worker-{seek_first}-{attempt}.log"
    worker = _start(settings, report, log, table, seek_delay)
    try:
        last = (-1.0, 0)

        def settled() -> bool:
            nonlocal last
            seen = len(_processed(report))
            if seen != last[1]:
                last = (time.monotonic(), seen)
            return seen >= N or (seen > 0 and time.monotonic() - last[0] > 5.0)

        wait_for(lambda: settled() or not worker.alive, timeout=120,
                 what="the worker to process the topic or stall")
        assert worker.alive, worker.log_text()[-3000:]
    finally:
        worker.stop()
    truth = {(r.partition, r.offset) for r in read_topic(settings, SOURCE, until=N, idle=1.0)}
    processed = _processed(report)
    print(f"seek first={seek_first}: {len(processed)} of {len(truth)} records processed")
    return truth, processed, worker.log_text()


def test_every_record_is_processed_when_the_seek_comes_first(broker, redis_server,
                                                             tmp_path: Path) -> None:
    truth, processed, log = _run(broker, redis_server, tmp_path, seek_first=True)
    assert len(truth) == N
    missing = truth - processed
    assert not missing, f"{len(missing)} of {N} never processed, e.g. {sorted(missing)[:5]}\n" \
        + log[-3000:]


def test_an_app_without_tables_resumes_the_same_way(broker, redis_server,
                                                   tmp_path: Path) -> None:
    """Faust resumes an app without tables through ``_resume_streams``, replaced too."""
    truth, processed, log = _run(broker, redis_server, tmp_path, seek_first=True, table=False)
    # Our order: Faust's "Resuming flow..." line now comes before the seek, not after it.
    assert log.index("Resuming flow...") < log.index("Seek stream partitions")
    assert truth == processed, f"{len(truth - processed)} of {N} never processed\n" + log[-3000:]


def test_faust_order_loses_what_it_fetched_while_seeking(broker, redis_server,
                                                         tmp_path: Path) -> None:
    """Faust 0.15.3's own order, same worker: the loss the patch exists for.

    The loss is a race (a fetch has to land between Faust's resume and its clearing of the
    buffers), so a run on a loaded machine can miss it: it processed all 2,000 once in a full
    CI run (2026-11-26) and lost 280-480 in 3 of 3 runs alone, and lost nothing in 3 tries in a
    full CI run of 2026-11-27. Up to three tries, each on fresh topics, the later ones with a
    3 s seek (a wider window for a slow fetch to land in); the test fails only if none loses
    anything. If it starts failing after a
    faust-streaming upgrade, Faust may have fixed the order itself: check, and retire
    streams.resume_order.
    """
    outcomes = []
    for attempt in range(1, 4):
        truth, processed, log = _run(broker, redis_server, tmp_path, seek_first=False,
                                     attempt=attempt, seek_delay=1.0 if attempt == 1 else 3.0)
        missing = truth - processed
        outcomes.append((len(processed), len(missing)))
        if processed and missing:
            return
    pytest.fail(f"Faust's own order lost nothing in 3 tries (processed, missing): {outcomes}\n"
                + log[-2000:])


def test_installed_faust_is_the_checked_version() -> None:
    """A faust-streaming upgrade must be looked at: this fails until its digests are added."""
    from streams import resume_order

    for name, digests in resume_order.KNOWN_SOURCES.items():
        assert resume_order.source_digest(name) in digests, name


def test_install_refuses_an_unchecked_faust_version() -> None:
    """In a fresh interpreter: in this one an earlier test (any that builds the app) may have
    installed the patch already, and the check was then skipped (CI of c204720)."""
    code = (
        "from faust.tables.recovery import Recovery\n"
        "from streams import resume_order\n"
        "original = Recovery.on_recovery_completed\n"
        "resume_order.source_digest = lambda name: '0' * 64\n"
        "assert resume_order.install() is False\n"
        "assert Recovery.on_recovery_completed is original\n"
        "assert resume_order.install(enabled=False) is False\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_a_fetch_asks_for_the_partitions_active_when_it_was_made() -> None:
    """Faust passes its live set; emptied while the request waits, aiokafka drains everything."""
    import asyncio
    from types import SimpleNamespace

    from faust.transport.consumer import ThreadDelegateConsumer

    from streams import fetch_snapshot

    fetch_snapshot.install()
    asked: list[set[str]] = []

    async def getmany(partitions: set[str], timeout: float) -> dict[str, list[int]]:
        await asyncio.sleep(0)  # the request waits in the consumer thread ...
        asked.append(set(partitions))  # ... and reads the set only now
        return {}

    fake = SimpleNamespace(_thread=SimpleNamespace(getmany=getmany))

    async def scenario() -> None:
        live = {"changelog-0", "changelog-1"}
        request = asyncio.ensure_future(ThreadDelegateConsumer._getmany(fake, live, 1.0))
        await asyncio.sleep(0)
        live.clear()  # recovery done: Faust pauses the changelog partitions
        await request
        assert await ThreadDelegateConsumer._getmany(fake, set(), 1.0) == {}

    asyncio.run(scenario())
    assert asked == [{"changelog-0", "changelog-1"}]  # an empty set was never handed over
