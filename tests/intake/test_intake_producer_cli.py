"""Producer SDK and ``appeals produce`` against the real broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from streams.settings import Settings
from tests.intake.conftest import DATA, consume_all, load_samples
from workers.intake import cli
from workers.intake.core import appeal_id_for
from workers.intake.producer import IntakeProducer

pytestmark = pytest.mark.integration


def test_sdk_sends_valid_and_refuses_invalid(intake_settings: Settings) -> None:
    with IntakeProducer(intake_settings.kafka, intake_settings.topic_prefix) as producer:
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
                        max_message_bytes=4096) as producer:
        with pytest.raises(InvalidEvent) as info:
            producer.prepare(big)
        assert info.value.reason == "oversize_message"
        with pytest.raises(InvalidEvent):
            producer.send(big, wait=True)
        small = producer.send({**canon, "external_id": "canon-small-1"}, wait=True)
    sent = consume_all(intake_settings, canon["channel"], expect=1)
    assert [k.decode() for k, _ in sent if k] == [small]
