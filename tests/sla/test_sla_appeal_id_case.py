"""An authority's event naming the appeal in upper case reaches the appeal (agent._read).

UUIDs and hex ids are case-insensitive (RFC 9562), and systems outside send them upper-case
(SQL Server's ``uniqueidentifier``, .NET's ``Guid.ToString().ToUpper()``). Such an answer was
keyed by that spelling and held as "pending" under a key no routing ever names, for good and
without a trace, while the appeal itself breached (review of the SLA timers).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from streams import topics as t
from tests.sla import sla_support as sla
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import DAY, EXTERNAL, INTERNAL, ROUTED, T0
from workers.sla.lifecycle_routing import PartitionCheck

PARTITIONS = 8
APPEAL = "0b7c7a0e1f7e5a559a0b3d0f"  # 24 hex digits, as workers.intake.core.appeal_id_for
UPPER = APPEAL.upper()


def _runtime() -> Any:
    # The SLA clock reads a month after T0: the answers, three days after it, are in its past
    # (one stamped ahead of it is refused: agent._check_not_ahead).
    return sla.stand_in_runtime(clock=sla.fixed_clock(T0.timestamp() + 30 * DAY),
                                rules=sla.ten_day_rules(), owns=PartitionCheck(PARTITIONS))


def _event(rt: Any, topic: str, value: dict[str, Any] | bytes, key: bytes) -> Any:
    """An event placed as our producers place it: murmur2 of ``key``."""
    return sla.message(topic, value, key=key, partition=rt.owns.partition_of(key))


def _run(rt: Any, *batches: list[Any]) -> RecordingOutbox:
    """Each list of events as one batch, stored as the agent does."""
    return sla.run_batches(rt, *batches)[0]


def _routed() -> dict[str, Any]:
    return sla.routed_record(appeal_id=APPEAL)


def _answer(appeal_id: str = UPPER) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": "ans-1", "appeal_id": appeal_id,
            "event": "answered", "at": (T0 + dt.timedelta(days=3)).isoformat(),
            "authority_id": "22-mintrans"}


def _forwarded(rt: Any, outbox: RecordingOutbox, topic: str) -> list[Any]:
    """What ``outbox`` re-published to ``topic``, as the agent reads it back."""
    return [_event(rt, INTERNAL, value, key) for name, key, value in outbox.records
            if name == topic and key is not None]


def test_an_upper_case_answer_keyed_by_its_own_spelling_answers_the_appeal() -> None:
    rt = _runtime()
    _run(rt, [_event(rt, ROUTED, _routed(), APPEAL.encode())])
    out = _run(rt, [_event(rt, EXTERNAL, _answer(), UPPER.encode())])
    assert out.dead == []
    [(topic, key, value)] = out.records
    assert (topic, key) == (t.SLA_LIFECYCLE, APPEAL.encode())  # re-keyed by the canonical id
    assert orjson.loads(value)["appeal_id"] == APPEAL
    again = _run(rt, _forwarded(rt, out, t.SLA_LIFECYCLE))
    assert again.dead == []
    assert rt.table[APPEAL.encode()]["status"] == "answered"
    assert set(rt.table) == {APPEAL.encode()}  # nothing held under another key


def test_an_upper_case_answer_on_the_appeals_own_partition_is_applied_there() -> None:
    rt = _runtime()
    _run(rt, [_event(rt, ROUTED, _routed(), APPEAL.encode())])
    out = _run(rt, [_event(rt, EXTERNAL, _answer(), APPEAL.encode())])
    assert out.records == []  # neither re-published nor dead-lettered
    assert rt.table[APPEAL.encode()]["status"] == "answered"


def test_an_upper_case_answer_before_the_routing_waits_under_the_appeals_key() -> None:
    rt = _runtime()
    out = _run(rt, [_event(rt, INTERNAL, _answer(), APPEAL.encode())])
    assert out.records == []
    assert [p["appeal_id"] for p in rt.table[APPEAL.encode()]["pending"]] == [APPEAL]
    _run(rt, [_event(rt, ROUTED, _routed(), APPEAL.encode())])
    assert rt.table[APPEAL.encode()]["status"] == "answered"


def test_an_upper_case_triage_decision_reaches_the_triage_agent_canonical() -> None:
    rt = _runtime()
    decision = {"schema_version": 1, "event_id": "tri-1", "appeal_id": UPPER,
                "event": "triaged", "at": T0.isoformat(), "category": "roads"}
    out = _run(rt, [_event(rt, EXTERNAL, decision, UPPER.encode())])
    [(topic, key, value)] = out.records
    assert (topic, key) == (t.TRIAGE_DECISIONS, APPEAL.encode())
    assert orjson.loads(value) == {**decision, "appeal_id": APPEAL}


def test_an_event_already_canonical_is_re_published_as_its_producer_wrote_it() -> None:
    """The producer's own bytes (spacing and all) when nothing had to be rewritten."""
    rt = _runtime()
    raw = b'{"schema_version": 1, "event_id": "e", "appeal_id": "%s", "event": "answered", ' \
          b'"at": "2026-11-05T03:00:00Z"}' % APPEAL.encode()
    out = _run(rt, [_event(rt, EXTERNAL, raw, b"not-the-appeal")])
    assert out.records == [(t.SLA_LIFECYCLE, APPEAL.encode(), raw)]
