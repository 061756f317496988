"""A worker at DEBUG keeps message bodies out of its log (real broker, worker subprocess).

Faust logs every table changelog write at DEBUG with its value, and the triage table holds a
waiting appeal's text and address; aiokafka logs every produced message the same way. The worker
caps those loggers (``streams.payload_logging``) after Faust has configured logging.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker

pytestmark = pytest.mark.integration

NAME = "Проверкин Пётр Ильич"
PHONE = "+79135550112"
ADDRESS = "г. Барнаул, ул. Проверочная, д. 77, кв. 5"


def _pending(appeal_id: str) -> bytes:
    return orjson.dumps({
        "appeal_id": appeal_id, "regime": "pos", "region": "22",
        "registered_at": "2026-11-24T02:00:00+00:00", "channel": "web", "subcategory": None,
        "municipality": "Барнаул", "text": f"Яма во дворе. Связаться: {NAME}, {PHONE}",
        "address": ADDRESS, "complaint_about": None, "urgent": False, "confidence": 0.3,
        "classifier_version": "m"})


def _decoded(log: str) -> str:
    """Byte-string literals in the log (``b'\\xd0...'``) decoded, so Cyrillic is searchable."""
    def dec(m: re.Match[str]) -> str:
        try:
            return str(ast.literal_eval(m.group(0)).decode("utf-8", "replace"))
        except (ValueError, SyntaxError):
            return m.group(0)
    return re.sub(r"b'(?:[^'\\]|\\.)*'", dec, log)


def test_debug_worker_log_has_no_message_bodies(broker, redis_server, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, log_level="debug")
    t.ensure_topics(settings)
    appeal_id = "privacy-debug-1"
    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, [(t.TRIAGE_PENDING, appeal_id.encode(), _pending(appeal_id))])
        # The triage table holds it: its changelog record is what Faust would log at DEBUG.
        changelog = read_topic(settings.replace(topic_prefix=""),
                               f"{settings.app_id}-triage-pending-changelog", until=1)
        assert [r.key for r in changelog] == [appeal_id.encode()]
        assert PHONE.encode() in changelog[0].value  # the body does carry personal data
        worker.stop()
        log = worker.log_text()
    assert "[DEBUG]" in log, "the worker did log at DEBUG"
    text = _decoded(log)
    leaks = [v for v in (NAME, PHONE, ADDRESS, "Проверочная") if v in text]
    assert leaks == [], [line[:300] for line in text.splitlines()
                          if PHONE in line or "Проверочная" in line]
