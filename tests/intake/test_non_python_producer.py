"""A real non-Python client proves the JSON Schema contract of the intake topics.

``tests/intake/nonpython/produce.sh`` publishes canonical intake events from a JSON Lines file
with kcat (librdkafka's CLI; jq routes each line to its channel's topic and re-serialises it),
and a real worker on the real broker must register every one of them, once, under the appeal id
the Python side computes from (channel, external id).

kcat and jq are Debian packages (``tests/system-deps.sh``); librdkafka comes from the
confluent-kafka wheel, since Debian's 2.0.2 cannot talk to Tansu (see the script's header).
Missing tools fail the test unless ``APPEALS_SKIP_SYSTEM_TOOLS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams import topics as t
from streams.testing import isolated_settings, read_topic, running_worker
from workers.intake.core import appeal_id_for

pytestmark = pytest.mark.integration
#: APPEALS_INTAKE_MAX_AGE of these tests: the longest allowed (3660 days).
SAMPLES_MAX_AGE = 3660 * 86400.0

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "nonpython" / "produce.sh"
CANONICAL = HERE.parent / "data" / "intake" / "canonical.jsonl"


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    if os.environ.get("APPEALS_SKIP_SYSTEM_TOOLS") == "1":
        pytest.skip(f"{', '.join(missing)} missing and APPEALS_SKIP_SYSTEM_TOOLS=1")
    pytest.fail(
        f"{', '.join(missing)} missing: run tests/system-deps.sh as root (Debian packages "
        f"{' '.join(missing)}), or set APPEALS_SKIP_SYSTEM_TOOLS=1 to skip this test.",
        pytrace=False,
    )


def test_kcat_events_from_a_file_are_registered(broker, redis_server, tmp_path: Path) -> None:
    _require("kcat", "jq")
    # The sample payloads are dated (January 2025) and the worker reads them on the wall
    # clock: they must not age out of APPEALS_INTAKE_MAX_AGE (a year by default).
    settings = isolated_settings(broker.url, redis_server.url,
                                 intake_max_age=SAMPLES_MAX_AGE)
    t.ensure_topics(settings)
    sources = [orjson.loads(line) for line in CANONICAL.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    expected = {appeal_id_for(s["channel"], s["external_id"]): s for s in sources}
    assert len(expected) == len(sources) >= 6
    assert len({s["channel"] for s in sources}) >= 6, "every channel's topic is exercised"

    with running_worker(settings, tmp_path / "worker.log"):
        proc = subprocess.run(
            ["bash", str(SCRIPT), settings.kafka_bootstrap, settings.topic_prefix,
             str(CANONICAL)],
            env={**os.environ, "PYTHON": sys.executable},
            capture_output=True, text=True, timeout=180, check=False,
        )
        assert proc.returncode == 0, f"produce.sh failed:\n{proc.stdout}\n{proc.stderr}"
        assert f"sent {len(sources)} event(s)" in proc.stderr
        registered = read_topic(settings, t.REGISTERED, until=len(expected), timeout=60)
        dead = read_topic(settings, t.DEADLETTER, timeout=5, idle=1)

    docs = [orjson.loads(r.value) for r in registered]
    reasons = [orjson.loads(r.value).get("reason") for r in dead]
    assert not reasons, f"kcat's events were dead-lettered: {reasons}"
    ids = Counter(d["appeal_id"] for d in docs)
    assert set(ids) == set(expected), "every event registered under the Python-computed id"
    assert max(ids.values()) == 1, "each event registered once"
    for doc in docs:
        source = expected[doc["appeal_id"]]
        assert doc["channel"] == source["channel"]
        assert doc["external_id"] == source["external_id"]
        assert doc["region"] == source["region"]
        assert doc["text"].strip() and doc["registered_at"]
    # The worker keys registered records by appeal id, whatever key the client chose.
    assert {r.key.decode() for r in registered} == set(expected)
