"""Explicit external ids at the gateway: only a channel's id owner names appeals by them.

Review finding D2: client ``cityapp`` (a civic app, every channel allowed by default) posted a
canonical ``pos`` appeal with ``external_id`` ``1834521999``, the POS platform's next message
id; the platform then posted that message. Both were answered ``202`` with one appeal id,
intake registered the civic app's text only and dropped the citizen's message as a duplicate,
with no dead letter. Fast tests: the real gateway over in-memory Kafka and Redis, the real
intake agent body over the published records.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import ConfigError, Settings
from tests.intake.fakes import AgentHarness, gateway
from workers.intake.core import appeal_id_for
from workers.intake.gateway import Client, GatewayConfig, client_external_id

CLIENTS = (
    Client(id="pos-platform", token="tok-pos", id_owner=frozenset({"pos"})),
    Client(id="cityapp", token="tok-city"),
    Client(id="site-a", token="tok-a"),
    Client(id="site-b", token="tok-b"),
)
SUBMITTED = "2025-01-14T10:00:00+07:00"

FAKE = {"schema_version": 1, "channel": "pos", "external_id": "1834521999",
        "submitted_at": SUBMITTED, "region": "22",
        "text": "Спасибо, вопрос решён, претензий не имею"}
REAL = {"channel": "pos", "id": "1834521999", "created": SUBMITTED, "region_code": "22",
        "municipality": "г. Барнаул", "title": "Нет отопления",
        "text": "Третий день нет отопления, в квартире +12, дети болеют",
        "author": {"name": "Петров П.", "phone": "+79131111111"}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_all(posts: list[tuple[str, Any]]) -> tuple[list[tuple[int, Any]], list[bytes]]:
    """Each (token, body) posted in order; the answers and the published record values."""
    async def go() -> tuple[list[tuple[int, Any]], list[bytes]]:
        async with gateway(clients=CLIENTS) as (c, producer, _redis):
            out = []
            for token, body in posts:
                r = await c.post("/v1/appeals", json=body, headers=bearer(token))
                out.append((r.status, await r.json()))
            return out, [v for _t, _k, v in producer.sent]
    return asyncio.run(go())


def test_another_client_cannot_take_the_owners_id() -> None:
    answers, sent = post_all([("tok-city", FAKE), ("tok-pos", REAL)])
    (s1, fake), (s2, real) = answers
    assert (s1, s2) == (202, 202)
    assert fake["appeal_id"] != real["appeal_id"]
    assert real["appeal_id"] == appeal_id_for("pos", "1834521999")  # the owner's id, as sent
    assert fake["appeal_id"] == appeal_id_for("pos", "cityapp:ext:1834521999")
    h = AgentHarness()
    h.run(h.batch("pos", sent))
    assert not h.deadletters()
    texts = sorted(orjson.loads(v)["text"] for _t, _k, v in h.registered())
    assert texts == sorted([FAKE["text"], REAL["text"]])  # both appeals registered


def test_two_sites_counters_are_two_appeals() -> None:
    """Without malice: two sites posting canonical web records with their own counters."""
    form = {"schema_version": 1, "channel": "web", "external_id": "1001",
            "submitted_at": SUBMITTED, "region": "22"}
    answers, sent = post_all([("tok-a", {**form, "text": "Яма у школы"}),
                              ("tok-b", {**form, "text": "Нет талонов к врачу"})])
    assert [s for s, _ in answers] == [202, 202]
    assert answers[0][1]["appeal_id"] != answers[1][1]["appeal_id"]
    h = AgentHarness()
    h.run(h.batch("web", sent))
    assert len(h.registered()) == 2 and not h.deadletters()


def test_a_resend_names_the_same_appeal_and_is_registered_once() -> None:
    answers, sent = post_all([("tok-city", FAKE), ("tok-city", FAKE), ("tok-pos", REAL),
                              ("tok-pos", REAL)])
    ids = [body["appeal_id"] for _s, body in answers]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    h = AgentHarness()
    h.run(h.batch("pos", sent))
    assert len(h.registered()) == 2  # the resends are exact duplicates


def test_scoped_ids_are_distinct_and_fit_the_schema() -> None:
    assert client_external_id("a", "b:c") != client_external_id("a:b", "c")
    long_id = "x" * 250
    scoped = client_external_id("cityapp", long_id)
    assert len(scoped) <= 200 and scoped.startswith("cityapp:ext:sha256:")
    assert scoped == client_external_id("cityapp", long_id)  # stable: a resend is the same
    assert scoped != client_external_id("other", long_id)


def load(tmp_path: Path, toml: str) -> GatewayConfig:
    path = tmp_path / "tokens.toml"
    path.write_text(toml)
    return GatewayConfig.load(Settings.load({}), {"APPEALS_GATEWAY_TOKENS_FILE": str(path)})


def test_id_owner_is_read_from_the_tokens_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[clients.pos]\ntoken = "t1"\nid_owner = ["pos"]\n'
                         '[clients.app]\ntoken = "t2"\n')
    by_id = {c.id: c for c in cfg.clients}
    assert by_id["pos"].id_owner == frozenset({"pos"})
    assert by_id["app"].id_owner == frozenset()


@pytest.mark.parametrize(("toml", "named"), [
    ('[clients.a]\ntoken = "t1"\nid_owner = ["pos"]\n[clients.b]\ntoken = "t2"\n'
     'id_owner = ["pos"]\n', "both name pos"),
    ('[clients.a]\ntoken = "t1"\nid_owner = ["mail"]\n', "clients.a.id_owner"),
    ('[clients.a]\ntoken = "t1"\nid_owner = "pos"\n', "clients.a.id_owner"),
    ('[clients.a]\ntoken = "t1"\nchannels = ["web"]\nid_owner = ["pos"]\n',
     "channels do not allow"),
])
def test_a_bad_id_owner_stops_the_gateway(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, toml)
    assert named in str(err.value)
