"""A stand-in for the notification gateway Alertmanager's receivers post to.

``monitoring/alertmanager/alertmanager.yml`` sends every receiver's alerts to
``http://notify-gateway:8080/hooks/...``: in production that name belongs to the deployment's
gateway to the supervisors' e-mail / messenger / SMS. ``docker/compose.yaml`` runs this module
under that name so the stack is complete: it accepts Alertmanager's webhook posts (payload
version 4) and logs one line per alert — receiver path, status, alertname, authority, severity,
the SLA alerts' stage and appeal id (labels only: they never hold personal data) — so
``docker compose logs notify-gateway`` shows what would have been sent. It answers
``GET /healthz`` for the compose healthcheck.

Every authority's alerts reach it through one receiver, ``authority-supervisors``, posting to
``/hooks/authority``: Alertmanager cannot put a label into a webhook URL, so the notification
gateway picks the supervisors by the notification's ``groupLabels.authority`` (the route groups
by authority, so a notification is one authority's). The stand-in does the same and logs such
a notification under ``/hooks/authority/<authority>``, the supervisors it would have reached.

    python -m workers.notify.webhook_sink [--host 0.0.0.0] [--port 8080]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("appeals.notify_sink")

# A notification lists every firing SLA alert of its authority and level (each appeal is an
# alert of its own, about 0.9 KB): at 1 MiB, a body with some 1,100 appeals of one body was
# answered 413, and Alertmanager retried it and never delivered it. 64 MiB holds about 70,000.
MAX_BODY_BYTES = 64 << 20
# ``stage`` and ``appeal`` tell apart the SLA alerts of one authority that a notification lists.
SHOWN_LABELS = ("alertname", "authority", "severity", "regime", "team", "slo", "instance",
                "stage", "appeal")


#: The supervisors' receiver of every authority (monitoring/alertmanager/alertmanager.yml).
AUTHORITY_HOOK = "/hooks/authority"
#: What an authority id of the routing rules looks like (``22-minzhkh``); anything else is not
#: put into a log line as a path.
AUTHORITY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def recipient(path: str, payload: dict[str, Any]) -> str:
    """Where a notification goes: the hook's path, or for the supervisors' hook the path of the
    authority its ``groupLabels.authority`` names."""
    if path.split("?", 1)[0].rstrip("/") != AUTHORITY_HOOK:
        return path
    group = payload.get("groupLabels")
    authority = group.get("authority") if isinstance(group, dict) else None
    if isinstance(authority, str) and AUTHORITY_ID.fullmatch(authority):
        return f"{AUTHORITY_HOOK}/{authority}"
    return f"{AUTHORITY_HOOK} (no authority in groupLabels: nobody's supervisors)"


def describe(path: str, payload: Any) -> list[str]:
    """One log line per alert of an Alertmanager webhook payload."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return [f"{path}: not an Alertmanager webhook payload"]
    path = recipient(path, payload)
    lines = []
    for alert in payload["alerts"]:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict):
            labels = {}
        status = alert.get("status", payload.get("status", "?")) if isinstance(alert, dict) else "?"
        shown = " ".join(f"{k}={labels[k]}" for k in SHOWN_LABELS if k in labels)
        lines.append(f"{path} {status} {shown}".rstrip())
    return lines


class _Handler(BaseHTTPRequestHandler):
    server_version = "appeals-notify-sink"

    def do_GET(self) -> None:
        self._reply(200 if self.path == "/healthz" else 404)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._reply(413)
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._reply(400)
            return
        for line in describe(self.path, payload):
            log.info("%s", line)
        self._reply(200)

    def _reply(self, status: int) -> None:
        body = b"ok\n" if status == 200 else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per alert is enough; no access log


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), _Handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.notify.webhook_sink",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(args.host, args.port)
    log.info("notification sink on http://%s:%d/ (logs each alert, delivers nothing)",
             args.host, server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
