"""Hostile or odd intake input: rejected with a reason, never a crash, never a silent drop.

Fast tests (no Kafka, no Redis): the real agent body runs over in-memory batches
(:mod:`tests.intake.fakes`) and the real gateway app over an in-memory producer and Redis.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from streams import topics as t
from streams.settings import Settings
from tests.intake.fakes import HARNESS_NOW, AgentHarness, auth, gateway
from workers.intake import cli, core
from workers.intake.gateway import scoped_external_id
from workers.intake.producer import IntakeProducer

CANONICAL: dict[str, Any] = {
    "schema_version": 1, "channel": "pos", "external_id": "x-1",
    "submitted_at": "2025-01-14T10:00:00+03:00", "region": "22", "text": "Нет отопления",
}


def canonical(**changes: Any) -> dict[str, Any]:
    return {**CANONICAL, **changes}


def deep(levels: int) -> bytes:
    """A canonical appeal with an unknown field nested ``levels`` arrays deep."""
    return orjson.dumps(canonical(external_id=f"deep-{levels}"))[:-1] + (
        b',"foo":' + b"[" * levels + b"]" * levels + b"}")


# --------------------------------------------------------------------------- D1: nesting

@pytest.mark.parametrize("levels", [40, 260, 1000])
def test_too_deep_payload_is_rejected_at_decode(levels: int) -> None:
    with pytest.raises(InvalidEvent) as info:
        core.decode_intake(deep(levels), channel_hint="pos")
    assert info.value.reason == "too_deep"


def test_nesting_within_the_limit_is_accepted() -> None:
    appeal = core.decode_intake(deep(core.MAX_NESTING - 2), channel_hint="pos")
    appeal.to_json()


def test_deep_message_is_dead_lettered_and_the_batch_goes_on() -> None:
    h = AgentHarness()
    good = orjson.dumps(canonical(external_id="ok-1"))
    good2 = orjson.dumps(canonical(external_id="ok-2"))
    h.run(h.batch("pos", [good, deep(260), good2]))
    assert h.crashes == []
    assert [d[1] for d in h.deadletters()] == ["too_deep"]
    assert len(h.registered()) == 2


def test_a_record_that_cannot_be_serialised_is_dead_lettered_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: were the decode-time check ever bypassed, only that record fails."""
    monkeypatch.setattr(core, "check_nesting", lambda data, limit=0: None)
    h = AgentHarness()
    good = orjson.dumps(canonical(external_id="ok-1"))
    h.run(h.batch("pos", [good, deep(260), orjson.dumps(canonical(external_id="ok-2"))]))
    assert h.crashes == []
    assert [d[1] for d in h.deadletters()] == ["unserialisable"]
    assert len(h.registered()) == 2
    registered_ids = {orjson.loads(v)["appeal_id"] for _t, _k, v in h.registered()}
    downstream = {orjson.loads(v)["appeal_id"] for base, _k, v in h.sent
                  if base not in (t.REGISTERED, t.DEADLETTER)}
    assert downstream == registered_ids  # the dead-lettered appeal is not routed either


def test_produce_command_rejects_a_deep_line_and_goes_on() -> None:
    class Producer:
        prepare = IntakeProducer.prepare
        _encoded = IntakeProducer._encoded
        max_text_length = 20_000
        max_message_bytes = 1_000_000
        max_age = core.DEFAULT_MAX_AGE
        now = staticmethod(lambda: HARNESS_NOW)

        def send(self, data: Any, channel: str | None = None) -> None:
            self.prepare(data, channel).to_json()

    good = orjson.dumps(canonical())
    sent, rejected = cli.produce([good, deep(260), good], Producer())
    assert sent == 2
    assert rejected == {"too_deep": [2]}


def test_gateway_answers_400_with_the_reason_for_deep_json() -> None:
    async def go() -> tuple[int, Any, int]:
        async with gateway() as (c, producer, _r):
            r = await c.post("/v1/appeals", data=deep(260),
                             headers={**auth(), "Content-Type": "application/json"})
            return r.status, await r.json(), len(producer.sent)

    status, body, sent = asyncio.run(go())
    assert status == 400
    assert [e["reason"] for e in body["errors"]] == ["too_deep"]
    assert sent == 0


# --------------------------------------------------------------------------- D2: idem keys

def _keyless(text: str, phone: str) -> dict[str, Any]:
    return {"schema_version": 1, "channel": "web", "submitted_at": "2025-01-14T10:00:00+03:00",
            "region": "22", "text": text, "author": {"phone": phone}}


def test_same_idempotency_key_from_two_clients_names_two_appeals() -> None:
    async def go() -> tuple[list[Any], list[tuple[str, bytes, bytes]]]:
        async with gateway() as (c, producer, _r):
            out = []
            for client, text in (("client-a", "Яма на дороге у дома 5"),
                                 ("client-b", "Нет отопления в школе 12"),
                                 ("client-a", "Яма на дороге у дома 5")):  # a retry by A
                r = await c.post("/v1/appeals", json=_keyless(text, "+79130000001"),
                                 headers={**auth(client), "Idempotency-Key": "1"})
                out.append((r.status, await r.json()))
            return out, producer.sent

    results, sent = asyncio.run(go())
    (sa, a), (sb, b), (sr, retry) = results
    assert (sa, sb, sr) == (202, 202, 202)
    assert a["status"] == b["status"] == "accepted"
    assert a["appeal_id"] != b["appeal_id"]
    assert retry == {**a, "status": "duplicate", "results": [
        {"appeal_id": a["appeal_id"], "status": "duplicate"}]}
    assert len(sent) == 2
    ids = sorted(orjson.loads(v)["external_id"] for _t, _k, v in sent)
    assert ids == [scoped_external_id("client-a", "1"), scoped_external_id("client-b", "1")]

    h = AgentHarness()
    h.run(h.batch("web", [v for _t, _k, v in sent]))
    assert len(h.registered()) == 2 and not h.deadletters()


def test_open311_idempotency_key_is_scoped_to_the_client() -> None:
    async def go() -> list[tuple[int, Any]]:
        async with gateway() as (c, _p, _r):
            out = []
            for client in ("client-a", "client-b"):
                r = await c.post("/open311/v2/requests.json", json={
                    "api_key": f"tok-{client[-1]}", "service_code": "roads",
                    "address_string": "ул. Мира, 1", "description": f"Яма ({client})",
                    "jurisdiction_id": "22"}, headers={"Idempotency-Key": "k-7"})
                out.append((r.status, await r.json()))
            return out

    (sa, a), (sb, b) = asyncio.run(go())
    assert (sa, sb) == (201, 201)
    assert a[0]["service_request_id"] != b[0]["service_request_id"]


def test_a_key_made_id_is_never_a_sources_own_id() -> None:
    """Client ``client-a`` sent one web appeal with Idempotency-Key ``1001`` and no id, and
    another form with ``submission_id`` ``1001`` and no ``site``: both were ``client-a:1001``,
    one appeal id, both answered 202, and intake dropped the second citizen's appeal as a
    duplicate. A resend with the key still names the first appeal."""
    keyed = _keyless("Не вывозят мусор во дворе по ул. Ленина, 5", "+79130000001")
    form = {"channel": "web", "submission_id": "1001", "submitted": "2025-01-14 11:00:00",
            "region": "22", "fields": {"fio": "Петров Олег",
                                       "message": "Яма на дороге у остановки Кирова"}}

    async def go() -> tuple[list[tuple[int, Any]], list[tuple[str, bytes, bytes]]]:
        async with gateway() as (c, producer, _r):
            out = []
            for body, headers in ((keyed, {"Idempotency-Key": "1001"}), (form, {}),
                                  (keyed, {"Idempotency-Key": "1001"})):  # a resend
                r = await c.post("/v1/appeals", json=body, headers={**auth(), **headers})
                out.append((r.status, await r.json()))
            return out, producer.sent

    results, sent = asyncio.run(go())
    (s1, first), (s2, native), (s3, resend) = results
    assert (s1, s2, s3) == (202, 202, 202)
    assert first["appeal_id"] != native["appeal_id"]
    # client-a owns no web ids: its form's id is scoped by it (client_external_id)
    assert native["appeal_id"] == core.appeal_id_for("web", "client-a:ext:1001")
    assert (resend["appeal_id"], resend["status"]) == (first["appeal_id"], "duplicate")
    assert len(sent) == 2
    h = AgentHarness()
    h.run(h.batch("web", [v for _t, _k, v in sent]))
    assert not h.deadletters()
    assert sorted(orjson.loads(v)["text"][:3] for _b, _k, v in h.registered()) == ["Не ", "Яма"]


def test_key_made_ids_differ_from_scoped_native_ids_and_each_other() -> None:
    """A hotline client named by its region code (``22``) with key ``000731`` was
    ``22:000731``, the id of region 22's native call ``000731``. Keys may hold ``:``."""
    call = {"channel": "hotline", "call_id": "000731", "call_started": "2025-01-14 09:03:12",
            "region": "22", "summary": "Нет воды в доме"}
    native = core.intake_from_dict(call)
    assert native.external_id == "22:000731"
    keyed = scoped_external_id("22", "000731")
    assert keyed != native.external_id and keyed.startswith("22:key:sha256:")
    assert keyed == scoped_external_id("22", "000731")  # a resend names the same appeal
    assert len({scoped_external_id("22", "000731"), scoped_external_id("22", "000731:"),
                scoped_external_id("22", "key:000731"), scoped_external_id("23", "000731")}) == 4
    long_id = scoped_external_id("c" * 150, "k" * 180)
    assert len(long_id) <= 200
    # the adapter and normalisation leave the id as made: the gateway's and the agent's agree
    keyless = {k: v for k, v in call.items() if k != "call_id"}
    assert core.intake_from_dict({**keyless, "external_id": keyed}).external_id == keyed


# --------------------------------------------------------------------------- D3: NFC growth

def test_limits_hold_for_the_normalised_text() -> None:
    """U+0958 is 2 code points in NFC: 600 of them are 1,200 after normalisation (max 1,000)."""
    with pytest.raises(InvalidEvent) as info:
        core.intake_from_dict(canonical(subject="\u0958" * 600))
    assert info.value.reason == "too_long"
    assert "normalisation" in info.value.detail
    ok = core.intake_from_dict(canonical(subject="\u0958" * 500))
    assert ok.subject is not None and len(ok.subject) == 1000


def test_gateway_and_agent_agree_on_nfc_growth() -> None:
    async def go(subject: str) -> tuple[int, Any, list[tuple[str, bytes, bytes]]]:
        async with gateway() as (c, producer, _r):
            r = await c.post("/v1/appeals", json=canonical(subject=subject), headers=auth())
            return r.status, await r.json(), producer.sent

    status, body, sent = asyncio.run(go("\u0958" * 600))
    assert status == 400 and body["errors"][0]["field"] == "subject"
    assert sent == []
    status, _body, sent = asyncio.run(go("\u0958" * 500))
    assert status == 202
    h = AgentHarness()
    h.run(h.batch("pos", [sent[0][2]]))
    assert len(h.registered()) == 1 and not h.deadletters()


# --------------------------------------------------------------------------- D4: numeric ids

def _native(number: str) -> bytes:
    head = '{"channel":"pos","created":"2025-01-14T10:00:00+03:00","region_code":"22",'
    return (head + f'"id":{number},"text":"Обращение {number}"}}').encode()


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "12.5",
                                    "1e3", "7.0"])
def test_numeric_id_that_is_not_an_exact_integer_is_rejected(number: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        core.decode_intake(_native(number), channel_hint="pos")
    assert info.value.reason == "invalid_value"


def test_large_integer_ids_stay_exact_and_distinct() -> None:
    a = core.decode_intake(_native("18446744073709551615"), channel_hint="pos")
    b = core.decode_intake(_native("18446744073709551614"), channel_hint="pos")
    assert (a.external_id, b.external_id) == ("18446744073709551615", "18446744073709551614")


def test_ids_above_64_bits_are_dead_lettered_not_deduplicated() -> None:
    h = AgentHarness()
    h.run(h.batch("pos", [_native("18446744073709551616"), _native("18446744073709551617")]))
    assert [d[1] for d in h.deadletters()] == ["invalid_value", "invalid_value"]
    assert h.registered() == []


# --------------------------------------------------------------------------- D5: regions

@pytest.mark.parametrize("region", ["00", "88", "\u0662\u0662", "\uff12\uff12"])
def test_canonical_unknown_region_is_rejected_like_native(region: str) -> None:
    native = {"channel": "pos", "id": "r-1", "created": "2025-01-14T10:00:00+03:00",
              "region_code": region, "text": "Нет отопления"}
    for payload in (native, canonical(region=region)):
        with pytest.raises(InvalidEvent) as info:
            core.intake_from_dict(payload)
        assert info.value.reason == "unknown_region"


def test_canonical_known_regions_are_accepted() -> None:
    assert core.intake_from_dict(canonical(region="22")).region == "22"
    assert core.intake_from_dict(canonical(region="02")).region == "02"


# --------------------------------------------------------------------------- D6: extra

@pytest.mark.parametrize("extra", ["KEEP ME", None, [1], 3])
def test_wrong_typed_extra_is_rejected_with_or_without_unknown_fields(extra: Any) -> None:
    for payload in (canonical(extra=extra), canonical(extra=extra, source_flag=1)):
        with pytest.raises(InvalidEvent) as info:
            core.intake_from_dict(payload)
        assert info.value.reason == "wrong_type"


def test_unknown_field_clashing_with_extra_is_rejected_not_overwritten() -> None:
    with pytest.raises(InvalidEvent) as info:
        core.intake_from_dict(canonical(extra={"foo": "orig"}, foo="top"))
    assert info.value.reason == "extra_conflict"
    assert "foo" in info.value.detail


def test_unknown_fields_join_extra() -> None:
    rec = core.intake_from_dict(canonical(extra={"a": 1}, b=2))
    assert rec.extra == {"a": 1, "b": 2}
    again = core.decode_intake(rec.to_json(), channel_hint="pos")
    assert again == rec


def test_gateway_names_the_extra_conflict() -> None:
    async def go() -> tuple[int, Any]:
        async with gateway() as (c, _p, _r):
            r = await c.post("/v1/appeals", json=canonical(extra={"foo": 1}, foo=2),
                             headers=auth())
            return r.status, await r.json()

    status, body = asyncio.run(go())
    assert status == 400
    assert body["errors"][0]["reason"] == "extra_conflict"
    assert body["errors"][0]["field"] == "extra"


# --------------------------------------------------------------------------- the age limit

def _aged(external_id: str, days: float) -> dict[str, Any]:
    submitted = HARNESS_NOW - timedelta(days=days)
    return canonical(external_id=external_id, submitted_at=submitted.isoformat())


@pytest.mark.parametrize(("days", "verdict"), [(364.9, "accepted"), (365.1, "invalid_value"),
                                                (400, "invalid_value")])
def test_gateway_and_agent_agree_on_the_max_age(days: float, verdict: str) -> None:
    """The gateway answered 202 "accepted" for an appeal submitted more than
    APPEALS_INTAKE_MAX_AGE (a year) before, which the intake agent then dead-lettered: the
    client was told it was in. Both judge it now, on one clock, by one rule."""
    body = _aged(f"aged-{days}", days)

    async def go() -> tuple[int, Any, list[tuple[str, bytes, bytes]]]:
        async with gateway(now=HARNESS_NOW) as (c, producer, _r):
            r = await c.post("/v1/appeals", json=body, headers=auth())
            return r.status, await r.json(), producer.sent

    status, answer, sent = asyncio.run(go())
    h = AgentHarness(now=HARNESS_NOW)
    h.run(h.batch("pos", [orjson.dumps(body)]))
    if verdict == "accepted":
        assert status == 202 and len(sent) == 1
        assert len(h.registered()) == 1 and not h.deadletters()
    else:
        assert status == 400 and sent == []
        [error] = answer["errors"]
        assert (error["field"], error["reason"]) == ("submitted_at", "invalid_value")
        assert "APPEALS_INTAKE_MAX_AGE" in error["message"]
        assert [d[1] for d in h.deadletters()] == ["invalid_value"] and not h.registered()


def test_gateway_ages_appeals_by_the_intake_max_age_setting() -> None:
    """APPEALS_INTAKE_MAX_AGE, the agent's setting, is the gateway's limit too; a native
    payload's time (here a hotline call's) is judged once the adapter has read it."""
    call = {"channel": "hotline", "call_id": "c-1", "region": "22", "summary": "Нет воды",
            "call_started": (HARNESS_NOW - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")}

    async def go(max_days: int) -> int:
        async with gateway(Settings(intake_max_age=max_days * 86400.0),
                           now=HARNESS_NOW) as (c, _p, _r):
            r = await c.post("/v1/appeals", json=call, headers=auth())
            return r.status

    assert asyncio.run(go(2)) == 400
    assert asyncio.run(go(4)) == 202


# --------------------------------------------------------------------------- attachment sizes

def _with_size(external_id: str, size: Any) -> dict[str, Any]:
    return canonical(external_id=external_id,
                     attachments=[{"url": "https://x.example/y.jpg", "size": size}])


@pytest.mark.parametrize(("raw", "verdict"), [
    (b"30000000", "attachment_too_large"), (b"30000000.0", "attachment_too_large"),
    (b"3e7", "attachment_too_large"), (b"1e300", "attachment_too_large"),
    (b"20971520.0", 20971520), (b"1e3", 1000), (b"3.5", "wrong_type"),
])
def test_an_attachment_size_written_as_a_float_is_the_number_it_is(
        raw: bytes, verdict: Any) -> None:
    """JSON Schema's ``integer`` accepts 3e7 and 30000000.0, which orjson reads as floats, and
    the 20 MiB limit compared ints only: the gateway answered 202, the agent registered the
    appeal, with a float in the record's integer ``size``. Gateway and agent now agree, and a
    whole float is stored as an int."""
    body = orjson.dumps(_with_size("sz-1", 0)).replace(b'"size":0', b'"size":' + raw)

    async def go() -> tuple[int, Any, list[tuple[str, bytes, bytes]]]:
        async with gateway() as (c, producer, _r):
            r = await c.post("/v1/appeals", data=body,
                             headers={**auth(), "Content-Type": "application/json"})
            return r.status, await r.json(), producer.sent

    status, answer, sent = asyncio.run(go())
    h = AgentHarness()
    h.run(h.batch("pos", [body]))
    if isinstance(verdict, int):
        assert status == 202
        [(_b, _k, published)] = sent
        [(_b, _k, registered)] = h.registered()
        for value in (published, registered):
            [attachment] = orjson.loads(value)["attachments"]
            assert attachment["size"] == verdict and type(attachment["size"]) is int
    else:
        assert status == 400 and sent == []
        assert [e["reason"] for e in answer["errors"]] == [verdict]
        assert [d[1] for d in h.deadletters()] == [verdict] and not h.registered()


@pytest.mark.parametrize(("size", "verdict"), [
    (30_000_000.0, "attachment_too_large"), (3.7, "wrong_type"), (float("inf"), "wrong_type"),
    (float("nan"), "wrong_type"), ("3e7", "wrong_type"), (1000.0, 1000),
])
def test_a_native_attachment_size_gets_the_canonical_verdict(size: Any, verdict: Any) -> None:
    """The adapters cut a float size with ``int()``: 3.7 became 3 where the canonical path
    refuses it, and ``inf`` raised OverflowError (an internal error, not a reason)."""
    form = {"channel": "web", "submission_id": "f-1", "site": "a.ru", "region": "22",
            "submitted": "2025-01-14 10:21:00", "fields": {"message": "Яма у дома"},
            "files": [{"url": "https://x.example/y.jpg", "size": size}]}
    if isinstance(verdict, int):
        [attachment] = core.intake_from_dict(form).attachments or []
        assert attachment.size == verdict and type(attachment.size) is int
    else:
        with pytest.raises(InvalidEvent) as info:
            core.intake_from_dict(form)
        assert info.value.reason == verdict
