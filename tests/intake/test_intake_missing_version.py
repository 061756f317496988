"""A canonical intake record that forgot only ``schema_version`` is told so.

Without ``schema_version`` a payload is taken to be its channel's native shape and goes through
the channel's adapter, which refused the canonical record for a field it has: the pos adapter
reads ``created``, so the dead letter said ``missing_field: submitted_at is missing``. When the
adapter refuses a payload with the canonical fields and none of the channel's native id fields,
the reason names the version. A native payload is judged by its adapter, as before.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.validation import InvalidEvent
from workers.intake import core
from workers.intake.core import decode_intake

CANONICAL: dict[str, Any] = {
    "channel": "pos", "external_id": "pos-1", "submitted_at": "2026-11-25T10:00:00+07:00",
    "region": "22", "text": "Во дворе не вывозят мусор"}


@pytest.mark.parametrize("channel", ["pos", "fz59", "hotline", "incident", "email"])
def test_a_canonical_record_without_its_version_is_missing_field_schema_version(
        channel: str) -> None:
    doc = dict(CANONICAL, channel=channel)
    with pytest.raises(InvalidEvent) as info:
        decode_intake(orjson.dumps(doc), channel_hint=channel)
    assert info.value.reason == "missing_field"
    assert info.value.detail.startswith("schema_version is missing")


def test_every_adapter_registers_its_native_id_fields() -> None:
    assert core.NATIVE_ID_FIELDS["pos"] == ("id",)
    assert core.NATIVE_ID_FIELDS["web"] == ("submission_id",)


def test_a_native_payload_keeps_its_adapter_s_reason() -> None:
    """A pos payload (its own ``id``) without ``created`` is a native fault, named as before."""
    native = {"id": "P-1", "region_code": "22", "text": "Яма", "external_id": "x",
              "submitted_at": "2026-11-25T10:00:00+07:00"}
    with pytest.raises(InvalidEvent) as info:
        decode_intake(orjson.dumps(native), channel_hint="pos")
    assert info.value.reason == "missing_field"
    assert "submitted_at is missing" in info.value.detail


def test_a_payload_its_adapter_accepts_is_still_accepted() -> None:
    """A pos payload with the canonical fields *and* ``created`` maps as it did."""
    doc = dict(CANONICAL, created="2026-11-25T10:00:00+07:00")
    appeal = decode_intake(orjson.dumps(doc), channel_hint="pos")
    assert appeal.external_id == "pos-1"
