"""Alertmanager config: amtool check-config, routing by authority, and inhibition on a real
Alertmanager started on a free local port."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from monitoring_support import MONITORING, REPO, require_tool, run_tool

CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
REL = str(CONFIG.relative_to(REPO))

# labels -> receivers that must get the alert (in order)
ROUTES = [
    ({"alertname": "AppealSlaWarning", "authority": "22-minzhkh", "severity": "warning",
      "regime": "fz59", "region": "22"}, ["22-minzhkh-supervisors"]),
    ({"alertname": "AppealSlaBreach", "authority": "22-barnaul-kzhkh", "severity": "critical",
      "regime": "pos", "region": "22"}, ["22-barnaul-kzhkh-supervisors"]),
    ({"alertname": "AppealSlaEscalation", "authority": "22-minzhkh", "severity": "page",
      "regime": "fz59", "region": "22"},
     ["regional-situation-centre-escalations", "22-minzhkh-supervisors"]),
    ({"alertname": "AppealsAuthorityBreachRateHigh", "authority": "22-barnaul-kzhkh",
      "severity": "critical"}, ["22-barnaul-kzhkh-supervisors"]),
    # An authority without its own route: the regional situation centre.
    ({"alertname": "AppealSlaBreach", "authority": "22-unknown-body", "severity": "critical"},
     ["regional-situation-centre"]),
    ({"alertname": "AppealsWorkerDown", "team": "platform", "severity": "warning",
      "instance": "worker-1:9464"}, ["appeals-platform-oncall"]),
    ({"alertname": "AppealsOnTimeSLOFastBurn", "slo": "on-time-answering", "severity": "page",
      "regime": "pos"}, ["regional-situation-centre"]),
]  # fmt: skip


def test_amtool_check_config(amtool):
    out = run_tool(amtool, "check-config", REL)
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=lambda v: str(v)[:60])
def test_route(amtool, labels, receivers):
    pairs = [f"{k}={v}" for k, v in labels.items()]
    out = run_tool(amtool, "config", "routes", "test", f"--config.file={REL}", *pairs)
    assert out.stdout.strip() == ",".join(receivers), out.stdout + out.stderr
    run_tool(amtool, "config", "routes", "test", f"--config.file={REL}",
             f"--verify.receivers={','.join(receivers)}", *pairs)  # fmt: skip


def test_grouping_and_inhibition_declared():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "authority"]
    rules = config["inhibit_rules"]
    assert {
        "source_matchers": ['severity="critical"', 'authority=~".+"'],
        "target_matchers": ['severity="warning"', 'authority=~".+"'],
        "equal": ["authority"],
    } in rules
    assert {
        "source_matchers": ['alertname="AppealSlaBreach"'],
        "target_matchers": ['alertname="AppealSlaWarning"'],
        "equal": ["authority"],
    } in rules
    for receiver in config["receivers"]:
        assert set(receiver) == {"name", "webhook_configs"}, receiver["name"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def alertmanager(tmp_path):
    binary = require_tool("prometheus-alertmanager")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={CONFIG}", f"--storage.path={tmp_path}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"alertmanager did not start:\n{proc.communicate()[0]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _states(alertmanager: str, alerts: list[tuple[str, dict[str, str]]]) -> dict:
    """Post ``alerts`` (name, labels) to a real Alertmanager; their states by (name, authority)."""
    now = datetime.now(UTC)
    window = {"startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
    _api(alertmanager, "/api/v2/alerts", [
        {"labels": {"alertname": name, "region": "22", **labels},
         "annotations": {"summary": f"{name} test"}, **window}
        for name, labels in alerts])  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        got = _api(alertmanager, "/api/v2/alerts")
        assert isinstance(got, list)
        state = {
            (a["labels"]["alertname"], a["labels"].get("authority")): a["status"]["state"]
            for a in got
        }
        if len(state) == len(alerts) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_inhibition_on_real_alertmanager(alertmanager):
    state = _states(alertmanager, [
        ("AppealSlaBreach", {"authority": "22-minzhkh", "severity": "critical", "regime": "fz59"}),
        ("AppealSlaWarning", {"authority": "22-minzhkh", "severity": "warning", "regime": "pos"}),
        ("AppealSlaWarning", {"authority": "22-barnaul-kzhkh", "severity": "warning",
                              "regime": "fz59"}),
        # Platform alerts have no authority: a critical one must not silence a warning one.
        ("AppealsDeadLetterRatioHigh", {"team": "platform", "severity": "critical"}),
        ("AppealsDeadLettersGrowing", {"team": "platform", "severity": "warning",
                                       "stage": "intake", "reason": "schema_invalid"}),
    ])  # fmt: skip
    assert state == {
        ("AppealSlaBreach", "22-minzhkh"): "active",
        ("AppealSlaWarning", "22-minzhkh"): "suppressed",  # breach for the same authority
        ("AppealSlaWarning", "22-barnaul-kzhkh"): "active",  # other authority: untouched
        ("AppealsDeadLetterRatioHigh", None): "active",
        ("AppealsDeadLettersGrowing", None): "active",
    }


def test_no_worker_running_silences_the_worker_alerts_only(alertmanager):
    """The API reads Redis, not the workers: its being down must page while no worker runs.
    Every platform warning was silenced with the workers' (review of session 14)."""
    state = _states(alertmanager, [
        ("AppealsNoWorkerRunning", {"team": "platform", "severity": "page"}),
        ("AppealsWorkerDown", {"team": "platform", "severity": "warning",
                               "instance": "worker-1:9464"}),
        ("AppealsDeadLettersGrowing", {"team": "platform", "severity": "warning",
                                       "stage": "intake", "reason": "schema_invalid"}),
        ("AppealsApiDown", {"team": "platform", "severity": "warning", "instance": "api:8080"}),
    ])  # fmt: skip
    assert state == {
        ("AppealsNoWorkerRunning", None): "active",
        ("AppealsWorkerDown", None): "suppressed",
        ("AppealsDeadLettersGrowing", None): "suppressed",
        ("AppealsApiDown", None): "active",
    }
