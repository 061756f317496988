"""A native incident marked high importance is routed urgent, on the real broker and a worker.

The SLA agent gives an urgent incident the policy's ``urgent_answer`` (4 working hours instead
of 8, DESIGN §2) and reads only the routed record's ``urgent`` flag for it; the classifier reads
only the text. So the importance the ЦУР system sent must survive intake, the direct route and
the triage queue (pending copy, then a human decision) to that flag. Each text is sent twice,
``high`` and ``normal``: the ``normal`` twin shows what the classifier alone says (not urgent),
so an ``urgent: true`` on the ``high`` one can only come from its importance.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker
from workers.intake.core import appeal_id_for

pytestmark = pytest.mark.integration

THRESHOLD = 0.45
# Shipped model: ~0.84 landscaping, not urgent (routed directly); ~0.19, not urgent (triage).
SURE = "На улице Ленина в Барнауле не убирают мусор во дворе уже неделю"
UNSURE = "Прошу разобраться с ситуацией"


def _incident(incident_id: str, text: str, importance: str) -> tuple[str, None, bytes]:
    """The ЦУР system's native shape, on the incident intake topic."""
    published = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return (t.intake_topic("incident"), None, orjson.dumps({
        "channel": "incident", "incident_id": incident_id, "published_at": published,
        "region": "22", "municipality": "г. Барнаул", "text": text, "importance": importance,
        "author": {"handle": "@citizen"}}))


def _decision(appeal_id: str, **fields: object) -> tuple[str, bytes, bytes]:
    doc = {"schema_version": 1, "event_id": f"{appeal_id}:1", "appeal_id": appeal_id,
           "event": "triaged", "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "category": "landscaping", **fields}
    return (t.LIFECYCLE, appeal_id.encode(), orjson.dumps(doc))


def _urgent(records: list[Any]) -> dict[str, bool]:
    return {d["appeal_id"]: d["urgent"] for d in (orjson.loads(r.value) for r in records)}


def test_high_importance_is_routed_urgent(broker, redis_server, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=THRESHOLD)
    t.ensure_topics(settings)
    texts = {"imp-sure-high": (SURE, "high"), "imp-sure-normal": (SURE, "normal"),
             "imp-triage-high": (UNSURE, "high"), "imp-triage-normal": (UNSURE, "normal"),
             "imp-triage-high-overruled": (UNSURE, "high")}
    ids = {ext: appeal_id_for("incident", ext) for ext in texts}

    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, [_incident(ext, text, imp) for ext, (text, imp) in texts.items()])
        triage = _urgent(read_topic(settings, t.TRIAGE, until=3))
        assert triage == {ids[e]: texts[e][1] == "high" for e in texts
                          if e.startswith("imp-triage")}, \
            "the unsure ones wait for triage; the desk sees the urgency they would be routed with"
        routed = _urgent(read_topic(settings, t.ROUTED, until=2))
        assert routed == {ids["imp-sure-high"]: True, ids["imp-sure-normal"]: False}

        # Humans decide the category; one also says explicitly "not urgent", which wins.
        produce(settings, [_decision(ids["imp-triage-high"], urgent=None),
                           _decision(ids["imp-triage-normal"]),
                           _decision(ids["imp-triage-high-overruled"], urgent=False)])
        routed = _urgent(read_topic(settings, t.ROUTED, until=5))
        assert routed == {ids["imp-sure-high"]: True, ids["imp-sure-normal"]: False,
                          ids["imp-triage-high"]: True, ids["imp-triage-normal"]: False,
                          ids["imp-triage-high-overruled"]: False}
        assert "Traceback" not in worker.log_text()
