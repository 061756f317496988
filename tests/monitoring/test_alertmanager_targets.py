"""Static checks that alertmanager.yml points at things that exist: every authority it names
is an authority of the packaged routing rules, every authority of those rules is routed to a
receiver of its supervisors, and every receiver URL's host is a service of
docker/compose.yaml (so the compose stack delivers somewhere)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import yaml
from monitoring_support import MONITORING, REPO, run_tool

from workers.routing.loader import PACKAGED_DATA, load_rules

CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
COMPOSE = REPO / "docker" / "compose.yaml"
AUTHORITY_MATCHER = re.compile(r'^authority\s*=\s*"([^"]+)"$')
#: The supervisors' hook of the notify gateway (workers/notify/webhook_sink.py): one path for
#: every authority, which the gateway reads from the notification's groupLabels.authority.
AUTHORITY_HOOK = "/hooks/authority"


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
    """A route or receiver naming one authority names one of the packaged rules (the shipped
    config routes every authority by one regex route; a deployment may add its own)."""
    config = yaml.safe_load(CONFIG.read_text())
    routed = set()
    for route in _routes(config["route"]):
        for matcher in route.get("matchers", []):
            match = AUTHORITY_MATCHER.match(matcher.strip())
            if match:
                routed.add(match.group(1))
        if "authority" in route.get("match", {}):  # the older matcher syntax
            routed.add(route["match"]["authority"])
    known = set(load_rules(PACKAGED_DATA).authorities)
    assert routed - known == set(), f"routes for unknown authorities (ids in {PACKAGED_DATA})"
    for receiver in config["receivers"]:
        for url in _urls(receiver):
            path = urlsplit(url).path
            if path.startswith(f"{AUTHORITY_HOOK}/"):
                assert path.rsplit("/", 1)[1] in known, url


# ------------------------------------------------- every authority reaches its supervisors

MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def _matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    """Alertmanager's matchers (``matchers`` and the older ``match``/``match_re``) on
    ``labels``; a missing label is the empty string, a regex must match the whole value."""
    checks: list[tuple[str, str, str]] = []
    for text in route.get("matchers", []):
        found = MATCHER.match(text)
        assert found, f"matcher not understood: {text}"
        name, op, value = found.groups()
        checks.append((name, op, value.replace('\\"', '"').replace("\\\\", "\\")))
    checks += [(name, "=", value) for name, value in route.get("match", {}).items()]
    checks += [(name, "=~", value) for name, value in route.get("match_re", {}).items()]
    for name, op, value in checks:
        got = labels.get(name, "")
        ok = {"=": got == value, "!=": got != value,
              "=~": re.fullmatch(value, got) is not None,
              "!~": re.fullmatch(value, got) is None}[op]
        if not ok:
            return False
    return True


def receivers_for(route: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The receivers Alertmanager's routing tree gives ``labels`` (what ``amtool config routes
    test`` prints): the deepest matching routes, siblings after one with ``continue``."""
    found: list[str] = []
    for child in route.get("routes", []):
        if _matches(child, labels):
            found += receivers_for({"receiver": route["receiver"], **child}, labels)
            if not child.get("continue", False):
                break
    return found or [route["receiver"]]


def _supervisors_receivers(config: dict[str, Any], authority: str) -> set[str]:
    """Receivers that reach ``authority``'s supervisors: every URL is the supervisors' hook
    keyed by the notification's authority, or the hook of that authority itself."""
    hooks = {AUTHORITY_HOOK, f"{AUTHORITY_HOOK}/{authority}"}
    return {r["name"] for r in config["receivers"]
            if (urls := list(_urls(r))) and all(urlsplit(u).path in hooks for u in urls)}


#: How each kind of alert about an authority reaches Alertmanager (labels besides authority),
#: and who else must get it.
AUTHORITY_ALERTS = [
    ({"alertname": "AppealSlaWarning", "severity": "warning", "regime": "fz59"}, set()),
    ({"alertname": "AppealSlaBreach", "severity": "critical", "regime": "pos"}, set()),
    ({"alertname": "AppealSlaEscalation", "severity": "page", "regime": "fz59"},
     {"regional-situation-centre-escalations"}),
    ({"alertname": "AppealsAuthorityBreachRateHigh", "severity": "critical"}, set()),
]


def _authorities() -> list[str]:
    authorities = sorted(load_rules(PACKAGED_DATA).authorities)
    assert len(authorities) > 30, "the packaged rules' authorities were read"
    return authorities


def test_every_packaged_authority_is_routed_to_its_supervisors() -> None:
    """Only four demo authorities had a route: the other 37 authorities' SLA alerts went to the
    regional situation centre, not to their supervisors (README: alerts are routed by
    authority to that authority's supervisors)."""
    config = yaml.safe_load(CONFIG.read_text())
    wrong = []
    for authority in _authorities():
        supervisors = _supervisors_receivers(config, authority)
        for labels, also in AUTHORITY_ALERTS:
            got = receivers_for(config["route"], {**labels, "authority": authority})
            if not (set(got) & supervisors) or set(got) - supervisors != also:
                wrong.append(f"{labels['alertname']} of {authority} -> {got}")
    assert not wrong, "\n".join(wrong)


def test_amtool_routes_every_packaged_authority_as_evaluated(amtool: str) -> None:
    """The same through ``amtool config routes test``, which is also a check of the Python
    evaluation of the routing tree above."""
    config = yaml.safe_load(CONFIG.read_text())
    rel = str(CONFIG.relative_to(REPO))
    for authority in _authorities():
        labels = {"alertname": "AppealSlaBreach", "severity": "critical", "authority": authority}
        out = run_tool(amtool, "config", "routes", "test", f"--config.file={rel}",
                       *(f"{k}={v}" for k, v in labels.items()))
        got = out.stdout.strip().split(",")
        assert got == receivers_for(config["route"], labels), authority
        assert set(got) <= _supervisors_receivers(config, authority), (authority, got)
    # The evaluation agrees on the alerts that are not about an authority, too.
    for labels in ({"alertname": "AppealsWorkerDown", "team": "platform"},
                   {"alertname": "AppealsOnTimeSLOFastBurn", "slo": "on-time-answering"},
                   {"alertname": "AppealsTriageWaiting", "severity": "warning"},
                   {"alertname": "AppealSlaEscalation", "authority": "22-vet"}):
        out = run_tool(amtool, "config", "routes", "test", f"--config.file={rel}",
                       *(f"{k}={v}" for k, v in labels.items()))
        assert out.stdout.strip().split(",") == receivers_for(config["route"], labels), labels


def test_receiver_url_hosts_are_compose_services() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    services = set(yaml.safe_load(COMPOSE.read_text())["services"])
    urls = list(_urls(config["receivers"]))
    assert urls
    for url in urls:
        host = urlsplit(url).hostname
        assert host in services, f"{url}: {host!r} is not a service of {COMPOSE.name}"
