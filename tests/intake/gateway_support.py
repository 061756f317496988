"""Running the gateway for a test: a real aiohttp server on a free port, real Kafka and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from streams.settings import Settings
from tests.intake.fakes import HARNESS_NOW
from workers.intake.gateway import Client, GatewayConfig, create_app, runner_options

TOKENS = {"pos-platform": "tok-pos-1", "city-app": "tok-city-2", "hotline": "tok-hot-3"}


def canon_appeal(external_id: str = "gw-1", **fields: Any) -> dict[str, Any]:
    """A valid appeal in the canonical intake shape (a pos message with an author's phone)."""
    event = {
        "schema_version": 1, "channel": "pos", "external_id": external_id,
        "submitted_at": "2025-01-14T08:00:00+07:00", "region": "22",
        "text": "Нет отопления в доме", "author": {"phone": "8 913 000 77 01"},
    }
    event.update(fields)
    return event


def gateway_config(**changes: Any) -> GatewayConfig:
    clients = [Client(id=cid, token=tok) for cid, tok in TOKENS.items()]
    # The federal platform's connector owns the pos id space (its ids name appeals as sent);
    # the other clients' explicit ids are scoped by the client.
    clients[0] = Client(id="pos-platform", token=TOKENS["pos-platform"],
                        id_owner=frozenset({"pos"}))
    clients[2] = Client(id="hotline", token=TOKENS["hotline"], channels=frozenset({"hotline"}))
    base: dict[str, Any] = {"clients": tuple(clients), "create_topics": False,
                            "rate": 1000.0, "burst": 1000, "send_timeout": 15.0}
    base.update(changes)
    return GatewayConfig(**base)


@contextlib.asynccontextmanager
async def gateway_client(settings: Settings, config: GatewayConfig | None = None,
                         now: datetime = HARNESS_NOW) -> AsyncIterator[TestClient]:
    """``now``: the gateway's clock (the agent harness's, so the January 2025 samples stay
    within APPEALS_INTAKE_MAX_AGE)."""
    app = create_app(settings, config or gateway_config(), now=lambda: now)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(**runner_options())  # TestServer() drops runner kwargs
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def auth(client_id: str = "pos-platform") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client_id]}"}
