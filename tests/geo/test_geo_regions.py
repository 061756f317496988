"""Tests for the federal subject catalogue (workers.geo.regions)."""

from __future__ import annotations

import zoneinfo

import pytest

from workers.geo.regions import (
    Region,
    UnknownRegion,
    all_regions,
    get_region,
    normalize_code,
    region_timezone,
)


def test_there_are_89_subjects_with_unique_codes() -> None:
    regions = all_regions()
    assert len(regions) == 89
    assert len({r.code for r in regions}) == 89
    assert [r.code for r in regions] == sorted(r.code for r in regions)


def test_every_timezone_exists_in_zoneinfo() -> None:
    for region in all_regions():
        zoneinfo.ZoneInfo(region.timezone)  # raises ZoneInfoNotFoundError if wrong


@pytest.mark.parametrize(
    ("code", "tz"),
    [
        ("22", "Asia/Barnaul"),
        ("04", "Asia/Barnaul"),
        ("42", "Asia/Novokuznetsk"),
        ("54", "Asia/Novosibirsk"),
        ("70", "Asia/Tomsk"),
        ("39", "Europe/Kaliningrad"),
        ("63", "Europe/Samara"),
        ("41", "Asia/Kamchatka"),
        ("77", "Europe/Moscow"),
        ("78", "Europe/Moscow"),
        ("25", "Asia/Vladivostok"),
        ("87", "Asia/Anadyr"),
        ("82", "Europe/Simferopol"),
    ],
)
def test_known_timezones(code: str, tz: str) -> None:
    assert region_timezone(code) == tz


def test_new_subjects_present() -> None:
    names = {r.code: r.name_en for r in all_regions()}
    for code in ("80", "81", "84", "85", "82", "92"):
        assert code in names


@pytest.mark.parametrize("form", [22, "22", "022", " 22 ", "122"])
def test_accepted_forms(form: str | int) -> None:
    region = get_region(form)
    assert region == Region("22", "Алтайский край", "Altai Krai", "Asia/Barnaul")
    assert normalize_code(form) == "22"


def test_single_digit_is_padded() -> None:
    assert get_region(4).code == "04"
    assert get_region("4").code == "04"


@pytest.mark.parametrize("bad", ["88", "00", "", "abc", "２２", -22, True, None, 3.0, "9999"])
def test_unknown_region(bad: object) -> None:
    with pytest.raises(UnknownRegion) as exc:
        get_region(bad)  # type: ignore[arg-type]
    assert isinstance(exc.value, KeyError)
    assert "unknown Russian region code" in str(exc.value)


def test_region_is_frozen() -> None:
    region = get_region("22")
    with pytest.raises(AttributeError):
        region.code = "23"  # type: ignore[misc]
