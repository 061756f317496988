"""Static checks that alertmanager.yml points at things that exist: every authority it routes
is an authority of the packaged routing rules, and every receiver URL's host is a service of
docker/compose.yaml (so the compose stack delivers somewhere)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import yaml
from monitoring_support import MONITORING, REPO

from workers.routing.loader import PACKAGED_DATA, load_rules

CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
COMPOSE = REPO / "docker" / "compose.yaml"
AUTHORITY_MATCHER = re.compile(r'^authority\s*=\s*"([^"]+)"$')


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def _urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "url" and isinstance(value, str):
                yield value
            else:
                yield from _urls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _urls(item)


def test_routed_authorities_exist_in_the_packaged_routing_rules() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    routed = set()
    for route in _routes(config["route"]):
        for matcher in route.get("matchers", []):
            match = AUTHORITY_MATCHER.match(matcher.strip())
            if match:
                routed.add(match.group(1))
        if "authority" in route.get("match", {}):  # the older matcher syntax
            routed.add(route["match"]["authority"])
    assert routed, "no per-authority routes found: did the matcher syntax change?"
    known = set(load_rules(PACKAGED_DATA).authorities)
    assert routed - known == set(), f"routes for unknown authorities (ids in {PACKAGED_DATA})"
    # Receivers named after an authority post to that authority's hook.
    for receiver in config["receivers"]:
        for url in _urls(receiver):
            path = urlsplit(url).path
            if path.startswith("/hooks/authority/"):
                assert path.rsplit("/", 1)[1] in known, url


def test_receiver_url_hosts_are_compose_services() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    services = set(yaml.safe_load(COMPOSE.read_text())["services"])
    urls = list(_urls(config["receivers"]))
    assert urls
    for url in urls:
        host = urlsplit(url).hostname
        assert host in services, f"{url}: {host!r} is not a service of {COMPOSE.name}"
