"""``APPEALS_STORE=rocksdb://``: local table state is trusted only after a clean stop.

A table write lands in RocksDB at once and in the changelog only when the broker acknowledges
it. A worker killed in between, restarted on the same data directory, found the state already
there, took the replayed input for a duplicate, wrote nothing and committed the input offset:
the changelog never got the state, and a worker on another volume (a partition moved, a lost
disk) did not have it; for the SLA table, the appeal dropped out of tracking. Now a start
without the clean-stop marker discards the local state and recovers it from the changelogs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from monitoring import metrics
from streams import rocksdb_store
from streams.processes import WorkerProcess
from streams.testing import isolated_settings, produce, read_topic, wait_for
from workers.bench.procstat import GroupProgress

pytestmark = [pytest.mark.integration]

SOURCE = "local-state-source"


def _worker(settings, tmp_path: Path, name: str, report: Path, **env: str) -> WorkerProcess:
    script = str(Path(__file__).with_name("local_state_worker.py"))
    return WorkerProcess(settings, tmp_path / f"{name}.log", command=[sys.executable, script],
                         extra_env={"LOCAL_STATE_REPORT": str(report), **env}).start()


def _keys(report: Path) -> list[str]:
    return report.read_text().split() if report.exists() else []


def test_state_a_kill_left_ahead_of_its_changelog_reaches_it_after_restart(
        broker, redis_server, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, partitions=2,
                                 store="rocksdb://", data_dir=str(tmp_path / "volume-a"))
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(f"{settings.topic_prefix}{SOURCE}", 2, 1)])
    finally:
        admin.close()
    hold, report = tmp_path / "hold", tmp_path / "report"
    hold.write_text("")
    worker = _worker(settings, tmp_path, "first", report, HOLD_CHANGELOG_FLAG=str(hold))
    try:
        produce(settings, [(SOURCE, b"appeal-1", b"routed")])
        wait_for(lambda: _keys(report) == ["appeal-1"] or not worker.alive, timeout=90,
                 what="the key in the local table")
        assert worker.alive, worker.log_text()[-3000:]
    finally:
        worker.kill()  # the changelog record is still held: local state ahead of the changelog
    hold.unlink()
    report.unlink()

    worker = _worker(settings, tmp_path, "restarted", report)
    progress = GroupProgress(broker.bootstrap, settings.app_id,
                             [f"{settings.topic_prefix}{SOURCE}"])
    try:
        def committed() -> bool:
            snap = progress.snapshot()
            return sum(snap.committed.values()) >= 1
        wait_for(lambda: committed() or not worker.alive, timeout=90,
                 what="the replayed input committed")
        assert worker.alive, worker.log_text()[-3000:]
    finally:
        worker.stop()
        progress.close()
    changelog = read_topic(settings.replace(topic_prefix=""), f"{settings.app_id}-seen-changelog",
                           timeout=20, idle=2)
    assert [(r.key, r.value) for r in changelog] == [(b"appeal-1", b"routed")], (
        "the replayed input was committed with no changelog record of its state")
    assert "local table state" in (tmp_path / "restarted.log").read_text()  # why it recovers
    # Stopped cleanly: the next start may keep the state.
    tables = tmp_path / "volume-a" / "v1" / "tables"
    assert (tables / rocksdb_store.CLEAN_STOP_MARKER).exists()


def _database(tables: Path, name: str = "seen-0.db") -> Path:
    db = tables / name
    db.mkdir(parents=True)
    (db / "CURRENT").write_text("MANIFEST-000001\n")
    return db


def test_a_start_after_a_clean_stop_keeps_the_local_state(tmp_path: Path) -> None:
    tables = tmp_path / "data" / "v1" / "tables"
    db = _database(tables)
    rocksdb_store.mark_clean_stop(tables)
    assert rocksdb_store.open_local_state(tmp_path / "data", tables) is True
    assert db.exists()
    # Removed at start: a kill from now on leaves no marker behind.
    assert not (tables / rocksdb_store.CLEAN_STOP_MARKER).exists()


def test_a_start_without_the_marker_discards_the_local_state(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tables = tmp_path / "data" / "v1" / "tables"
    _database(tables, "seen-0.db")
    _database(tables, "seen-1.db")
    (tables / "seen-backups").mkdir()
    before = metrics.REGISTRY.get_sample_value("appeals_table_state_discarded_total") or 0
    with caplog.at_level("WARNING", logger="streams.rocksdb_store"):
        assert rocksdb_store.open_local_state(tmp_path / "data", tables) is False
    assert list(tables.iterdir()) == []
    assert metrics.REGISTRY.get_sample_value("appeals_table_state_discarded_total") == before + 1
    assert "not clean" in caplog.text and "recover fully from their changelogs" in caplog.text


def test_a_first_start_has_nothing_to_discard(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    tables = tmp_path / "data" / "v1" / "tables"
    with caplog.at_level("WARNING", logger="streams.rocksdb_store"):
        assert rocksdb_store.open_local_state(tmp_path / "data", tables) is True
    assert caplog.text == ""


def test_a_second_process_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """It would otherwise find no marker (the running worker removed it) and discard the
    running worker's databases."""
    import subprocess

    data = tmp_path / "data"
    tables = data / "v1" / "tables"
    assert rocksdb_store.open_local_state(data, tables) is True
    db = _database(tables)
    code = ("import sys; from pathlib import Path; from streams import rocksdb_store as r\n"
            f"r.open_local_state(Path({str(data)!r}), Path({str(tables)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0
    assert "DataDirInUse" in result.stderr and "in use by another process" in result.stderr
    assert db.exists()
