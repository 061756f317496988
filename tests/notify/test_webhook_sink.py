"""workers/notify/webhook_sink.py: the compose stack's stand-in for Alertmanager's receivers."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from workers.notify.webhook_sink import describe, make_server


@pytest.fixture
def sink() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PAYLOAD = {
    "version": "4", "status": "firing", "receiver": "authority-supervisors",
    "groupLabels": {"alertname": "AppealSlaBreach", "authority": "22-minzhkh"},
    "alerts": [{"status": "firing", "labels": {
        "alertname": "AppealSlaBreach", "authority": "22-minzhkh", "severity": "critical"}}],
}


def test_logs_each_alert_and_answers_200(sink: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appeals.notify_sink")
    req = urllib.request.Request(sink + "/hooks/authority",
                                 data=json.dumps(PAYLOAD).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert ("/hooks/authority/22-minzhkh firing alertname=AppealSlaBreach authority=22-minzhkh "
            "severity=critical") in caplog.messages
    with urllib.request.urlopen(sink + "/healthz", timeout=5) as resp:
        assert resp.status == 200


def test_the_supervisors_hook_dispatches_on_the_groups_authority() -> None:
    """Alertmanager cannot put the authority into the receiver's URL: one receiver posts every
    authority's notifications to /hooks/authority, and the gateway reads whose they are from
    groupLabels (the route groups by authority)."""
    alert = {"status": "firing", "labels": {"alertname": "AppealSlaWarning", "authority": "22-vet"}}
    payload = {"groupLabels": {"alertname": "AppealSlaWarning", "authority": "22-vet"},
               "alerts": [alert]}
    assert describe("/hooks/authority", payload) == [
        "/hooks/authority/22-vet firing alertname=AppealSlaWarning authority=22-vet"]
    assert describe("/hooks/situation-centre", payload)[0].startswith(
        "/hooks/situation-centre firing")
    for group in ({}, {"authority": "../x y"}, {"authority": ""}):
        line = describe("/hooks/authority", {"groupLabels": group, "alerts": [alert]})[0]
        assert line.startswith("/hooks/authority (no authority in groupLabels"), line


def test_rejects_what_is_not_json(sink: str) -> None:
    req = urllib.request.Request(sink + "/hooks/x", data=b"{", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400


def test_describe_other_payloads() -> None:
    assert describe("/h", {"nope": 1}) == ["/h: not an Alertmanager webhook payload"]


def test_describe_tells_the_appeals_of_one_notification_apart() -> None:
    payload = {"alerts": [
        {"status": "firing", "labels": {"alertname": "AppealSlaBreach", "authority": "22-a",
                                        "appeal": appeal, "cycle": "0"}}
        for appeal in ("ab" * 12, "cd" * 12)]}  # fmt: skip
    assert describe("/h", payload) == [
        f"/h firing alertname=AppealSlaBreach authority=22-a appeal={'ab' * 12}",
        f"/h firing alertname=AppealSlaBreach authority=22-a appeal={'cd' * 12}",
    ]


def test_a_notification_listing_thousands_of_appeals_is_taken(
        sink: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each appeal is an Alertmanager alert of its own, and one notification lists all firing
    alerts of an authority and level: 2,000 of them (about 1.8 MB, a backlog of one body) were
    answered 413 at the old 1 MiB limit, which Alertmanager retries for good."""
    caplog.set_level(logging.INFO, logger="appeals.notify_sink")
    alert = {"status": "firing", "labels": {
        "alertname": "AppealSlaBreach", "authority": "22-minzhkh", "severity": "critical",
        "regime": "pos", "team": "authority", "stage": "answer"},
        "annotations": {"summary": "x" * 500}, "startsAt": "2026-12-10T17:00:00Z",
        "endsAt": "2026-12-11T17:00:00Z", "generatorURL": "", "fingerprint": "f" * 16}
    alerts = [{**alert, "labels": {**alert["labels"], "appeal": f"{i:024x}"}}
              for i in range(2000)]
    body = json.dumps({**PAYLOAD, "alerts": alerts}).encode()
    assert len(body) > 1 << 20
    req = urllib.request.Request(sink + "/hooks/authority/22-minzhkh", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    assert sum("appeal=" in m for m in caplog.messages) == 2000
