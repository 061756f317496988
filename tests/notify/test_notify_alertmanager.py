"""The Alertmanager path against a real Alertmanager (Debian ``prometheus-alertmanager``).

The test starts its own Alertmanager on free loopback ports (clustering off, storage in
tmp_path), posts alerts through :class:`workers.notify.delivery.Delivery` and reads them back
from ``GET /api/v2/alerts``: the labels must be ids and codes (each appeal's alert its own,
by its opaque appeal id and cycle), the appeal link must be in the annotations, and nothing of
the citizen may be anywhere in what Alertmanager holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.records import SlaAlert
from streams.devstack import free_port
from streams.settings import Settings
from workers.demo.generator import Generator
from workers.notify.delivery import Delivery, alertmanager_alert

BINARY = "prometheus-alertmanager"
CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname, authority]
receivers:
  - name: blackhole
"""


def _binary() -> str:
    path = shutil.which(BINARY) or ("/usr/bin/" + BINARY if os.path.exists("/usr/bin/" + BINARY)
                                    else None)
    if path:
        return path
    if os.environ.get("APPEALS_SKIP_SYSTEM_TOOLS") == "1":
        pytest.skip(f"{BINARY} missing and APPEALS_SKIP_SYSTEM_TOOLS=1")
    pytest.fail(
        f"`{BINARY}` is not installed. Install the Debian package `prometheus-alertmanager` "
        "(as root: `bash tests/system-deps.sh`, or `apt-get install -y prometheus-alertmanager`), "
        "or set APPEALS_SKIP_SYSTEM_TOOLS=1 to skip the tests that need it.",
        pytrace=False,
    )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = _binary()
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
             "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"alertmanager exited ({proc.returncode}): {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"alertmanager not ready: {log_path.read_text()}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _alert(appeal_id: str, level: str, authority: str = "22-minzhkh",
           notify: str = "22-minzhkh") -> SlaAlert:
    severity = {"warning": "warning", "breach": "critical", "escalation": "page"}[level]
    fired = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
    return SlaAlert(
        alert_id=f"{appeal_id}:{level}:0", appeal_id=appeal_id, level=level, regime="fz59",
        region="22", authority_id=authority, notify_authority_id=notify,
        due_at="2026-12-10T16:59:59+00:00", fired_at=fired, severity=severity,
        category="housing_utilities", urgent=True,
    )


def test_alerts_reach_alertmanager_with_id_and_code_labels_and_no_personal_data(
        alertmanager: str) -> None:
    gen = Generator(seed=9, malformed_share=0.0)
    appeals = [gen.appeal(time.time()) for _ in range(2)]
    settings = Settings.load({}).replace(alertmanager_url=alertmanager, webhook_url="",
                                         public_url="https://appeals.example",
                                         webhook_backoff=0.05, webhook_attempts=3)
    delivery = Delivery(settings)
    sent = [
        _alert(appeals[0].appeal_id, "breach"),
        _alert(appeals[1].appeal_id, "escalation", notify="22-government"),
    ]

    async def go() -> list[bool]:
        try:
            return [await delivery(a) for a in sent]
        finally:
            await delivery.close()

    assert asyncio.run(go()) == [True, True]

    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        got = _get(f"{alertmanager}/api/v2/alerts")
        time.sleep(0.1)
    by_name = {a["labels"]["alertname"]: a for a in got}
    assert set(by_name) == {"AppealSlaBreach", "AppealSlaEscalation"}

    breach = by_name["AppealSlaBreach"]
    assert breach["labels"] == {"alertname": "AppealSlaBreach", "authority": "22-minzhkh",
                                "severity": "critical", "regime": "fz59", "region": "22",
                                "appeal": appeals[0].appeal_id, "cycle": "0"}
    assert breach["status"]["state"] == "active"
    link = f"https://appeals.example/v1/appeals/{appeals[0].appeal_id}"
    assert breach["annotations"]["appeal_url"] == link
    assert link in breach["annotations"]["description"]
    assert breach["annotations"]["summary"]
    assert breach["generatorURL"] == link

    escalation = by_name["AppealSlaEscalation"]
    assert escalation["labels"]["authority"] == "22-government"  # the parent's supervisor
    assert escalation["labels"]["severity"] == "page"

    everything = json.dumps(got, ensure_ascii=False)
    for appeal in appeals:
        for personal in appeal.personal:
            assert personal not in everything


def test_alertmanager_down_fails_so_the_alert_is_dead_lettered() -> None:
    settings = Settings.load({}).replace(
        alertmanager_url=f"http://127.0.0.1:{free_port()}", webhook_attempts=2,
        webhook_backoff=0.01)
    delivery = Delivery(settings)

    async def go() -> bool:
        try:
            return await delivery(_alert("ab" * 12, "warning"))
        finally:
            await delivery.close()

    assert asyncio.run(go()) is False


def test_compressed_clock_alert_starts_now_not_in_the_future() -> None:
    alert = _alert("cd" * 12, "warning")
    future = SlaAlert.from_dict({**alert.to_dict(), "fired_at": "2099-01-01T00:00:00+00:00"})
    body = alertmanager_alert(future, "http://x", ttl=3600, now=1_800_000_000.0)
    assert body["startsAt"] == "2027-01-15T08:00:00Z"
    assert body["endsAt"] == "2027-01-15T09:00:00Z"


def test_a_stage_alert_is_its_own_alertmanager_alert_and_says_its_stage() -> None:
    """A stage deadline's alert (README "Stage deadlines") must not merge with the answer's
    alert of the same authority at Alertmanager (alerts with equal labels are one alert), and
    its text names the stage; the answer's alert keeps its labels as they were."""
    answer = _alert("ef" * 12, "breach")
    stage = SlaAlert.from_dict({**answer.to_dict(), "stage": "redirect",
                                "alert_id": f"{'ef' * 12}:redirect.breach:0"})
    plain = alertmanager_alert(answer, "http://x", ttl=3600, now=1_800_000_000.0)
    staged = alertmanager_alert(stage, "http://x", ttl=3600, now=1_800_000_000.0)
    assert "stage" not in plain["labels"]
    assert staged["labels"] == {**plain["labels"], "stage": "redirect"}
    assert staged["annotations"]["summary"].startswith("SLA breach (stage redirect):")
    assert plain["annotations"]["summary"].startswith("SLA breach:")


def test_two_appeals_of_one_authority_are_two_alertmanager_alerts() -> None:
    """Alertmanager takes alerts with equal labels for one: with labels per authority only, a
    second appeal's breach merely replaced the first's annotations and notified nobody."""
    first, second = _alert("ab" * 12, "breach"), _alert("cd" * 12, "breach")
    reopened = SlaAlert.from_dict({**first.to_dict(), "alert_id": f"{'ab' * 12}:breach:1"})
    labels = [alertmanager_alert(a, "http://x", ttl=3600, now=1_800_000_000.0)["labels"]
              for a in (first, second, reopened)]
    assert labels[0]["appeal"] == "ab" * 12 and labels[1]["appeal"] == "cd" * 12
    assert labels[0]["cycle"] == "0" and labels[2]["cycle"] == "1"
    assert len({json.dumps(x, sort_keys=True) for x in labels}) == 3
    # An id not of the SLA agent's form: no cycle label, the appeal still names the alert.
    odd = SlaAlert.from_dict({**first.to_dict(), "alert_id": "something-else"})
    odd_labels = alertmanager_alert(odd, "http://x", ttl=3600, now=1_800_000_000.0)["labels"]
    assert "cycle" not in odd_labels and odd_labels["appeal"] == "ab" * 12
