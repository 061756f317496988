"""The intake agent's exact-dedupe marks in Redis name an appeal by a digest, not by its id.

Review finding D6: the key was ``<app id>:dedupe:<channel>:<external id>``, and an incident's
external id is the post's URL, naming its author: personal data in every key listing.
"""

from __future__ import annotations

import orjson

from tests.intake.fakes import AgentHarness, Msg
from workers.intake.agent import dedupe_key

POST_URL = "https://vk.com/id48151623?w=wall48151623_907"
POST = {"schema_version": 1, "channel": "incident", "external_id": POST_URL,
        "submitted_at": "2025-01-14T07:55:00+07:00", "region": "22",
        "text": "Прорыв трубы на ул. Советской, вода заливает подвал"}


def test_the_mark_holds_no_external_id_and_a_resend_is_still_a_duplicate() -> None:
    h = AgentHarness()
    value = orjson.dumps(POST)
    h.run(h.batch("incident", [value]))
    h.run([Msg(h.topic("incident"), 0, 1, value)])  # a resend: another position
    assert len(h.registered()) == 1 and not h.deadletters()
    marks = [k for k in h.redis.kv if ":dedupe:" in k]
    assert len(marks) == 1
    assert "vk.com" not in marks[0] and "48151623" not in marks[0]
    assert all("48151623" not in str(k) for k in [*h.redis.kv, *h.redis.h])


def test_the_digest_is_keyed_and_per_channel() -> None:
    key = dedupe_key("app", b"salt-1", "incident", POST_URL)
    assert key.startswith("app:dedupe:incident:") and POST_URL not in key
    assert key == dedupe_key("app", b"salt-1", "incident", POST_URL)
    assert key != dedupe_key("app", b"salt-2", "incident", POST_URL)
    assert dedupe_key("app", b"salt-1", "web", POST_URL).startswith("app:dedupe:web:")
