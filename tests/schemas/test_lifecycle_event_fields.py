"""``lifecycle-event`` v1 states what each kind of event needs, and both validators agree.

A ``triaged`` event without ``category`` and a ``redirected`` without ``to_authority_id`` were
schema-valid, so a producer checking against the published schema sent them, and the pipeline
dead-lettered every one later (the triage agent's ``invalid_value``, the SLA agent's
``redirect_refused: unknown authority id ''``). The schema's ``allOf`` now requires them; the
hot path (fastjsonschema, compiling the same file) and a stock Draft 2020-12 validator give the
same verdict on each case.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from schemas.validation import InvalidEvent, load_schema, validate

BASE = {"schema_version": 1, "event_id": "e-1", "appeal_id": "c" * 24,
        "at": "2026-11-25T10:00:00Z"}

CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"event": "triaged"}, "missing_field"),
    ({"event": "triaged", "category": None}, "wrong_type"),
    ({"event": "triaged", "category": "roads"}, None),
    ({"event": "triaged", "category": "roads", "urgent": None}, None),
    ({"event": "redirected"}, "missing_field"),
    ({"event": "redirected", "to_authority_id": None}, "wrong_type"),
    ({"event": "redirected", "to_authority_id": ""}, "invalid_value"),
    ({"event": "redirected", "to_authority_id": "22-minzdrav"}, None),
    # other events need neither, and may carry them as null
    ({"event": "answered"}, None),
    ({"event": "closed", "category": None, "to_authority_id": None}, None),
    ({"event": "extended", "extension_days": 30}, None),
]


@pytest.mark.parametrize(("fields", "reason"), CASES)
def test_event_specific_fields(fields: dict[str, Any], reason: str | None) -> None:
    doc = {**BASE, **fields}
    reference = jsonschema.Draft202012Validator(load_schema("lifecycle-event"))
    assert reference.is_valid(doc) == (reason is None)
    if reason is None:
        validate("lifecycle-event", doc)
        return
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", doc)
    assert info.value.reason == reason


#: Ids as authorities write them: anything printable, not only our 24 hex digits.
PRINTABLE_IDS = ["c" * 24, "C" * 24, "МФЦ-2026/15", "ABC 12", "22:web:77", "a\u00a0b", "id\u200b"]
#: A control character anywhere (the triage agent's tick key among them).
CONTROL_IDS = ["\u0000triage-tick", "abc\u0000", "a\tb", "a\nb", "abc\n", "a\u007fb",
               "a\u0085b", "\u009f"]


@pytest.mark.parametrize("value", PRINTABLE_IDS)
@pytest.mark.parametrize("field", ["appeal_id", "event_id"])
def test_an_id_may_be_spelt_as_its_authority_writes_it(field: str, value: str) -> None:
    validate("lifecycle-event", {**BASE, "event": "answered", field: value})


@pytest.mark.parametrize("value", CONTROL_IDS)
@pytest.mark.parametrize("field", ["appeal_id", "event_id", "authority_id", "to_authority_id"])
def test_an_id_with_a_control_character_is_refused(field: str, value: str) -> None:
    """``"\\u0000triage-tick"`` as appeal id was valid: the SLA agent forwarded the
    ``triaged`` event keyed by it, the triage agent's tick key, and it was dropped unseen."""
    doc = {**BASE, "event": "redirected", "to_authority_id": "22-minzdrav", field: value}
    with pytest.raises(InvalidEvent) as info:
        validate("lifecycle-event", doc)
    assert info.value.reason == "invalid_value"
    assert f"data.{field}" in info.value.detail


def test_a_lifecycle_event_under_the_tick_key_is_refused_before_it_is_forwarded() -> None:
    import orjson

    from workers.route.agent import TICK_KEY
    from workers.runtime import parse_event

    doc = {**BASE, "event": "triaged", "category": "roads",
           "appeal_id": TICK_KEY.decode()}
    with pytest.raises(InvalidEvent):
        parse_event(orjson.dumps(doc), "lifecycle-event")
