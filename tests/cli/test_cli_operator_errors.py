"""`appeals ...` fed bad input by an operator: one line naming what is wrong, exit status 2,
no traceback. Runs the CLI in-process through ``workers.cli.main``."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.devstack import free_port
from tests.cli.cli_run import run
from workers import cli

REPO = Path(__file__).resolve().parents[2]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- 1: the classify group goes through its own error wrapper

@pytest.mark.parametrize("argv", [
    ["classify", "eval", "--data", "/nonexistent/x.jsonl"],
    ["classify", "text", "--model", "/nonexistent/model.pkl", "hello"],
    ["classify", "export-feedback", "--from", "/nonexistent/d.jsonl", "--out", "/tmp/x.jsonl"],
], ids=["eval", "text", "export-feedback"])
def test_classify_missing_file_is_one_line(argv: list[str], capsys: Any) -> None:
    rc, err = run(argv, capsys)
    assert rc == 2
    assert "/nonexistent/" in one_line(err)


# -- 2 and 10: bad option values are usage errors naming the option

@pytest.mark.parametrize(("argv", "option"), [
    (["worker", "--kafka", "localhost:9092"], "--kafka"),
    (["worker", "--redis", "http://x"], "--redis"),
    (["worker", "--metrics-port", "70000"], "--metrics-port"),
    (["api", "--redis", "http://x"], "--redis"),
    (["api", "--port", "70000"], "--port"),
    (["gateway", "--port", "-1"], "--port"),
    (["demo", "--time-scale", "0"], "--time-scale"),
    (["demo", "--rate", "-5"], "--rate"),
    (["demo", "--metrics-port", "70000"], "--metrics-port"),
    (["demo", "--workers", "0"], "--workers"),
    (["demo", "--duration", "-5"], "--duration"),
    (["demo", "--duration", "0"], "--duration"),
    (["demo", "--duration", "nan"], "--duration"),
    (["demo", "--duration", "inf"], "--duration"),
    # produce and export-feedback took any prefix and address: a traceback after the file was
    # read, or a 30 s bootstrap ending in KafkaTimeoutError (review of the CLI, D3).
    (["produce", "x.jsonl", "--topic-prefix", "a b/"], "--topic-prefix"),
    (["produce", "x.jsonl", "--kafka", "foo"], "--kafka"),
    (["classify", "export-feedback", "--topic-prefix", "a b/"], "--topic-prefix"),
    (["classify", "export-feedback", "--kafka", "foo"], "--kafka"),
    # bench took nan and inf (a traceback), 0 and negative counts (review of the CLI, D6); a
    # latency rate or scale-out count of 0 is refused by the command unless its run is skipped
    # (tests/bench).
    (["bench", "--latency-seconds", "nan"], "--latency-seconds"),
    (["bench", "--latency-seconds", "inf"], "--latency-seconds"),
    (["bench", "--naive-seconds", "0"], "--naive-seconds"),
    (["bench", "--partitions", "-1"], "--partitions"),
    (["bench", "--batch-size", "0"], "--batch-size"),
])
def test_bad_option_values(argv: list[str], option: str, capsys: Any) -> None:
    rc, err = run(argv, capsys)
    assert rc == 2
    assert f"argument {option}:" in one_line(err)


def test_demo_port_range_must_fit_every_worker(capsys: Any) -> None:
    rc, err = run(["demo", "--metrics-port", "65535", "--workers", "2"], capsys)
    assert rc == 2
    assert "--metrics-port" in one_line(err)


def test_bad_environment_of_a_sub_system(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("APPEALS_GATEWAY_RATE", "abc")
    rc, err = run(["gateway", "--port", "0"], capsys)
    assert rc == 2
    assert "APPEALS_GATEWAY_RATE='abc'" in one_line(err)


def test_bad_config_file_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: Any) -> None:
    config = tmp_path / "appeals.toml"
    config.write_text("kafka = 9092\n")
    monkeypatch.setenv("APPEALS_CONFIG", str(config))
    rc, err = run(["topics"], capsys)
    assert rc == 2
    line = one_line(err)
    assert str(config) in line and "kafka" in line


# -- 3: an unreachable broker is one line naming APPEALS_KAFKA and the address

def _unreachable(settings: Any, timeout: float = 30.0) -> list[str]:
    """What streams.topics.ensure_topics raises when its 30 s of bootstrap attempts run out."""
    from kafka.errors import KafkaTimeoutError

    try:
        raise KafkaTimeoutError(f"Unable to bootstrap from {settings.kafka_bootstrap}")
    except KafkaTimeoutError as exc:
        raise RuntimeError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc


COMMANDS = [["topics", "create"], ["worker"], ["gateway", "--port", "0"]]
COMMAND_IDS = ["topics-create", "worker", "gateway"]


def _command_name(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "topics" else argv[0]


@pytest.mark.parametrize("argv", COMMANDS, ids=COMMAND_IDS)
def test_a_broker_that_fails_later_is_one_line(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                              capsys: Any) -> None:
    """The broker's port accepts connections (it passes the start-up check) but the Kafka
    client then gives up: still one line naming APPEALS_KAFKA and the client's error."""
    import socket

    import streams.topics

    with socket.socket() as listener:  # accepts TCP connections, speaks no Kafka
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"kafka://127.0.0.1:{listener.getsockname()[1]}"
        bootstrap = url.split("://")[1]
        monkeypatch.setattr(streams.topics, "ensure_topics", _unreachable)
        monkeypatch.setenv("APPEALS_KAFKA", url)
        monkeypatch.setenv("APPEALS_GATEWAY_CREATE_TOPICS", "true")
        rc, err = run(argv, capsys)
    assert rc == 2
    lines = [line for line in err.splitlines() if line.startswith("appeals ")]
    assert lines == [f"appeals {_command_name(argv)}: cannot reach Kafka at {bootstrap} "
                     f"(APPEALS_KAFKA={url}): KafkaTimeoutError: Unable to bootstrap from "
                     f"{bootstrap}"], err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [*COMMANDS, ["sla", "recompute"]],
                         ids=[*COMMAND_IDS, "sla-recompute"])
def test_no_broker_is_said_at_once_in_one_line(argv: list[str], tmp_path: Path) -> None:
    """No mock: nothing listens on the broker's port. kafka-python tried to bootstrap for 30 s
    and logged about forty lines before these commands could say so (session 15)."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "APPEALS_KAFKA": f"kafka://127.0.0.1:{port}",
           "APPEALS_GATEWAY_CREATE_TOPICS": "true", "APPEALS_REDIS": "redis://127.0.0.1:1/0",
           "APPEALS_METRICS_PORT": "0", "HOME": str(tmp_path)}
    # 25 s: the 5 s wait and start-up; kafka-python's 30 s attempts would not fit in it.
    proc = subprocess.run([sys.executable, "-m", "workers.cli", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=25)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "kafka.net" not in proc.stderr, proc.stderr
    name = "sla recompute: error" if argv[0] == "sla" else _command_name(argv)
    assert proc.stderr.splitlines()[-1].startswith(
        f"appeals {name}: cannot reach Kafka at 127.0.0.1:{port} "
        f"(APPEALS_KAFKA=kafka://127.0.0.1:{port}): no connection accepted"), proc.stderr


# -- 9: `appeals config` lists every APPEALS_* variable the code reads

def test_config_lists_every_variable_read_in_the_code(capsys: Any) -> None:
    assert cli.main(["config"]) == 0
    listed = set(re.findall(r"^(APPEALS_[A-Z0-9_]+)\s", capsys.readouterr().out, re.MULTILINE))
    read = set()
    for folder in ("workers", "streams"):
        for path in (REPO / folder).rglob("*.py"):
            for name in re.findall(r"\bAPPEALS_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")):
                if not name.endswith("_"):  # a prefix: f"APPEALS_GATEWAY_{name.upper()}"
                    read.add(name)
    assert read  # the scan found something
    assert read - listed == set()


def test_help_texts_outside_the_classify_group() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sub.choices["config"].description
    for name in ("worker", "demo", "topics", "api", "gateway", "produce"):
        for action in sub.choices[name]._actions:
            assert action.help, (name, action.dest)


def test_produce_to_an_unreachable_broker_says_so_at_once(capsys: Any) -> None:
    """kafka-python tried to bootstrap for 30 s before `appeals produce` could say anything."""
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    rc, err = run(["produce", str(REPO / "tests/data/intake/canonical.jsonl"),
                   "--kafka", f"kafka://127.0.0.1:{port}"], capsys)
    assert rc == 2
    assert time.monotonic() - started < 10
    assert [line for line in err.splitlines() if line.startswith("appeals ")] == [
        f"appeals produce: cannot reach Kafka at 127.0.0.1:{port} "
        f"(--kafka=kafka://127.0.0.1:{port}): connection refused or timed out"], err


def test_demo_log_dir_it_cannot_create_is_one_line(tmp_path: Path, capsys: Any) -> None:
    """Was a FileNotFoundError traceback, exit 1 (review of session 16)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, err = run(["demo", "--log-dir", str(blocker / "logs"), "--duration", "1"], capsys)
    assert rc == 2
    assert "--log-dir" in one_line(err)


@pytest.mark.parametrize("argv", [["classify", "text", ""], ["classify", "text", " ", "\n"]])
def test_classify_text_without_text_is_one_line(argv: list[str], capsys: Any) -> None:
    """An empty text was classified as ``other`` with exit 0 (review of session 16)."""
    rc, err = run(argv, capsys)
    assert rc == 2
    assert "no text" in one_line(err)


def test_the_classify_group_help_names_its_real_subcommands() -> None:
    """``appeals --help`` listed a ``feedback`` subcommand that does not exist and left out
    ``export-feedback`` and ``bench`` (review of session 16)."""
    parser = cli.build_parser()
    group = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    classify = group.choices["classify"]
    listed = next(c.help for c in group._choices_actions if c.dest == "classify")
    named = {w.strip() for w in (listed or "").split(":", 1)[1].split(",")}
    sub = next(a for a in classify._actions if isinstance(a, argparse._SubParsersAction))
    assert named == set(sub.choices)


def test_a_reader_that_goes_away_is_no_traceback() -> None:
    """``appeals config | head -1`` printed a BrokenPipeError traceback (review of session
    16)."""
    proc = subprocess.run(
        ["bash", "-c", f"'{sys.executable}' -m workers.cli config | head -c 10 >/dev/null; "
                       "echo status=${PIPESTATUS[0]} >&2"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert "status=141" in proc.stderr or "status=0" in proc.stderr, proc.stderr
