"""Normalisation: NFC, control characters, whitespace, E.164 phones, e-mails, attachment limits."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.validation import InvalidEvent
from workers.intake import normalize
from workers.intake.core import intake_from_dict
from workers.intake.normalize import (
    clean_line,
    clean_text,
    normalise,
    normalise_email,
    normalise_phone,
)


def _event(**fields: object) -> dict:
    base = {
        "schema_version": 1, "channel": "pos", "external_id": "n-1",
        "submitted_at": "2025-01-14T08:00:00+07:00", "region": "22", "text": "Текст",
    }
    base.update(fields)
    return base


def test_nfc() -> None:
    decomposed = "и\u0306"  # и + combining breve = й
    assert unicodedata.normalize("NFC", decomposed) == "й"
    assert clean_text(f"Мо{decomposed}ка") == "Мойка"
    a = intake_from_dict(_event(text="е\u0308лка", address="ул. Е\u0308жикова"))
    assert a.text == "ёлка"
    assert a.address == "ул. Ёжикова"


def test_control_and_invisible_characters_are_removed() -> None:
    dirty = "Нет\x00 во\u200bды\x07 в\u202e доме\ufeff\u00ad"
    assert clean_line(dirty) == "Нет воды в доме"
    assert clean_text("a\x1bb\x7fc\x85d") == "abc\nd"


def test_whitespace_folding() -> None:
    assert clean_line("  г.\u00a0Барнаул,\t\tул.\n Вымышленная  ") == "г. Барнаул, ул. Вымышленная"
    text = "Первый   абзац.\r\n\r\n\r\n\r\nВторой\u2003абзац.  \n  строка "
    assert clean_text(text) == "Первый абзац.\n\nВторой абзац.\nстрока"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 (913) 000-11-01", "+79130001101"),
        ("+7 913 000 11 01", "+79130001101"),
        ("89130001101", "+79130001101"),
        ("9130001101", "+79130001101"),
        ("+7-913-000-11-01", "+79130001101"),
        ("8 (3852) 00-00-01", "+73852000001"),  # Barnaul landline
        ("+375 29 000 00 01", "+375290000001"),  # Belarus stays Belarus
    ],
)
def test_phone_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == (expected, True)
    assert normalise_phone(expected) == (expected, True)  # idempotent


def test_unparsable_phone_keeps_digits_inside_author_only() -> None:
    a = intake_from_dict(_event(author={"phone": "доб. 12-3"}))
    assert a.author is not None and a.author.phone == "123"
    assert a.extra["phone_not_e164"] is True
    assert "123" not in str(a.extra)
    b = intake_from_dict(_event(author={"phone": "не назвал", "name": "Тест"}))
    assert b.author is not None and b.author.phone is None


def test_email_lower_case() -> None:
    assert normalise_email(" Ivan.Testov@Example.RU ") == "ivan.testov@example.ru"
    assert normalise_email("Иван <Ivan@Example.ru>") == "ivan@example.ru"
    a = intake_from_dict(_event(author={"email": "A.B@EXAMPLE.COM"}))
    assert a.author is not None and a.author.email == "a.b@example.com"


def test_attachment_limits() -> None:
    old = normalize.current_config()
    try:
        normalize.configure(max_attachments=2, max_attachment_bytes=1000)
        ok = [{"url": "https://x.example/1", "size": 1000}]
        assert len(intake_from_dict(_event(attachments=ok)).attachments) == 1
        many = [{"url": f"https://x.example/{i}"} for i in range(3)]
        with pytest.raises(InvalidEvent) as info:
            intake_from_dict(_event(attachments=many))
        assert info.value.reason == "too_many_attachments"
        big = [{"url": "https://x.example/1", "size": 1001}]
        with pytest.raises(InvalidEvent) as info:
            intake_from_dict(_event(attachments=big))
        assert info.value.reason == "attachment_too_large"
        inline = [{"url": "data:image/png;base64,iVBORw0KGgo="}]
        with pytest.raises(InvalidEvent) as info:
            intake_from_dict(_event(attachments=inline))
        assert info.value.reason == "attachment_not_url"
    finally:
        normalize.configure(max_attachments=old.max_attachments,
                            max_attachment_bytes=old.max_attachment_bytes)


def test_limits_from_environment() -> None:
    cfg = normalize.NormaliseConfig.from_env(
        {"APPEALS_MAX_ATTACHMENTS": "3", "APPEALS_MAX_ATTACHMENT_BYTES": "5"})
    assert (cfg.max_attachments, cfg.max_attachment_bytes) == (3, 5)


def test_text_that_is_only_invisible_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        intake_from_dict(_event(text="\u200b\u200b \x00"))
    assert info.value.reason == "empty_text"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=40), st.text(max_size=30))
def test_normalise_is_idempotent(text: str, line: str, phone: str) -> None:
    data = _event(text=text, subject=line, address=line,
                  author={"name": line, "phone": phone, "email": line})
    once = normalise(data)
    assert normalise(once) == once
    for value in (once["text"], once["subject"] or ""):
        assert unicodedata.is_normalized("NFC", value)
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") and c not in "\n\t"
                       for c in value)
