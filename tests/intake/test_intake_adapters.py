"""Channel adapters: every sample payload becomes the right canonical intake appeal."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.validation import InvalidEvent, validate
from tests.intake.conftest import load_samples
from workers.intake.adapters import ADAPTER_MODULES
from workers.intake.core import ADAPTERS, decode_intake, intake_from_dict

CHANNELS = ("pos", "incident", "fz59", "hotline", "email", "web")


def test_every_channel_has_an_adapter_registered() -> None:
    assert {m.CHANNEL for m in ADAPTER_MODULES} == set(CHANNELS)
    for channel in CHANNELS:
        assert channel in ADAPTERS


@pytest.mark.parametrize("channel", CHANNELS)
def test_samples_adapt_to_valid_canonical(channel: str) -> None:
    samples = load_samples(channel)
    assert len(samples) >= 5
    ids = set()
    for native in samples:
        canonical = ADAPTERS[channel](dict(native))
        validate("intake-appeal", canonical)  # the adapter's output meets the contract itself
        appeal = intake_from_dict(native)
        assert appeal.channel == channel
        assert appeal.region == "22"
        assert appeal.text and appeal.text == appeal.text.strip()
        assert appeal.submitted_at[-6] in "+-" or appeal.submitted_at.endswith("Z")
        ids.add(appeal.external_id)
    assert len(ids) == len(samples)


@pytest.mark.parametrize("channel", CHANNELS)
def test_native_bytes_on_the_channel_topic(channel: str) -> None:
    import orjson

    for native in load_samples(channel):
        native = {k: v for k, v in native.items() if k != "channel"}
        appeal = decode_intake(orjson.dumps(native), channel_hint=channel)
        assert appeal.channel == channel


def test_pos_fields() -> None:
    a = intake_from_dict(load_samples("pos")[0])
    assert a.external_id == "1834521907"
    assert a.submitted_at == "2025-01-14T08:12:44+07:00"
    assert a.category_hint == "housing_utilities"
    assert a.subcategory == "Отопление"
    assert a.subject == "Холодные батареи в квартире"
    assert a.municipality == "г. Барнаул"
    assert a.address == "г. Барнаул, ул. Вымышленная, д. 17, кв. 42"
    assert a.author is not None
    assert a.author.name == "Тестова Алевтина Вымышленовна"
    assert a.author.phone == "+79130001101"
    assert a.author.email == "a.testova@example.ru"
    assert a.attachments[0].name == "батарея.jpg" and a.attachments[0].size == 348211
    assert a.attachments[0].mime == "image/jpeg"
    # unknown native fields and the platform's own taxonomy are kept, not dropped
    assert a.extra["fast_track"] is False
    assert a.extra["moderation_status"] == "approved"
    assert a.extra["pos_subcategory"] == {"id": 1203, "name": "Отопление"}
    assert a.extra["address_geo"]["lat"] == 53.3481


def test_pos_epoch_millis_and_plate_alias_region() -> None:
    a = intake_from_dict(load_samples("pos")[1])
    assert a.region == "22"  # "122" is the plate alias of Altai Krai
    assert a.submitted_at == "2025-01-14T07:33:20+00:00"
    assert a.extra["likes"] == 14


def test_incident_fields() -> None:
    samples = load_samples("incident")
    a = intake_from_dict(samples[0])
    assert a.external_id == "IM-22-0458812"
    assert a.importance == "high"
    assert a.author is not None and a.author.handle == "@test_user_barnaul"
    assert a.extra["network"] == "vk"
    assert a.extra["post_url"] == "https://vk.com/wall-100000001_5001"
    assert a.extra["reach"] == 12500
    assert a.extra["author_profile"] == {"profile_url": "https://vk.com/id000000001"}
    assert intake_from_dict(samples[2]).importance == "high"  # "высокая"
    # no incident id: the post URL names the appeal
    assert intake_from_dict(samples[3]).external_id == "https://vk.com/wall-100000001_5077"


def test_fz59_fields() -> None:
    samples = load_samples("fz59")
    a = intake_from_dict(samples[0])
    assert a.external_id == "22:Министерство строительства и ЖКХ Алтайского края:Ж-22-000123/25"
    assert intake_from_dict(samples[1]).external_id == "22:П-22-000456/25"  # no addressee
    assert a.submitted_at == "2025-01-13T16:40:00+07:00"  # receipt, not registration
    assert a.extra["reg_date"] == "14.01.2025"
    assert a.address == "г. Барнаул, ул. Вымышленная, д. 9"  # incident address wins
    letter = intake_from_dict(samples[1])
    assert letter.extra["source"] == "letter"
    assert letter.submitted_at.startswith("2025-01-15T00:00:00")
    assert letter.attachments[0].url == "https://docs.example.ru/scans/p-456.pdf"
    assert intake_from_dict(samples[2]).complaint_about == "22-pervomayskiy-rayon-admin"


def test_hotline_fields() -> None:
    samples = load_samples("hotline")
    a = intake_from_dict(samples[0])
    assert a.external_id == "22:122-22-20250114-000731"  # each region runs its own 122
    assert a.submitted_at == "2025-01-14T09:03:12+07:00"  # naive = Barnaul time
    assert a.text.startswith("Заявитель сообщает")
    assert a.extra["transcript"].startswith("— Алло")
    assert a.extra["operator_id"] == "op-0417"
    assert a.author is not None and a.author.phone == "+79130003301"
    # transcript only: it becomes the text
    assert intake_from_dict(samples[2]).text.startswith("Здравствуйте")
    # a caller who gave no number: no phone invented
    assert intake_from_dict(samples[3]).author is None


def test_hotline_operator_urgent_flag_is_high_importance() -> None:
    """The 122 operator's urgent flag is a person's judgement of the call: it must reach routing
    (which routes importance "high" as urgent), not only sit in ``extra``."""
    samples = load_samples("hotline")
    assert samples[0]["urgent"] is True and intake_from_dict(samples[0]).importance == "high"
    assert intake_from_dict(samples[0]).extra["urgent"] is True  # kept as given, too
    assert "urgent" not in samples[1] and intake_from_dict(samples[1]).importance is None
    assert intake_from_dict({**samples[1], "urgent": False}).importance is None


def test_email_fields() -> None:
    samples = load_samples("email")
    a = intake_from_dict(samples[0])
    # scoped by the receiving mailbox
    assert a.external_id == "22:priemnaya@minstroy.example.ru:<20250114.0912.4471@mail.example.ru>"
    assert intake_from_dict(samples[3]).external_id == "22:<abc-0004@mx.example.com>"  # no to
    assert a.author is not None
    assert a.author.email == "m.ivanova-testova@example.ru"
    assert a.author.name == "Иванова-Тестова Мария"
    assert a.submitted_at == "2025-01-14T09:12:05+07:00"
    assert "\r" not in a.text and "\n\n" in a.text
    assert a.extra["headers"] == {"X-Mailer": "ExampleMail 1.0"}
    assert intake_from_dict(samples[3]).text == "Интернет в школе"  # subject-only message


def test_web_fields() -> None:
    samples = load_samples("web")
    a = intake_from_dict(samples[0])
    assert a.external_id == "minstroy.example.ru:minstroy-22-000512"  # scoped by its site
    assert a.category_hint == "landscaping"
    assert a.author is not None and a.author.phone == "+79130005501"
    assert a.extra["form_fields"] == {"consent_pd": True}
    assert a.extra["site"] == "minstroy.example.ru"
    b = intake_from_dict(samples[1])
    assert b.extra["form_fields"]["age_group"] == "60+"
    assert intake_from_dict(samples[3]).extra["utm_source"] == "vk"


def test_canonical_samples_are_valid() -> None:
    for event in load_samples("canonical"):
        a = intake_from_dict(event)
        assert a.schema_version == 1
    hot = intake_from_dict(load_samples("canonical")[3])
    assert hot.extra == {"operator_id": "op-9"}  # unknown top-level field moved to extra


@pytest.mark.parametrize(
    ("channel", "patch", "reason"),
    [
        ("pos", {"id": None}, "missing_field"),
        ("pos", {"region_code": "00"}, "unknown_region"),
        ("pos", {"created": "вчера"}, "invalid_value"),
        ("incident", {"importance": "очень"}, "invalid_value"),
        ("incident", {"author": "someone"}, "wrong_type"),
        ("fz59", {"received_at": None, "reg_date": None}, "missing_field"),
        ("hotline", {"call_id": ""}, "missing_field"),
        ("email", {"received": None}, "missing_field"),
        ("web", {"fields": {"message": "  "}}, "empty_text"),  # as a canonical blank text
        ("web", {"files": "not a list"}, "wrong_type"),
    ],
)
def test_broken_native_payloads_are_rejected_with_a_reason(
    channel: str, patch: dict, reason: str
) -> None:
    native = {**load_samples(channel)[0], **patch}
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(native)
    assert info.value.reason == reason


# --- alternatives the adapter did not use are kept (review 12, defect 15) -------------------

def test_web_form_name_is_kept_when_fio_names_the_author() -> None:
    native = {"channel": "web", "submission_id": "minstroy-22-000512",
              "external_id": "site-7", "submitted": "2025-01-14 10:21:00", "region": "22",
              "fields": {"fio": "Петрова Анна Сергеевна", "name": "ТСЖ «Ленина, 5»",
                         "message": "Прошу проверить детскую площадку во дворе."}}
    appeal = intake_from_dict(native, channel_hint="web")
    assert appeal.author is not None and appeal.author.name == "Петрова Анна Сергеевна"
    assert appeal.external_id == "minstroy-22-000512"
    assert appeal.extra["form_fields"] == {"name": "ТСЖ «Ленина, 5»"}
    assert appeal.extra["external_id"] == "site-7"
    # Only one of them: nothing is added.
    alone = intake_from_dict(dict(native, external_id=None,
                                  fields={"name": "Петрова А. С.", "message": "Текст"}),
                             channel_hint="web")
    assert alone.author is not None and alone.author.name == "Петрова А. С."
    assert "form_fields" not in alone.extra and "external_id" not in alone.extra


def test_pos_alternative_fields_are_kept_when_the_primary_is_present() -> None:
    native = {"channel": "pos", "id": "77", "external_id": "pos-77",
              "created": "2025-01-14T08:12:44+07:00", "created_at": 1736817164000,
              "region_code": "22", "region": "Алтайский край, Бийский район",
              "text": "Нет воды"}
    appeal = intake_from_dict(native, channel_hint="pos")
    assert (appeal.external_id, appeal.region, appeal.submitted_at) == (
        "77", "22", "2025-01-14T08:12:44+07:00")
    assert appeal.extra == {"external_id": "pos-77", "created_at": 1736817164000,
                            "region": "Алтайский край, Бийский район"}
    fallback = intake_from_dict({"channel": "pos", "external_id": "pos-78", "region": "22",
                                 "created_at": "2025-01-14T08:12:44+07:00", "text": "Нет воды"},
                                channel_hint="pos")
    assert (fallback.external_id, fallback.region, fallback.extra) == ("pos-78", "22", {})


@pytest.mark.parametrize(("received", "expected"), [
    ("Tue, 14 Jan 2025 09:12:05 -0000", "2025-01-14T09:12:05+00:00"),  # UTC, zone unknown
    ("Tue, 14 Jan 2025 09:12:05 -0000 (UTC)", "2025-01-14T09:12:05+00:00"),
    ("Tue, 14 Jan 2025 09:12:05 +0000", "2025-01-14T09:12:05+00:00"),
    ("Tue, 14 Jan 2025 09:12:05 +0700", "2025-01-14T09:12:05+07:00"),
    ("Tue, 14 Jan 2025 09:12:05", "2025-01-14T09:12:05+07:00"),  # no zone: the region's
])
def test_an_email_date_of_minus_0000_is_utc(received: str, expected: str) -> None:
    """RFC 5322 3.3: -0000 is UTC with the sender's zone unknown; it was taken as the
    region's local time, 7 hours off in Barnaul (review of session 15)."""
    from workers.intake.adapters._common import iso_datetime

    assert iso_datetime(received, region="22", field="received") == expected


@pytest.mark.parametrize(("received", "expected"), [
    ("Tue, 14 Jan 2025 09:12:05 MSK", "2025-01-14T09:12:05+03:00"),
    ("Tue, 14 Jan 2025 09:12:05 msk (Moscow)", "2025-01-14T09:12:05+03:00"),
    ("Sat, 14 Jan 2012 09:12:05 MSK", "2012-01-14T09:12:05+04:00"),  # Moscow was +04 then
    ("Tue, 14 Jan 2025 09:12:05 YEKT", "2025-01-14T09:12:05+05:00"),
    ("Tue, 14 Jan 2025 09:12:05 KRAT", "2025-01-14T09:12:05+07:00"),
    ("Tue, 14 Jan 2025 09:12:05 PETT", "2025-01-14T09:12:05+12:00"),
    ("Tue, 14 Jan 2025 09:12:05 KALT", "2025-01-14T09:12:05+02:00"),
    ("Tue, 14 Jan 2025 09:12:05 GMT", "2025-01-14T09:12:05+00:00"),
    ("Tue, 14 Jan 2025 09:12:05 +0300 (MSK)", "2025-01-14T09:12:05+03:00"),
])
def test_an_email_date_with_a_russian_zone_name_is_read_in_that_zone(
        received: str, expected: str) -> None:
    """Python's RFC 2822 parser knows no ``MSK``: it returned the time without a zone, and
    the adapter took it as the region's, so 09:12 MSK was 09:12+07:00 in Barnaul, four hours
    early (and so were the appeal's deadlines)."""
    from workers.intake.adapters._common import iso_datetime

    assert iso_datetime(received, region="22", field="received") == expected


@pytest.mark.parametrize("zone", ["CET", "IST", "XYZ"])
def test_an_email_date_with_an_unknown_zone_name_is_refused_not_guessed(zone: str) -> None:
    email = {"channel": "email", "message_id": "<m1@x>", "to": "priemnaya@x.ru", "region": "22",
             "received": f"Tue, 14 Jan 2025 09:12:05 {zone}", "body": "Нет воды"}
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(email)
    assert info.value.reason == "invalid_value"
    assert "received" in info.value.detail and zone not in info.value.detail


def test_a_complaint_may_name_any_shipped_authority_by_its_full_name() -> None:
    """complaint_about was capped at 100 characters, and three shipped authorities have
    longer names: a 59-FZ complaint naming one was dead-lettered as too_long, though the
    router would have sent it to the parent (review of session 15)."""
    import orjson

    from workers.routing import load_rules

    rules = load_rules()
    assert max(len(a.name) for a in rules.authorities.values()) > 100
    for authority in rules.authorities.values():
        letter = {"channel": "fz59", "reg_number": f"Ж-{authority.id}", "region": "22",
                  "received_at": "2025-01-13T16:40:00+07:00",
                  "body": "Жалоба на бездействие: дорогу не ремонтируют",
                  "complaint_about": authority.name}
        appeal = decode_intake(orjson.dumps(letter), channel_hint="fz59")
        assert appeal.complaint_about == authority.name


@pytest.mark.parametrize("phone", [
    "8 (913) 000-00-00 доб. 123, рабочий 8 (3852) 22-22-22",  # a second number
    "8 (913) 000-00-00" + " " * 40,  # padded by the export
])
def test_a_long_phone_as_typed_does_not_refuse_the_appeal(phone: str) -> None:
    """author.phone was capped at 50 characters as typed, before normalisation: a hotline
    call whose caller gave two numbers was dead-lettered whole (review of session 15)."""
    import orjson

    call = {"channel": "hotline", "call_id": "122-22-20250114-000731", "region": "22",
            "call_started": "2025-01-14 09:03:12", "summary": "Нет отопления в доме",
            "caller": {"phone": phone, "name": "Иванов"}}
    appeal = decode_intake(orjson.dumps(call), channel_hint="hotline")
    assert appeal.author is not None and appeal.author.phone
    assert len(appeal.author.phone) <= 50


def test_a_byte_order_mark_before_the_json_is_skipped() -> None:
    """RFC 8259 8.1 lets a parser ignore a UTF-8 BOM; Windows tools write one, and such a
    message was dead-lettered as not_json (review of session 15). Only a leading one."""
    import orjson

    canon = load_samples("canonical")[0]
    raw = orjson.dumps(canon)
    appeal = decode_intake(b"\xef\xbb\xbf" + raw, channel_hint=canon["channel"])
    assert appeal.external_id == canon["external_id"]
    with pytest.raises(InvalidEvent) as info:
        decode_intake(b" \xef\xbb\xbf" + raw, channel_hint=canon["channel"])
    assert info.value.reason == "not_json"


def test_a_numeric_site_scopes_the_submission_id() -> None:
    """A site given as a number is a site id: two sites' submission 1001 stay two appeals."""
    import orjson

    def form(site: Any) -> dict[str, Any]:
        return {"channel": "web", "submission_id": 1001, "site": site, "region": "22",
                "submitted": "2025-01-14 10:21:00", "fields": {"message": "Яма у дома 5"}}

    ids = [decode_intake(orjson.dumps(form(site)), channel_hint="web").external_id
           for site in (12, 13, "12", {"id": 1}, True)]
    assert ids == ["12:1001", "13:1001", "12:1001", "1001", "1001"]


def test_one_call_id_in_two_regions_is_two_appeals() -> None:
    """Every region runs its own 122 centre and counts its calls: two regions' call
    ``000731`` were one appeal id, the second caller's appeal dropped as a duplicate."""
    call = dict(load_samples("hotline")[1])
    ids = {intake_from_dict({**call, "region": region}).external_id for region in ("22", "54")}
    assert ids == {"22:122-22-20250114-000802", "54:122-22-20250114-000802"}
    # a redelivery names the same appeal; an explicit external_id stays as given
    assert intake_from_dict(dict(call)).external_id == "22:122-22-20250114-000802"
    explicit = {k: v for k, v in call.items() if k != "call_id"}
    assert intake_from_dict({**explicit, "external_id": "own-7"}).external_id == "own-7"


def test_an_over_long_native_id_is_digested() -> None:
    """A post URL (the incident's id when it has no incident_id) over the schema's 200
    characters was dead-lettered too_long; it is digested as scoped_id digests, stably."""
    import orjson

    base = "https://dzen.ru/a/ZxYk3QbW1k2Yx3vA?utm_source=im&utm_medium=monitoring&utm_content="
    incident = {"channel": "incident", "network": "dzen", "region": "22",
                "published_at": "2025-01-14T07:55:00+07:00", "importance": "high",
                "text": "Ямы на дороге по ул. Ленина в Барнауле не заделывают"}
    ids = [decode_intake(orjson.dumps({**incident, "post_url": base + tail}),
                         channel_hint="incident").external_id
           for tail in ("x" * 150, "y" * 150, "x" * 150)]
    assert ids[0] == ids[2] != ids[1]
    assert all(len(i) <= 200 and i.startswith(base[:100]) and ":sha256:" in i for i in ids)
    short = decode_intake(orjson.dumps({**incident, "post_url": base + "x"}),
                          channel_hint="incident")
    assert short.external_id == base + "x"  # within the limit: the URL itself, as before
    with pytest.raises(InvalidEvent) as info:  # an explicit id is the sender's own
        decode_intake(orjson.dumps({**incident, "external_id": "e" * 201}),
                      channel_hint="incident")
    assert info.value.reason == "too_long"


@pytest.mark.parametrize(("sender", "name", "email"), [
    ("Петров, Иван <Ivan.Petrov@Example.ru>", "Петров, Иван", "ivan.petrov@example.ru"),
    ("ТСЖ «Ленина 5», председатель Иванов И.И. <tsj@example.ru>",
     "ТСЖ «Ленина 5», председатель Иванов И.И.", "tsj@example.ru"),
    ('"Петров, Иван" <ivan@example.ru>', "Петров, Иван", "ivan@example.ru"),
    ("ivan@example.ru (Иван Петров)", "Иван Петров", "ivan@example.ru"),
    ("Иван Иванов", "Иван Иванов", None),  # no address: a name, never an e-mail
    ("Иван <ivan>", "Иван", None),
], ids=["comma", "comma-and-quotes", "quoted", "comment", "no-address", "no-at"])
def test_the_sender_address_is_one_with_an_at_sign(sender: str, name: str,
                                                   email: str | None) -> None:
    """parseaddr splits an unquoted «Фамилия, Имя <addr>» (Outlook, Exchange) at the comma:
    the adapter stored «петров» as the e-mail and lost the address the answer goes to, and
    the name."""
    import orjson

    mail = {**load_samples("email")[1], "from": sender}
    appeal = decode_intake(orjson.dumps(mail), channel_hint="email")
    assert appeal.author is not None
    assert (appeal.author.name, appeal.author.email) == (name, email)


@pytest.mark.parametrize("sender", ["(" * 600 + "a@b.ru", "(" * 5000 + "a@b.ru",
                                    "Иван " * 200 + "<ivan@example.ru>"],
                         ids=["nested-600", "nested-5000", "over-998"])
def test_an_unreadable_or_over_long_sender_is_refused_with_a_reason(sender: str) -> None:
    """Hundreds of nested '(' made parseaddr raise RecursionError: the agent dead-lettered
    the mail as internal_error after logging a thousand-frame traceback. A From over 998
    characters (RFC 5322's line limit) is refused as well."""
    import orjson

    mail = {**load_samples("email")[1], "from": sender}
    with pytest.raises(InvalidEvent) as info:
        decode_intake(orjson.dumps(mail), channel_hint="email")
    assert info.value.reason == "invalid_value"
    assert "from" in info.value.detail and "Иван" not in info.value.detail


def test_one_message_to_two_authorities_is_an_appeal_for_each() -> None:
    """A citizen mails two authorities at once: each mailbox's gateway delivers the message
    with one Message-ID, and the second authority's copy was dropped as a duplicate, so that
    authority never got the appeal. A retry to one mailbox is still
    one appeal, however the gateway spells the mailbox."""
    import orjson

    from tests.intake.fakes import AgentHarness

    mail = {"channel": "email", "message_id": "<20250114.0912.4471@mail.example.ru>",
            "from": "Иванова Мария <m.ivanova@example.ru>", "subject": "Свалка у школы",
            "body": "Около школы №5 третий месяц свалка мусора, прошу принять меры",
            "received": "Tue, 14 Jan 2025 09:12:05 +0700"}
    copies = [{**mail, "to": "priemnaya@minprirody.example.ru", "region": "22"},
              {**mail, "to": "obr@nso.example.ru", "region": "54"},
              {**mail, "to": "info@minzdrav.example.ru", "region": "22"},
              {**mail, "to": "Приёмная <Priemnaya@MinPrirody.example.ru>", "region": "22"}]
    ids = [intake_from_dict(copy).external_id for copy in copies]
    assert ids[:3] == ["22:priemnaya@minprirody.example.ru:" + mail["message_id"],
                       "54:obr@nso.example.ru:" + mail["message_id"],
                       "22:info@minzdrav.example.ru:" + mail["message_id"]]
    assert ids[3] == ids[0]
    explicit = {k: v for k, v in copies[0].items() if k != "message_id"}
    assert intake_from_dict({**explicit, "external_id": "own-3"}).external_id == "own-3"

    h = AgentHarness()
    h.run(h.batch("email", [orjson.dumps(copy) for copy in copies]))
    registered = [orjson.loads(v) for _t, _k, v in h.registered()]
    assert [r["extra"]["to"] for r in registered] == [c["to"] for c in copies[:3]]
