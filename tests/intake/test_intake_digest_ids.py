"""The digest-made external ids are stable: they are appeal ids' sources already in Kafka
(``appeals.intake.*``, ``appeals.registered``) and a resend after an upgrade must name the
same appeal. These pin a few ids each form produced when the three builders became one
(``gateway.digest_external_id``); any change to the hashing shows here."""

from __future__ import annotations

from workers.intake.gateway import client_external_id, scoped_external_id
from workers.intake.open311 import keyed_external_id


def test_key_made_ids_are_pinned() -> None:
    assert scoped_external_id("client-a", "1001") == (
        "client-a:key:sha256:0556e33dd5401eead6542d5339a9b2ea49d409a51d45e01c6377fc00a2696085")
    # A long client id is cut in the prefix, not in the digest; a lone surrogate is hashed.
    assert scoped_external_id("c" * 150, "ключ:\udcff") == (
        "c" * 100
        + ":key:sha256:d24a8a6a1893383687427cbfea37964cc4f37a07e239a3fb1a37e5c497fd2b3c")


def test_long_explicit_ids_are_pinned() -> None:
    assert client_external_id("client-b", "1834521999") == "client-b:ext:1834521999"
    assert client_external_id("client-b", "x" * 250) == (
        "client-b:ext:sha256:5f69bf5458410d4eb54d859a6cad04035b32267d6dc7539aa9a830960f3c7ef1")


def test_open311_key_made_ids_are_pinned() -> None:
    assert keyed_external_id("client-a", "1001") == (
        "client-a:open311:sha256:"
        "570b95d3da0050ca3862d37669748b3d43f8ec36d28a8606e378784dab852f72")
    assert keyed_external_id("клиент", "k" * 180) == (
        "клиент:open311:sha256:5261617d2b52bf97343a6f08ad6b3cc3362b8cee4249df95dc87eda00bd0ff11")
