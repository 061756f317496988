"""The notify stage's dead-letter series, as ``AppealsSupervisorAlertsLost`` reads them.

The rule sees a reason's first dead letter by ``increase`` when its series was scraped at 0
before, which the Notifier arranges by creating every reason it can give at start
(:data:`workers.notify.agent.DEAD_LETTER_REASONS`); a series that first appears above 0 is
caught by its creation time (``appeals_deadletter_created``). Both are checked here: the
list once held ``schema_invalid``, which no notify path gives, and none of the schema codes
(``missing_field``, ``wrong_type``…) that malformed alerts and retry records do get.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics
from schemas.records import SlaAlert
from streams import topics as t
from streams.settings import Settings
from workers.notify.agent import DEAD_LETTER_REASONS, STAGE, Notifier
from workers.notify.retry import Parked


class _Outbox:
    """Records the reason of each dead letter and counts it as the real outbox does."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def dead_letter(self, event: Any, *, stage: str, reason: str,
                          detail: str | None = None) -> None:
        metrics.DEADLETTER.labels(stage, reason).inc()
        self.reasons.append(reason)

    async def send(self, base: str, key: bytes | None, value: bytes) -> None:
        raise AssertionError("nothing here is delivered or parked")

    async def flush(self) -> None:
        pass


def _event(value: bytes, offset: int, topic: str) -> Any:
    msg = SimpleNamespace(value=value, key=b"k", topic=topic, partition=0, offset=offset,
                          timestamp=time.time())
    return SimpleNamespace(message=msg)


def _notifier() -> Notifier:
    settings = Settings.load({}).replace(app_id=f"notify-series-{uuid.uuid4().hex[:8]}")
    # No delivery (log only) and no Redis: every event below fails before either is reached.
    return Notifier(cast(Any, SimpleNamespace(settings=settings, redis=None)), None)


def _alert() -> dict[str, Any]:
    return SlaAlert(
        alert_id="appeal-x:breach:0", appeal_id="appeal-x", level="breach", regime="pos",
        region="22", authority_id="22-a", notify_authority_id="22-a",
        due_at="2026-12-10T16:59:59+00:00", fired_at="2026-12-10T17:00:00+00:00",
        severity="critical", category="housing_utilities", urgent=False).to_dict()


def _changed(**fields: Any) -> bytes:
    alert = _alert()
    for name, value in fields.items():
        if value is None:
            del alert[name]
        else:
            alert[name] = value
    return orjson.dumps(alert)


def _retry_record(alert: Any, **fields: Any) -> bytes:
    record = orjson.loads(Parked(alert=SlaAlert.from_dict(_alert()), attempt=1,
                                 first_failed_at=1.0, not_before=1.0,
                                 channels=["webhook"]).to_json())
    record["alert"] = alert
    record.update(fields)
    return orjson.dumps(record)


ALERTS = {
    "empty": b"",
    "not_json": b"{not json",
    "not_object": b"[1]",
    "unsupported_schema_version": _changed(schema_version=2),
    "missing_field": _changed(alert_id=None),
    "wrong_type": _changed(alert_id=5),
    "invalid_value": _changed(level="panic"),
    "bad_timestamp": _changed(fired_at="1999-12-31T23:00:00+00:00"),
}
RETRY_RECORDS = {
    "bad_retry_record": _retry_record(_alert(), kind="other"),
    "missing_field": _retry_record({k: v for k, v in _alert().items() if k != "due_at"}),
    "wrong_type": _retry_record(_alert() | {"region": 22}),
    "not_json": b"\x00",
}


def _exported(name: str) -> dict[str, float]:
    """Samples of ``name`` for the notify stage in a scrape of the workers' registry."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.REGISTRY).decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("stage") == STAGE:
                out[sample.labels["reason"]] = sample.value
    return out


def test_every_reason_a_bad_alert_or_retry_record_gets_is_created_at_start() -> None:
    notifier = _notifier()
    outbox = _Outbox()

    async def run() -> None:
        await notifier.alerts([_event(v, i, t.SLA_ALERTS) for i, v in
                               enumerate(ALERTS.values())], cast(Any, outbox))
        await notifier.retries([_event(v, i, t.NOTIFY_RETRY) for i, v in
                                enumerate(RETRY_RECORDS.values())], cast(Any, outbox))

    asyncio.run(run())
    assert outbox.reasons == [*ALERTS, *RETRY_RECORDS]  # each case is the code it stands for
    missing = set(outbox.reasons) - set(DEAD_LETTER_REASONS)
    assert not missing, f"notify dead-letter reasons not created at start: {sorted(missing)}"


@pytest.mark.parametrize("reason", DEAD_LETTER_REASONS)
def test_each_listed_reason_is_exported_with_its_creation_time(reason: str) -> None:
    """``AppealsSupervisorAlertsLost`` reads ``appeals_deadletter_created``: it must be in a
    scrape (prometheus-client writes it unless PROMETHEUS_DISABLE_CREATED_SERIES is set)."""
    _notifier()
    assert reason in _exported("appeals_deadletter_total")
    created = _exported("appeals_deadletter_created")
    assert reason in created, "the rule's creation-time branch would never fire"
    assert 0 < created[reason] <= time.time()  # Unix seconds, as the rule compares to time()
