"""Producer SDK and ``appeals produce`` against the real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from streams.settings import Settings
from tests.intake.conftest import DATA, consume_all, load_samples
from tests.intake.fakes import HARNESS_NOW
from workers.intake import cli
from workers.intake.core import appeal_id_for
from workers.intake.producer import IntakeProducer

pytestmark = pytest.mark.integration


def _now() -> datetime:
    """The SDK's clock here: the samples (January 2025) must not age out of
    APPEALS_INTAKE_MAX_AGE (a year)."""
    return HARNESS_NOW


@pytest.fixture(autouse=True)
def _samples_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """``appeals produce`` ages lines on the wall clock: the longest allowed age (3660 days)
    keeps the January 2025 samples in."""
    monkeypatch.setenv("APPEALS_INTAKE_MAX_AGE", str(3660 * 86400))


def test_sdk_sends_valid_and_refuses_invalid(intake_settings: Settings) -> None:
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix,
                        now=_now) as producer:
        ids = [producer.send(s) for s in load_samples("incident")]
        canon = load_samples("canonical")[0]
        waited = producer.send(canon, wait=True)
        with pytest.raises(InvalidEvent) as info:
            producer.send({**canon, "region": "Алтай"})
        assert info.value.reason == "invalid_value"
        with pytest.raises(InvalidEvent) as info:
            producer.send({**canon, "channel": "pos"}, channel="web")
        assert info.value.reason == "channel_mismatch"
        native = {k: v for k, v in load_samples("web")[0].items() if k != "channel"}
        web_id = producer.send(native, channel="web")
    assert ids[0] == appeal_id_for("incident", "IM-22-0458812")
    assert waited == appeal_id_for("pos", "canon-pos-0001")
    incident = consume_all(intake_settings, "incident", expect=5)
    assert [k.decode() for k, _ in incident if k] == ids
    assert orjson.loads(incident[0][1])["schema_version"] == 1  # canonical on the wire
    web = consume_all(intake_settings, "web", expect=1)
    assert web[0][0] == web_id.encode()


def test_cli_produce_reports_and_exits_1_on_rejects(
    intake_settings: Settings, tmp_path: Path, capsys: Any
) -> None:
    lines = [json.dumps(s, ensure_ascii=False) for s in load_samples("pos")]
    lines += ["{not json", json.dumps([1, 2]), json.dumps({"channel": "pos", "id": "x"}), ""]
    path = tmp_path / "pos.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    err = capsys.readouterr().err
    assert rc == 1
    assert "sent 5, rejected 3" in err
    assert "not_json: 1 (lines 6)" in err and "not_object: 1 (lines 7)" in err
    assert "missing_field: 1 (lines 8)" in err
    assert "8/8" in err  # progress reached the end
    assert len(consume_all(intake_settings, "pos", expect=5)) == 5


def test_cli_produce_all_good_with_channel_flag(
    intake_settings: Settings, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "hot.jsonl"
    path.write_text("\n".join(
        json.dumps({k: v for k, v in s.items() if k != "channel"}, ensure_ascii=False)
        for s in load_samples("hotline")), encoding="utf-8")
    rc = cli.main(["produce", str(path), "--channel", "hotline", "--quiet",
                   "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    assert rc == 0
    assert "sent 5, rejected 0" in capsys.readouterr().err
    assert len(consume_all(intake_settings, "hotline", expect=5)) == 5


def test_cli_produce_missing_file(capsys: Any) -> None:
    assert cli.main(["produce", str(DATA / "nope.jsonl")]) == 2


def test_cli_parser_registers_both_commands() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gateway", "--port", "9999"])
    assert args.port == 9999 and args.func is not None


def test_sdk_refuses_a_record_over_the_message_limit_before_sending(
        intake_settings: Settings) -> None:
    """It passed the SDK, was sent, and the intake agent dead-lettered it as oversize_message:
    the SDK promises intake's own verdict before sending (review of session 15)."""
    canon = load_samples("canonical")[0]
    big = {**canon, "external_id": "canon-big-1", "extra": {"scan": "x" * 5000}}
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix,
                        max_message_bytes=4096, now=_now) as producer:
        with pytest.raises(InvalidEvent) as info:
            producer.prepare(big)
        assert info.value.reason == "oversize_message"
        with pytest.raises(InvalidEvent):
            producer.send(big, wait=True)
        small = producer.send({**canon, "external_id": "canon-small-1"}, wait=True)
    sent = consume_all(intake_settings, canon["channel"], expect=1)
    assert [k.decode() for k, _ in sent if k] == [small]


def _pos(external_id: str, text: str) -> str:
    return json.dumps({"schema_version": 1, "channel": "pos", "external_id": external_id,
                       "submitted_at": "2025-01-14T08:00:00+07:00", "region": "22",
                       "text": text}, ensure_ascii=False)


def test_cli_produce_sends_a_line_over_1_mib_when_the_limit_allows_it(
    intake_settings: Settings, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APPEALS_MAX_MESSAGE_BYTES above 1 MiB: a valid line between 1 MiB and the limit made
    kafka-python (max_request_size 1 MiB by default) raise from send(), and the whole file
    was aborted (exit 2, no summary, the lines after it never sent)."""
    monkeypatch.setenv("APPEALS_MAX_MESSAGE_BYTES", "2000000")
    monkeypatch.setenv("APPEALS_MAX_TEXT_LENGTH", "1000000")
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join([_pos("big-1", "Нет отопления"), _pos("big-2", "я" * 600_000),
                               _pos("big-3", "Нет воды")]) + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    topic = f"{intake_settings.topic_prefix}appeals.intake.pos"
    assert (rc, capsys.readouterr().err.strip()) == (0, f"sent 3, rejected 0\n  to {topic} (3)")
    events = consume_all(intake_settings, "pos", expect=3)
    assert sorted(orjson.loads(v)["external_id"] for _, v in events) == [
        "big-1", "big-2", "big-3"]


def test_produce_rejects_a_line_kafka_refuses_for_its_size_and_goes_on(
        intake_settings: Settings) -> None:
    lines = [_pos("mid-1", "Нет отопления").encode(), _pos("mid-2", "я" * 3000).encode(),
             _pos("mid-3", "Нет воды").encode()]
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix,
                        max_request_size=4096, now=_now) as producer:  # below line 2's record
        sent, rejected = cli.produce(lines, producer)
    assert (sent, rejected) == (2, {"message_too_large": [2]})
    events = consume_all(intake_settings, "pos", expect=2)
    assert sorted(orjson.loads(v)["external_id"] for _, v in events) == ["mid-1", "mid-3"]


def test_sdk_and_produce_refuse_an_appeal_older_than_the_max_age(
    intake_settings: Settings, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK (and ``appeals produce`` through it) sent an appeal submitted more than
    APPEALS_INTAKE_MAX_AGE before, which the intake agent then dead-lettered as
    ``invalid_value``: the SDK promises intake's verdict before sending."""
    old = {"schema_version": 1, "channel": "pos", "external_id": "old-1", "region": "22",
           "submitted_at": (HARNESS_NOW - timedelta(days=400)).isoformat(), "text": "Нет воды"}
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix,
                        now=_now) as producer:
        with pytest.raises(InvalidEvent) as info:
            producer.send(old, wait=True)
        assert info.value.reason == "invalid_value" and "APPEALS_INTAKE_MAX_AGE" in str(
            info.value.detail)
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix,
                        max_age=500 * 86400.0, now=_now) as producer:
        assert producer.prepare(old).external_id == "old-1"

    monkeypatch.setenv("APPEALS_INTAKE_MAX_AGE", str(365 * 86400))
    now = datetime.now(UTC)
    path = tmp_path / "aged.jsonl"
    path.write_text("\n".join(json.dumps({**old, "external_id": eid, "submitted_at": (
        now - timedelta(days=days)).isoformat()}) for eid, days in (
            ("aged-1", 1), ("aged-2", 400), ("aged-3", 300))) + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    assert rc == 1
    assert "invalid_value: 1 (lines 2)" in capsys.readouterr().err
    events = consume_all(intake_settings, "pos", expect=2)
    assert sorted(orjson.loads(v)["external_id"] for _, v in events) == ["aged-1", "aged-3"]


def test_cli_produce_creates_no_topic_and_names_the_missing_one(
    intake_settings: Settings, tmp_path: Path, capsys: Any
) -> None:
    """A wrong --topic-prefix "succeeded" into stray auto-created topics no worker reads
    (review of the CLI, D2): now one line naming the topic, exit 2, nothing created."""
    from streams.topics import existing_topics

    path = tmp_path / "pos.jsonl"
    path.write_text(_pos("stray-1", "Нет отопления") + "\n", encoding="utf-8")
    prefix = intake_settings.topic_prefix + "typo."
    rc = cli.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                   "--topic-prefix", prefix])
    err = capsys.readouterr().err.strip()
    assert (rc, err) == (2, f"appeals produce: topic {prefix}appeals.intake.pos does not exist "
                            "(check APPEALS_TOPIC_PREFIX, or run `appeals topics create`)")
    assert not any(name.startswith(prefix)
                   for name in existing_topics(intake_settings.kafka_bootstrap))


def test_cli_produce_names_the_topics_it_wrote_to(
    intake_settings: Settings, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(s, ensure_ascii=False) for s in load_samples("pos")[:2]]
    lines += [json.dumps(s, ensure_ascii=False) for s in load_samples("incident")[:1]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    p = intake_settings.topic_prefix
    assert (rc, capsys.readouterr().err.strip()) == (0, (
        f"sent 3, rejected 0\n  to {p}appeals.intake.incident (1), {p}appeals.intake.pos (2)"))


def test_cli_produce_says_why_a_reason_refused_lines(
    intake_settings: Settings, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary said only "invalid_value: 2 (lines 1, 2)": which field, and why, was left to
    guessing (review of the CLI, D4). The first refusal's detail is shown; it names the field
    and the rule, never the line's personal data."""
    monkeypatch.setenv("APPEALS_INTAKE_MAX_AGE", str(365 * 86400))
    old = json.dumps({"schema_version": 1, "channel": "pos", "external_id": "old-1",
                      "submitted_at": "2019-01-14T08:00:00+07:00", "region": "22",
                      "text": "Ксенофонтов Евлампий, телефон 89131234567: нет отопления"},
                     ensure_ascii=False)
    path = tmp_path / "old.jsonl"
    path.write_text(old + "\n" + old.replace("old-1", "old-2") + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                   "--topic-prefix", intake_settings.topic_prefix])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[:2] == ["sent 0, rejected 2", "  invalid_value: 2 (lines 1, 2)"]
    assert err[2].startswith("    first: submitted_at lies ") and "APPEALS_INTAKE_MAX_AGE" in err[2]
    assert len(err) == 3
    assert not any(s in "\n".join(err) for s in ("Ксенофонтов", "89131234567"))


def test_the_detail_of_an_adapter_failure_quotes_nothing_of_the_payload() -> None:
    exc = InvalidEvent("adapter_failed",
                       "hotline payload: invalid literal for int(): '89131234567'")
    assert cli._detail(exc) == "hotline payload: the channel's adapter could not read it"
    long = InvalidEvent("invalid_value", "x" * 500)
    assert len(cli._detail(long)) == cli.DETAIL_CHARS and cli._detail(long).endswith("…")


def test_cli_produce_with_the_idempotent_producer_works_on_the_dev_broker(
    intake_settings: Settings, tmp_path: Path, capsys: Any
) -> None:
    """--idempotence's help said Tansu refuses it; kafka-python's idempotent producer works
    there (it is aiokafka's Tansu refuses), so the help no longer says so (review of the CLI)."""
    import argparse

    path = tmp_path / "pos.jsonl"
    path.write_text(_pos("idem-1", "Нет отопления") + "\n", encoding="utf-8")
    rc = cli.main(["produce", str(path), "--quiet", "--idempotence", "--kafka",
                   intake_settings.kafka, "--topic-prefix", intake_settings.topic_prefix])
    assert rc == 0 and capsys.readouterr().err.startswith("sent 1, rejected 0")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    produce = next(a for a in parser._subparsers._group_actions  # type: ignore[union-attr]
                   if isinstance(a, argparse._SubParsersAction)).choices["produce"]
    assert "Tansu refuses" not in " ".join(produce.format_help().split())


def test_cli_produce_interrupted_says_what_was_acknowledged_and_that_a_rerun_is_safe(
    intake_settings: Settings, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C printed only "appeals: interrupted": how much had reached the broker, and whether
    the file could simply be sent again, was left to guess (review of the CLI, D9a)."""
    from workers import cli as appeals

    path = tmp_path / "pos.jsonl"
    path.write_text("\n".join(json.dumps(s, ensure_ascii=False) for s in load_samples("pos"))
                    + "\n", encoding="utf-8")
    real_send = IntakeProducer.send
    calls = 0

    def send(self: IntakeProducer, *args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 4:  # Ctrl-C while the fourth line is sent
            raise KeyboardInterrupt
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(IntakeProducer, "send", send)
    monkeypatch.setenv("APPEALS_DEDUPE_WINDOW_DAYS", "45")
    rc = appeals.main(["produce", str(path), "--quiet", "--kafka", intake_settings.kafka,
                       "--topic-prefix", intake_settings.topic_prefix])
    assert rc == appeals.INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines() == [
        "appeals produce: interrupted: the broker acknowledged 3 of the file's 5 line(s) (the "
        "others were rejected, not sent yet or not confirmed); running the same file again is "
        "safe within the workers' APPEALS_DEDUPE_WINDOW_DAYS (45 here) of this run: appeal ids "
        "derive from the channel and source id, and intake registers each one once in that "
        "window",
        "appeals: interrupted"]
    assert len(consume_all(intake_settings, "pos", expect=3)) == 3
