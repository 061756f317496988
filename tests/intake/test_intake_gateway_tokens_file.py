"""A token in APPEALS_GATEWAY_TOKENS_FILE is stripped, as APPEALS_GATEWAY_TOKENS' tokens are.

The Authorization header's token is stripped (``streams.http_auth.bearer_token``), so a token
written with surrounding whitespace (``" t1"``, a multi-line TOML string ending in a newline)
could never match, and start-up said nothing of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import ConfigError, Settings
from workers.intake.gateway import Gateway, GatewayConfig


def _config(tmp_path: Path, body: str) -> GatewayConfig:
    toml = tmp_path / "tokens.toml"
    toml.write_text(body, encoding="utf-8")
    return GatewayConfig.load(Settings.load({}), {"APPEALS_GATEWAY_TOKENS_FILE": str(toml)})


def test_a_token_with_surrounding_whitespace_authenticates(tmp_path: Path) -> None:
    cfg = _config(tmp_path, '[clients.app]\ntoken = "  secret-token-1 "\n'
                            '[clients.site]\ntoken = """\nsecret-token-2\n"""\n')
    assert {c.id: c.token for c in cfg.clients} == {"app": "secret-token-1",
                                                     "site": "secret-token-2"}
    gw = Gateway(Settings.load({}), cfg, producer=object(), redis=object())
    assert gw.client_for_token("secret-token-1").id == "app"
    assert gw.client_for_token("secret-token-2").id == "site"


def test_a_blank_token_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, '[clients.app]\ntoken = "   "\n')
    assert "clients.app.token is blank" in str(err.value)
