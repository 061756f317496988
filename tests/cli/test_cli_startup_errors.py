"""Start-up failures an operator meets, as one line naming the setting and exit status 2:

* ``appeals api`` on a taken port, an unknown host, a missing APPEALS_ROUTING_RULES file, and
  ``appeals gateway`` on a taken port ended in tracebacks with exit 1;
* ``appeals worker`` with a taken metrics port died only after it had joined the consumer
  group (its metrics task failed); now it stops before Kafka is asked for anything;
* ``appeals config`` with a broken APPEALS_CONFIG file printed the defaults and exit 0 while
  ``appeals api`` refused the file.

Runs the CLI in-process through ``workers.cli.main``; one case as a real process.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_run import run, run_out
from workers import cli

REPO = Path(__file__).resolve().parents[2]


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("appeals")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


@contextlib.contextmanager
def taken_port(host: str = "0.0.0.0") -> Iterator[int]:
    """A port something listens on (as another process's server would)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed Kafka port and no topic creation: the checks must come before Kafka."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("APPEALS_KAFKA", f"kafka://127.0.0.1:{port}")
    monkeypatch.setenv("APPEALS_REDIS", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("APPEALS_GATEWAY_CREATE_TOPICS", "false")
    monkeypatch.delenv("APPEALS_CONFIG", raising=False)

    import streams.topics

    def no_kafka(*_: Any, **__: Any) -> list[str]:
        raise AssertionError("Kafka was asked before the listen check")

    monkeypatch.setattr(streams.topics, "ensure_topics", no_kafka)


def test_api_port_in_use(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with taken_port() as port:
        rc, err = run(["api", "--port", str(port)], capsys)
        assert rc == 2
        assert one_line(err) == (f"appeals api: cannot listen on 127.0.0.1:{port} "
                                 f"(--port={port}): address already in use")
        monkeypatch.setenv("APPEALS_API_PORT", str(port))
        rc, err = run(["api"], capsys)
        assert rc == 2
        assert f"(APPEALS_API_PORT={port}): address already in use" in one_line(err)


def test_api_unknown_host(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, err = run(["api", "--host", "no-such-host.invalid", "--port", "0"], capsys)
    assert rc == 2
    assert one_line(err).startswith("appeals api: cannot listen on no-such-host.invalid:0 "
                                    "(--host=no-such-host.invalid): unknown host")
    monkeypatch.setenv("APPEALS_API_HOST", "no-such-host.invalid")
    rc, err = run(["api", "--port", "0"], capsys)
    assert rc == 2
    assert "(APPEALS_API_HOST=no-such-host.invalid): unknown host" in one_line(err)


def test_api_missing_routing_rules(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.yaml"
    monkeypatch.setenv("APPEALS_ROUTING_RULES", str(missing))
    rc, err = run(["api", "--port", "0"], capsys)
    assert rc == 2
    line = one_line(err)
    assert line.startswith(f"appeals api: invalid routing rules "
                           f"(APPEALS_ROUTING_RULES={missing}): {missing}: "), line
    assert "cannot read" in line


def test_gateway_port_in_use(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with taken_port() as port:
        rc, err = run(["gateway", "--port", str(port)], capsys)
        assert rc == 2
        assert one_line(err) == (f"appeals gateway: cannot listen on 127.0.0.1:{port} "
                                 f"(--port={port}): address already in use")
        monkeypatch.setenv("APPEALS_GATEWAY_PORT", str(port))
        rc, err = run(["gateway"], capsys)
        assert rc == 2
        assert f"(APPEALS_GATEWAY_PORT={port}): address already in use" in one_line(err)


def test_worker_metrics_port_in_use_stops_before_kafka(capsys: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with taken_port() as port:
        rc, err = run(["worker", "--metrics-port", str(port)], capsys)
        assert rc == 2
        assert one_line(err) == (f"appeals worker: cannot listen on 0.0.0.0:{port} "
                                 f"(--metrics-port={port}): address already in use")
        monkeypatch.setenv("APPEALS_METRICS_PORT", str(port))
        rc, err = run(["worker"], capsys)
        assert rc == 2
        assert f"(APPEALS_METRICS_PORT={port}): address already in use" in one_line(err)


def _changed_faust(monkeypatch: pytest.MonkeyPatch, qualname: str) -> None:
    """``qualname`` (a Faust function a patch replaces) looks like another release's."""
    from streams import faust_sources

    real = faust_sources.digest
    monkeypatch.setattr(faust_sources, "digest", lambda f: "0" * 64
                        if getattr(f, "__qualname__", "") == qualname else real(f))


class _Started(Exception):
    """The worker went on to create its topics."""


def test_worker_refuses_a_faust_its_patches_do_not_match(capsys: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An untested faust-streaming (an image built from unpinned ranges) switched the loss fixes
    off with a warning only; the worker now stops before Kafka, naming patch and versions."""
    from importlib import metadata

    _changed_faust(monkeypatch, "Consumer._drain_messages")
    rc, err = run(["worker", "--metrics-port", "0"], capsys)
    assert rc == 2
    line = one_line(err)
    assert line.startswith(f"appeals worker: faust-streaming {metadata.version('faust-streaming')}"
                           f", aiokafka {metadata.version('aiokafka')} installed"), line
    assert "fastpath (Consumer._drain_messages)" in line
    assert "APPEALS_REQUIRE_FAUST_PATCHES=false" in line


def test_worker_starts_on_such_a_faust_when_allowed(capsys: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.topics

    def started(*_: Any, **__: Any) -> list[str]:
        raise _Started

    monkeypatch.setattr(streams.topics, "ensure_topics", started)
    monkeypatch.setattr(cli, "broker_unreachable", lambda *_: "")  # as if a broker answered
    _changed_faust(monkeypatch, "Consumer._drain_messages")
    monkeypatch.setenv("APPEALS_REQUIRE_FAUST_PATCHES", "false")
    with pytest.raises(_Started):
        run(["worker", "--metrics-port", "0"], capsys)
    # Turned off, the patch is not required either.
    monkeypatch.delenv("APPEALS_REQUIRE_FAUST_PATCHES")
    monkeypatch.setenv("APPEALS_FAUST_FASTPATH", "0")
    with pytest.raises(_Started):
        run(["worker", "--metrics-port", "0"], capsys)


def test_api_port_in_use_as_a_process() -> None:
    with taken_port("127.0.0.1") as port:
        proc = subprocess.run(
            [sys.executable, "-m", "workers.cli", "api", "--port", str(port)],
            cwd=REPO, env={"PATH": "/usr/bin:/bin", "APPEALS_REDIS": "redis://127.0.0.1:1/0"},
            capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"appeals api: cannot listen on 127.0.0.1:{port} (--port={port}): "
                           "address already in use\n")


@pytest.mark.parametrize(("text", "expect"), [
    ("partitons = 8\n", "partitons: not a setting (did you mean partitions?)"),
    ("partitions = [\n", "cannot read"),
    ("rating_refresh = -1\n", "APPEALS_RATING_REFRESH must be positive"),
], ids=["typo", "unparsable", "out-of-range"])
def test_config_command_loads_the_settings(text: str, expect: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: Any) -> None:
    config = tmp_path / "appeals.toml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("APPEALS_CONFIG", str(config))
    rc, out, err = run_out(["config"], capsys)
    assert rc == 2
    line = one_line(err)
    assert line.startswith("appeals: configuration error: ") and expect in line, line
    assert str(config) in line
    assert out == "", out  # no defaults printed, not even before the error


def test_config_command_with_a_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: Any) -> None:
    config = tmp_path / "appeals.toml"
    config.write_text("partitions = 4\n[gateway]\nport = 8081\n", encoding="utf-8")
    monkeypatch.setenv("APPEALS_CONFIG", str(config))
    rc, out, err = run_out(["config"], capsys)
    assert (rc, err) == (0, ""), err
    assert "APPEALS_PARTITIONS" in out


def test_api_help_names_every_route(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["api", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for route in ("/v1/appeals/{id}", "/v1/authorities", "/v1/authorities/{id}/stats",
                  "/v1/municipalities/{id}/stats", "/v1/categories/{code}/stats",
                  "/v1/ratings", "/v1/breaches", "/openapi.json", "/healthz", "/metrics"):
        assert route in text, route


def test_api_and_gateway_default_ports_differ(capsys: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Both defaulted to 8080: on one host with the defaults the second could not listen.
    The gateway's is 8081, as `appeals config` says and the compose stack publishes it."""
    from workers.intake.gateway import GatewayConfig

    for name in ("APPEALS_API_PORT", "APPEALS_GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = cli.Settings.load()
    gateway = GatewayConfig.load(settings, {})
    assert (settings.api_port, gateway.port) == (8080, 8081)
    rc, out, _ = run_out(["config"], capsys)
    assert rc == 0
    line = next(x for x in out.splitlines() if x.lstrip().startswith("APPEALS_GATEWAY_PORT"))
    assert line.split()[1] == "8081", line


def test_worker_on_a_data_dir_in_use_says_so_in_one_line(capsys: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A second worker on a locked APPEALS_DATA_DIR died with a traceback (DataDirInUse raised
    by run_worker), unlike every other start-up error."""
    import workers.pipeline
    from streams.rocksdb_store import DataDirInUse

    def in_use(*_: Any, **__: Any) -> None:
        raise DataDirInUse("APPEALS_DATA_DIR /x is in use by another process: every worker "
                           "needs a data directory of its own")

    import streams.topics

    monkeypatch.setattr(streams.topics, "ensure_topics", lambda *_, **__: [])
    monkeypatch.setattr(cli, "broker_unreachable", lambda *_: "")  # as if a broker answered
    monkeypatch.setattr(workers.pipeline, "run_worker", in_use)
    rc, err = run(["worker", "--metrics-port", "0"], capsys)
    assert rc == 2
    assert one_line(err) == ("appeals worker: APPEALS_DATA_DIR /x is in use by another process: "
                             "every worker needs a data directory of its own")
