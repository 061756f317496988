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
    "version": "4", "status": "firing", "receiver": "22-minzhkh-supervisors",
    "alerts": [{"status": "firing", "labels": {
        "alertname": "AppealSlaBreach", "authority": "22-minzhkh", "severity": "critical"}}],
}


def test_logs_each_alert_and_answers_200(sink: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appeals.notify_sink")
    req = urllib.request.Request(sink + "/hooks/authority/22-minzhkh",
                                 data=json.dumps(PAYLOAD).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert ("/hooks/authority/22-minzhkh firing alertname=AppealSlaBreach authority=22-minzhkh "
            "severity=critical") in caplog.messages
    with urllib.request.urlopen(sink + "/healthz", timeout=5) as resp:
        assert resp.status == 200


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
