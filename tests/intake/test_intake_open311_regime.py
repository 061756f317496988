"""An Open311 request is a civic app's report, not the authority's 59-FZ site form.

DESIGN §2: since 30 March 2025 only an authenticated (ESIA) electronic channel makes a 59-FZ
appeal; §1 lists Open311 apps apart from the authority's web forms. The Open311 route publishes
on the web channel, whose regime is ``APPEALS_WEB_REGIME`` (``fz59``), so every civic-app report
was registered as a 59-FZ appeal (30 days, 59-FZ stages) with no way to treat it apart. Now the
route marks its records (``extra.source`` = ``open311``) and the intake agent registers them
under ``APPEALS_OPEN311_REGIME`` (``pos`` unless the deployment's apps authenticate via ESIA).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.settings import ConfigError, Settings
from tests.intake.fakes import AgentHarness, auth, gateway

FORM = {"api_key": "tok-a", "service_code": "roads", "lat": "53.35", "long": "83.78",
        "description": "Яма у остановки", "jurisdiction_id": "22"}
SITE_FORM = {"schema_version": 1, "channel": "web", "external_id": "site-1",
             "submitted_at": "2026-03-02T10:00:00+07:00", "region": "22",
             "text": "Яма у остановки"}


def _published(settings: Settings, *, site_extra: dict[str, Any] | None = None
               ) -> tuple[list[bytes], list[tuple[int, Any]]]:
    """What the gateway publishes for an Open311 request and a site form's /v1 appeal."""

    async def go() -> tuple[list[bytes], list[tuple[int, Any]]]:
        answers = []
        async with gateway(settings) as (c, producer, _redis):
            r = await c.post("/open311/v2/requests.json", data=FORM,
                             headers={"Idempotency-Key": "o-1"})  # (fake Redis: keyed)
            answers.append((r.status, await r.json()))
            item = dict(SITE_FORM) if site_extra is None else {**SITE_FORM, "extra": site_extra}
            r = await c.post("/v1/appeals", json=item, headers=auth())
            answers.append((r.status, await r.json()))
            return [value for _topic, _key, value in producer.sent], answers

    return asyncio.run(go())


def _regimes(settings: Settings, values: list[bytes]) -> list[str]:
    """The regimes the intake agent registers the published web records under."""
    h = AgentHarness(settings)
    h.run(h.batch("web", values))
    assert h.crashes == [] and h.deadletters() == []
    return [orjson.loads(v)["regime"] for _base, _key, v in h.registered()]


def test_an_open311_request_is_not_a_59fz_appeal_by_default() -> None:
    settings = Settings()
    values, answers = _published(settings)
    assert [status for status, _ in answers] == [201, 202]
    assert orjson.loads(values[0])["extra"]["source"] == "open311"
    # the civic app's request pos, the authority's own form still 59-FZ
    assert _regimes(settings, values) == ["pos", "fz59"]


def test_open311_requests_are_59fz_where_the_apps_authenticate_through_esia() -> None:
    settings = Settings(open311_regime="fz59", web_regime="pos")
    values, _answers = _published(settings)
    assert _regimes(settings, values) == ["fz59", "pos"]


def test_v1_appeals_refuses_a_web_appeal_claiming_to_come_from_open311() -> None:
    """The marker decides the regime: a site's form must not pass for a civic app's request."""
    values, answers = _published(Settings(), site_extra={"source": "open311"})
    assert len(values) == 1  # only the Open311 request was published
    status, body = answers[1]
    assert status == 400
    assert [(e["field"], e["reason"]) for e in body["errors"]] == [
        ("extra.source", "invalid_value")]


@pytest.mark.parametrize("value", ["incident", "hotline", "59fz", ""])
def test_open311_regime_is_checked_at_start_up(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load({"APPEALS_OPEN311_REGIME": value})
    message = str(info.value)
    assert message.startswith("APPEALS_OPEN311_REGIME must be pos") and "\n" not in message
    assert Settings.load({"APPEALS_OPEN311_REGIME": "fz59"}).open311_regime == "fz59"


def test_an_open311_request_is_registered_at_its_submission_as_a_pos_item() -> None:
    """Its registration follows its own regime's rule (a platform item: when submitted), not
    the site form's 59-FZ one (receipt + 3 days when intake reads it later): the regime the
    registration moment was computed under ignored the Open311 marker."""
    settings = Settings()
    values, _answers = _published(settings)
    submitted = datetime.fromisoformat(orjson.loads(values[0])["submitted_at"])
    h = AgentHarness(settings, now=submitted + timedelta(days=5))  # read five days later
    h.run(h.batch("web", values[:1]))
    assert h.crashes == [] and h.deadletters() == []
    [(_base, _key, value)] = h.registered()
    record = orjson.loads(value)
    assert record["regime"] == "pos"
    assert datetime.fromisoformat(record["registered_at"]) == submitted
