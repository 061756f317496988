"""Alertmanager config: amtool check-config, routing by authority, and inhibition on a real
Alertmanager started on a free local port; the SLA alerts as the notify stage posts them
(``workers.notify.delivery.alertmanager_alert``) through the shipped config to a receiver."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_support import MONITORING, REPO, require_tool, run_tool

from schemas.records import SlaAlert
from workers.notify.delivery import alertmanager_alert
from workers.notify.webhook_sink import recipient

CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
REL = str(CONFIG.relative_to(REPO))

# labels -> receivers that must get the alert (in order)
ROUTES = [
    ({"alertname": "AppealSlaWarning", "authority": "22-minzhkh", "severity": "warning",
      "regime": "fz59", "region": "22"}, ["authority-supervisors"]),
    ({"alertname": "AppealSlaBreach", "authority": "22-barnaul-kzhkh", "severity": "critical",
      "regime": "pos", "region": "22"}, ["authority-supervisors"]),
    # One of the 37 packaged authorities that had no route and went to the situation centre.
    ({"alertname": "AppealSlaBreach", "authority": "22-vet", "severity": "critical",
      "regime": "pos", "region": "22"}, ["authority-supervisors"]),
    ({"alertname": "AppealSlaEscalation", "authority": "22-minzhkh", "severity": "page",
      "regime": "fz59", "region": "22"},
     ["regional-situation-centre-escalations", "authority-supervisors"]),
    ({"alertname": "AppealsAuthorityBreachRateHigh", "authority": "22-barnaul-kzhkh",
      "severity": "critical"}, ["authority-supervisors"]),
    # An alert about no authority that is neither a platform nor an SLO alert: the centre.
    ({"alertname": "AppealsTriageWaiting", "severity": "warning"},
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
    # Scoped to one appeal's deadline: `equal: [authority]` silenced every other appeal's
    # warning of the authority while one breach fired.
    assert {
        "source_matchers": ['severity="critical"', 'authority=~".+"'],
        "target_matchers": ['severity="warning"', 'authority=~".+"'],
        "equal": ["authority", "appeal", "stage", "cycle"],
    } in rules
    assert {
        "source_matchers": ['alertname="AppealSlaBreach"'],
        "target_matchers": ['alertname="AppealSlaWarning"'],
        "equal": ["authority", "appeal", "stage", "cycle"],
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
    with _running_alertmanager(CONFIG, tmp_path) as base:
        yield base


@contextlib.contextmanager
def _running_alertmanager(config: Path, storage: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={storage}",
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
                                       "stage": "intake", "reason": "missing_field"}),
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
                                       "stage": "intake", "reason": "missing_field"}),
        ("AppealsApiDown", {"team": "platform", "severity": "warning", "instance": "api:8080"}),
    ])  # fmt: skip
    assert state == {
        ("AppealsNoWorkerRunning", None): "active",
        ("AppealsWorkerDown", None): "suppressed",
        ("AppealsDeadLettersGrowing", None): "suppressed",
        ("AppealsApiDown", None): "active",
    }


# ------------------------------------------------------------------ SLA alerts as posted


def _sla(appeal: str, level: str, *, stage: str | None = None, cycle: int = 0,
         authority: str = "22-minzhkh") -> dict[str, Any]:
    """An SLA alert as the notify stage posts it to Alertmanager."""
    severity = {"warning": "warning", "breach": "critical", "escalation": "page"}[level]
    fired = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    what = f"{stage}.{level}" if stage else level
    alert = SlaAlert(
        alert_id=f"{appeal}:{what}:{cycle}", appeal_id=appeal, level=level, regime="fz59",
        region="22", authority_id=authority, notify_authority_id=authority, due_at=fired,
        fired_at=fired, severity=severity, stage=stage)  # fmt: skip
    return alertmanager_alert(alert, "https://appeals.example", ttl=600.0)


def _held(alertmanager: str, count: int) -> dict[tuple[str, ...], str]:
    """State of each alert Alertmanager holds, by (alertname, appeal, stage, cycle)."""
    deadline = time.monotonic() + 10
    while True:
        got = _api(alertmanager, "/api/v2/alerts")
        assert isinstance(got, list)
        state = {
            tuple(a["labels"].get(k, "") for k in ("alertname", "appeal", "stage", "cycle")):
            a["status"]["state"] for a in got
        }  # fmt: skip
        settled = all(a["status"]["state"] != "unprocessed" for a in got)
        if (len(got) >= count and settled) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_each_appeals_alert_is_its_own_and_a_breach_silences_its_own_warning_only(
        alertmanager):
    """Labels per authority made every appeal's alert of an authority one alert: a second
    appeal's breach only replaced the first's annotations, and the breach silenced the
    warnings of every other appeal of the authority."""
    _api(alertmanager, "/api/v2/alerts", [
        _sla("a" * 24, "breach"),
        _sla("b" * 24, "breach"),
        _sla("a" * 24, "warning"),  # the breached deadline's warning: redundant
        _sla("c" * 24, "warning"),  # another appeal of the same authority
        _sla("a" * 24, "warning", stage="redirect"),  # another deadline of the same appeal
        _sla("a" * 24, "warning", cycle=1),  # the reopened appeal's new deadline
    ])  # fmt: skip
    assert _held(alertmanager, 6) == {
        ("AppealSlaBreach", "a" * 24, "", "0"): "active",
        ("AppealSlaBreach", "b" * 24, "", "0"): "active",
        ("AppealSlaWarning", "a" * 24, "", "0"): "suppressed",
        ("AppealSlaWarning", "c" * 24, "", "0"): "active",
        ("AppealSlaWarning", "a" * 24, "redirect", "0"): "active",
        ("AppealSlaWarning", "a" * 24, "", "1"): "active",
    }


def test_a_rule_alert_about_an_authority_leaves_its_appeals_warnings_alone(alertmanager):
    _api(alertmanager, "/api/v2/alerts", [
        {"labels": {"alertname": "AppealsAuthorityBreachRateHigh", "authority": "22-minzhkh",
                    "severity": "critical"},
         "startsAt": datetime.now(UTC).isoformat(),
         "endsAt": (datetime.now(UTC) + timedelta(minutes=10)).isoformat()},
        _sla("c" * 24, "warning"),
    ])  # fmt: skip
    assert _held(alertmanager, 2)[("AppealSlaWarning", "c" * 24, "", "0")] == "active"


class _Sink(ThreadingHTTPServer):
    """Records the Alertmanager webhook posts it gets: (path, payload)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def notified(self, appeal: str, alertname: str) -> list[tuple[str, dict[str, Any]]]:
        return [(path, p) for path, p in list(self.posts)
                if any(a["labels"].get("appeal") == appeal
                       and a["labels"]["alertname"] == alertname and a["status"] == "firing"
                       for a in p["alerts"])]  # fmt: skip


def test_the_authoritys_supervisors_are_notified_of_every_appeal(tmp_path):
    """The shipped config (receivers pointed at a local sink, group timers in seconds): each
    appeal's alert reaches the authority's supervisors, one group per alert name and
    authority. A second appeal's breach gave no notification at all, and a third appeal's
    warning was silenced by the breaches."""
    sink = _Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        config = yaml.safe_load(CONFIG.read_text())
        config["route"].update(group_wait="1s", group_interval="2s")
        text = yaml.safe_dump(config).replace(
            "http://notify-gateway:8080", f"http://127.0.0.1:{sink.server_address[1]}")
        (tmp_path / "am.yml").write_text(text)
        with _running_alertmanager(tmp_path / "am.yml", tmp_path / "data") as base:

            def notified(appeal: str, alertname: str) -> list[tuple[str, dict[str, Any]]]:
                deadline = time.monotonic() + 30
                while not (got := sink.notified(appeal, alertname)):
                    assert time.monotonic() < deadline, (appeal, alertname, sink.posts)
                    time.sleep(0.2)
                return got

            _api(base, "/api/v2/alerts", [_sla("a" * 24, "breach")])
            notified("a" * 24, "AppealSlaBreach")
            _api(base, "/api/v2/alerts", [_sla("b" * 24, "breach")])
            ((path, payload), *_) = notified("b" * 24, "AppealSlaBreach")
            _api(base, "/api/v2/alerts", [_sla("c" * 24, "warning")])
            notified("c" * 24, "AppealSlaWarning")
            # An authority without a route of its own until the single authority route.
            _api(base, "/api/v2/alerts", [_sla("d" * 24, "breach", authority="22-vet")])
            ((vet_path, vet_payload), *_) = notified("d" * 24, "AppealSlaBreach")
    finally:
        sink.shutdown()
        sink.server_close()
    assert path == "/hooks/authority"
    assert payload["receiver"] == "authority-supervisors"
    assert payload["groupLabels"] == {"alertname": "AppealSlaBreach", "authority": "22-minzhkh"}
    assert sorted(a["labels"]["appeal"] for a in payload["alerts"]) == ["a" * 24, "b" * 24]
    # The compose stand-in (as the notification gateway) dispatches on the group's authority.
    assert recipient(path, payload) == "/hooks/authority/22-minzhkh"
    assert recipient(vet_path, vet_payload) == "/hooks/authority/22-vet"
    assert [a["labels"]["appeal"] for a in vet_payload["alerts"]] == ["d" * 24]
    assert {p for p, _ in sink.posts} == {"/hooks/authority"}
