"""Settings that each pass their own range check but cannot run together, or that Kafka refuses
(streams.settings)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams import topics
from streams.app import create_app, heartbeat_interval
from streams.settings import (
    LONGEST_APP_TOPIC_SUFFIX,
    LONGEST_TOPIC_BASE,
    MAX_TOPIC_NAME,
    ConfigError,
    Settings,
)


def test_no_linger_without_natural_batches_is_refused() -> None:
    """With APPEALS_BATCH_LINGER=0 Faust's take_events has no time bound: without natural
    batches a partial batch waited for APPEALS_BATCH_SIZE events and agents stalled."""
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_BATCH_LINGER": "0", "APPEALS_NATURAL_BATCHES": "false"})
    message = str(exc.value)
    assert message.startswith("APPEALS_BATCH_LINGER ") and "APPEALS_NATURAL_BATCHES" in message
    with pytest.raises(ConfigError):
        Settings().replace(natural_batches=False, batch_linger=0.0)
    # Each half on its own is fine: natural batches go when nothing more is waiting.
    assert Settings.load({"APPEALS_BATCH_LINGER": "0"}).batch_linger == 0.0
    assert not Settings.load({"APPEALS_NATURAL_BATCHES": "false"}).natural_batches


@pytest.mark.parametrize("raw", ["1", "5.9"])
def test_a_session_shorter_than_kafkas_minimum_is_refused(raw: str) -> None:
    """Apache Kafka refuses sessions below group.min.session.timeout.ms (6 s by default): the
    worker started and then failed to join its group."""
    with pytest.raises(ConfigError, match=r"^APPEALS_SESSION_TIMEOUT must be at least 6 s "):
        Settings.load({"APPEALS_SESSION_TIMEOUT": raw})
    assert Settings.load({"APPEALS_SESSION_TIMEOUT": "6"}).session_timeout == 6.0


@pytest.mark.parametrize("raw", ["1800.5", "3600", "1e7"])
def test_a_session_longer_than_kafkas_maximum_is_refused(raw: str) -> None:
    """Apache Kafka refuses sessions above group.max.session.timeout.ms (30 min by default):
    3600 s was accepted and the JoinGroup then failed (INVALID_SESSION_TIMEOUT)."""
    with pytest.raises(ConfigError, match=r"^APPEALS_SESSION_TIMEOUT must be at most 1800 s "
                                          r"\(Apache Kafka's default group.max.session"):
        Settings.load({"APPEALS_SESSION_TIMEOUT": raw})
    assert Settings.load({"APPEALS_SESSION_TIMEOUT": "1800"}).session_timeout == 1800.0


@pytest.mark.parametrize("session", [6.0, 10.0, 45.0, 300.0])
def test_the_heartbeat_stays_below_a_third_of_the_session(session: float,
                                                          tmp_path: Path) -> None:
    app = create_app(Settings(session_timeout=session, data_dir=str(tmp_path)))
    assert app.conf.broker_session_timeout == session
    assert 1.0 <= app.conf.broker_heartbeat_interval < session / 3


def test_the_heartbeat_rule_holds_for_any_session() -> None:
    """The 1 s floor made the heartbeat equal a 1 s session; the rule itself holds below the
    settings' minimum too."""
    for session in (0.5, 1.0, 2.0, 3.0, 5.0, 6.0, 7.5):
        assert heartbeat_interval(session) < session / 3


@pytest.mark.parametrize(("var", "raw"), [
    ("APPEALS_TOPIC_PREFIX", "prod/eu "), ("APPEALS_TOPIC_PREFIX", "prod:"),
    ("APPEALS_APP_ID", "citizen appeals"), ("APPEALS_APP_ID", "appeals#2"),
    ("APPEALS_APP_ID", ""),
])
def test_names_kafka_refuses_in_a_topic_name_are_refused(var: str, raw: str) -> None:
    """A space or a slash passed, and every topic creation then failed with Kafka's
    InvalidTopicError (the prefix) or Faust's changelog topics did (the app id)."""
    with pytest.raises(ConfigError) as exc:
        Settings.load({var: raw})
    assert str(exc.value).startswith(f"{var} "), exc.value


def test_names_are_refused_when_a_topic_would_be_too_long() -> None:
    prefix_max = MAX_TOPIC_NAME - len(LONGEST_TOPIC_BASE)
    app_id_max = MAX_TOPIC_NAME - len(LONGEST_APP_TOPIC_SUFFIX)
    s = Settings(topic_prefix="p." * (prefix_max // 2) + "p" * (prefix_max % 2),
                 app_id="a" * app_id_max)
    assert max(len(topics.topic_name(s, spec.name)) for spec in topics.SPECS) == MAX_TOPIC_NAME
    with pytest.raises(ConfigError, match=f"^APPEALS_TOPIC_PREFIX must be at most {prefix_max} "):
        s.replace(topic_prefix=s.topic_prefix + "x")
    with pytest.raises(ConfigError, match=f"^APPEALS_APP_ID must be at most {app_id_max} "):
        s.replace(app_id=s.app_id + "x")
    assert Settings(topic_prefix="prod-eu_1.", app_id="citizen-appeals.v2").app_id


def test_the_longest_names_follow_the_topics_and_the_tables(tmp_path: Path) -> None:
    """The limits above rest on the longest topic base and the longest topic name Faust puts
    after the app id; a new topic or table with a longer name must move them."""
    from workers.pipeline import build_worker

    assert max(len(spec.name) for spec in topics.SPECS) == len(LONGEST_TOPIC_BASE)
    settings = Settings(data_dir=str(tmp_path), metrics_port=0)
    app, _ = build_worker(settings)
    own = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    own.append(app._leader_assignor._leader_topic_name)
    assert all(name.startswith(settings.app_id) for name in own), own
    assert max(len(name) - len(settings.app_id) for name in own) == len(LONGEST_APP_TOPIC_SUFFIX)


@pytest.mark.parametrize("raw", ["rocksdbb://", "rocksdb", "", "redis://x", "aerospike://"])
def test_a_store_the_worker_cannot_open_is_refused(raw: str) -> None:
    """A mistyped APPEALS_STORE passed and the worker failed after joining Kafka, in a
    traceback of some 120 lines (review of session 16)."""
    with pytest.raises(ConfigError, match=r"^APPEALS_STORE "):
        Settings.load({"APPEALS_STORE": raw})


@pytest.mark.parametrize("raw", ["memory://", "rocksdb://", "rocksdict://"])
def test_the_stores_a_worker_runs_with_are_accepted(raw: str) -> None:
    from faust.stores import STORES

    from streams import rocksdb_store

    assert Settings.load({"APPEALS_STORE": raw}).store == raw
    rocksdb_store.install()
    assert raw.split(":")[0] in STORES.aliases


@pytest.mark.parametrize("scale", ["60", "1000", "86400", "0.5"])
def test_a_sped_up_clock_without_its_epoch_is_refused(scale: str) -> None:
    """The epoch defaulted to 0: the clock then sped up the time since 1970, so scale 60 read
    the year 5384, and from 1000 on every intake batch crashed ("year out of range")."""
    with pytest.raises(ConfigError, match=r"^APPEALS_CLOCK_EPOCH must be set when "
                                          r"APPEALS_TIME_SCALE is not 1 "):
        Settings.load({"APPEALS_TIME_SCALE": scale})


@pytest.mark.parametrize(("scale", "epoch_from_now"), [
    ("60", -2 * 365 * 86400.0),  # two years ago at 60x: some 120 years ahead, past 2099
    ("86400", -10 * 3600.0),     # ten hours ago at a day per second: 100 years ahead
    ("60", 400 * 86400.0),       # an epoch in the future: the clock runs back before 2000
])
def test_a_sped_up_clock_outside_the_event_years_is_refused(scale: str,
                                                            epoch_from_now: float) -> None:
    env = {"APPEALS_TIME_SCALE": scale, "APPEALS_CLOCK_EPOCH": str(time.time() + epoch_from_now)}
    with pytest.raises(ConfigError, match=r"^APPEALS_CLOCK_EPOCH \(\d+\) with "
                                          rf"APPEALS_TIME_SCALE={scale} puts the SLA clock in "
                                          r"about the year \d+, outside the years 2000..2099"):
        Settings.load(env)


def test_a_sped_up_clock_from_a_recent_epoch_is_accepted() -> None:
    now = time.time()
    s = Settings.load({"APPEALS_TIME_SCALE": "86400", "APPEALS_CLOCK_EPOCH": str(now)})
    assert (s.time_scale, s.clock_epoch) == (86400.0, now)
    # Real time needs no epoch (the default 0 is ignored).
    assert Settings.load({"APPEALS_TIME_SCALE": "1"}).clock_epoch == 0.0


def test_a_stall_timeout_an_idle_stage_could_reach_is_refused() -> None:
    """An idle stage is told on track by each lag export (APPEALS_LAG_INTERVAL): a stall timeout
    below two of them could take an idle worker for a hung one (``/healthz`` 503)."""
    assert Settings.load({}).stage_stall_timeout == 600.0
    assert Settings.load({"APPEALS_STAGE_STALL_TIMEOUT": "10", "APPEALS_LAG_INTERVAL": "5"})
    for env in ({"APPEALS_STAGE_STALL_TIMEOUT": "9", "APPEALS_LAG_INTERVAL": "5"},
                {"APPEALS_STAGE_STALL_TIMEOUT": "0"}, {"APPEALS_STAGE_STALL_TIMEOUT": "86401"}):
        with pytest.raises(ConfigError, match=r"^APPEALS_STAGE_STALL_TIMEOUT must be at least "
                                              r"twice APPEALS_LAG_INTERVAL"):
            Settings.load(env)
