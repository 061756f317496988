"""Fixtures for routing tests: the packaged demo rules, loaded once per session."""

from __future__ import annotations

import pytest

from workers.routing import Router, RoutingRules, load_rules
from workers.routing.loader import PACKAGED_DATA


@pytest.fixture(scope="session")
def demo_rules() -> RoutingRules:
    return load_rules(PACKAGED_DATA)


@pytest.fixture()
def router(demo_rules: RoutingRules) -> Router:
    return Router(demo_rules)


@pytest.fixture(scope="session")
def demo_yaml() -> str:
    return (PACKAGED_DATA / "22-altai-krai.yaml").read_text(encoding="utf-8")
