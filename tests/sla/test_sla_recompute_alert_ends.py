"""``appeals sla recompute`` sends the end record of an alert its new deadline ends, as an
extension does (``workers.sla.resolution``).

Before, the recompute sent only new alerts: a breach it cured (a policy change moved the
deadline past now) kept firing at Alertmanager until ``APPEALS_ALERT_TTL``, and webhooks never
learnt it was over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from streams import topics as t
from tests.sla.recording_outbox import RecordingOutbox
from tests.sla.sla_support import DAY, INTERNAL, fixed_clock, stand_in_runtime, ten_day_rules
from tests.sla.test_sla_recompute_bad_state import _event
from workers.sla import agent as sla_agent
from workers.sla import recompute as rc
from workers.sla.engine import SlaRules, apply_tick, new_state

T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()
NOW = T0 + 8 * DAY  # past the new warning (7.5 days), before the new deadline
SHORT = SlaRules(due=lambda regime, start, *_: start + 5 * DAY,
                 extend=lambda regime, due, days, *_: due + days * DAY)
LONG = ten_day_rules()  # the policy got longer


def _breached(appeal_id: str) -> dict[str, Any]:
    routed = {"appeal_id": appeal_id, "regime": "fz59", "region": "22",
              "authority_id": "22-mintrans", "category": "roads", "urgent": False}
    state = new_state(routed, 0, T0, "Asia/Barnaul", SHORT)[0]
    for kind in ("warning", "breach"):
        assert apply_tick(state, kind, 0, SHORT).alerts
    return state


def _recompute(rt: Any, batch: sla_agent.Batch) -> RecordingOutbox:
    outbox = RecordingOutbox()
    key, value = rc.control_message("req-1", 0)

    async def main() -> None:
        await sla_agent._handle(rt, outbox, _event(INTERNAL, key, value), batch)
        await outbox.flush()

    asyncio.run(main())
    return outbox


def test_a_breach_the_recompute_cures_is_ended() -> None:
    appeal = "c" * 24
    rt = stand_in_runtime(clock=fixed_clock(NOW), rules=LONG,
                          table={appeal.encode(): _breached(appeal)},
                          recompute_request="req-1")  # the files "already reloaded"
    batch = sla_agent.Batch(now=NOW)
    outbox = _recompute(rt, batch)
    assert outbox.dead == []
    assert batch.changed[appeal.encode()]["due"] == T0 + 10 * DAY  # past now: cured
    records = outbox.of(t.SLA_ALERTS)
    assert [(r["alert_id"], r["level"], r["resolved_at"] is not None) for r in records] == [
        (f"{appeal}:breach:0", "breach", True)]
    # The warning's moment (75 % of ten days) has passed under the new deadline too: it is
    # carried into the new cycle, not ended, and not sent again.


def test_a_breach_taken_up_in_the_same_batch_is_ended_from_the_batch_state() -> None:
    """An earlier event of the batch changed the state: the recompute started from that."""
    appeal = "d" * 24
    key = appeal.encode()
    stored = new_state({"appeal_id": appeal, "regime": "fz59", "region": "22",
                        "authority_id": "22-mintrans", "category": "roads",
                        "urgent": False}, 0, T0, "Asia/Barnaul", SHORT)[0]
    rt = stand_in_runtime(clock=fixed_clock(NOW), rules=LONG, table={key: stored},
                          recompute_request="req-1")
    batch = sla_agent.Batch(now=NOW)
    batch.changed[key] = _breached(appeal)  # the breach tick of this batch
    outbox = _recompute(rt, batch)
    assert [r["alert_id"] for r in outbox.of(t.SLA_ALERTS) if r["resolved_at"]] == [
        f"{appeal}:breach:0"]
