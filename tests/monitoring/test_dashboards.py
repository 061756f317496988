"""Grafana dashboards and alert rules only query metrics the workers export.

Every PromQL expression in the dashboards (panel targets and variable queries) and in the
Prometheus rules is read by :mod:`promql_names`; each series name must be exported by the code
(:data:`monitoring.metrics.METRIC_NAMES`), be a recording rule of ours, or be ``up``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from monitoring_support import MONITORING
from promql_names import PromQLSyntaxError, metric_names, template_query_names, unknown_names

from monitoring.metrics import METRIC_NAMES

GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULE_FILES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
EXPECTED = {"pipeline-health.json", "sla-breaches.json", "authority-rating.json"}
BUILTIN = {"up"}


def _rules() -> Iterator[dict]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


RECORDED = {r["record"] for r in _rules() if "record" in r}
KNOWN = METRIC_NAMES | RECORDED | BUILTIN


def _datasource_uid() -> str:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    return source["uid"]


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows may nest panels


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _dashboard_exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]


def _variable_queries(dashboard: dict) -> Iterator[tuple[str, str]]:
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            yield f"variable {var['name']!r}", query


# ---------------------------------------------------------------- the checker itself


def test_checker_reads_names_not_functions_labels_or_keywords():
    expr = (
        "histogram_quantile(0.99, sum by (stage, le) (rate(appeals_stage_latency_seconds_bucket"
        '{stage=~"$stage", job="appeals-worker"}[$__rate_interval] offset 5m)))'
        " / on (stage) group_left (instance) max without (le) (stage:my:recorded)"
        " and ignoring (x) up > bool 1e3"
    )
    assert metric_names(expr) == {
        "appeals_stage_latency_seconds_bucket", "stage:my:recorded", "up"
    }  # fmt: skip
    assert metric_names('{__name__="appeals_open", authority="22-minzhkh"}') == {"appeals_open"}
    assert metric_names("rate(appeals_received_total[5m:30s]) unless appeals_open") == {
        "appeals_received_total", "appeals_open"
    }  # fmt: skip


def test_checker_catches_an_unknown_metric():
    # A typo and a name that is not exported (the counter is exported with its _total suffix).
    exprs = [
        "sum(rate(appeals_recieved_total[5m]))",
        'sum by (authority) (appeals_open{authority=~"$authority"})',
        "rate(appeals_answered[5m])",
    ]
    assert unknown_names(exprs, KNOWN) == {
        "sum(rate(appeals_recieved_total[5m]))": {"appeals_recieved_total"},
        "rate(appeals_answered[5m])": {"appeals_answered"},
    }


def test_checker_reads_variable_queries():
    assert template_query_names("label_values(appeals_open, authority)") == {"appeals_open"}
    assert template_query_names("label_values(authority)") == set()
    assert template_query_names("query_result(topk(5, appeals_opn))") == {"appeals_opn"}


def test_checker_rejects_unbalanced_expressions():
    with pytest.raises(PromQLSyntaxError):
        metric_names('appeals_open{authority="x"')


# ---------------------------------------------------------------- the dashboards


def test_expected_dashboards_exist():
    assert {p.name for p in DASHBOARDS} >= EXPECTED


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_exported_metrics(path):
    dashboard = _load(path)
    exprs = dict(_dashboard_exprs(dashboard))
    assert exprs, f"{path.name} has no queries"
    bad = {where: metric_names(e) - KNOWN for where, e in exprs.items() if metric_names(e) - KNOWN}
    for where, query in _variable_queries(dashboard):
        missing = template_query_names(query) - KNOWN
        if missing:
            bad[where] = missing
    assert bad == {}, f"{path.name}: unknown metrics (not in monitoring/metrics.py or rules)"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path):
    dashboard = _load(path)
    uid = _datasource_uid()
    assert dashboard["uid"] and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["panels"]
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: set[tuple[int, int]] = set()
    for panel in _panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == uid, panel["title"]
    for var in dashboard.get("templating", {}).get("list", []):
        if var["type"] == "query":
            assert var["datasource"]["uid"] == uid, var["name"]


def test_dashboard_uids_unique():
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_dashboard_provider_points_at_mounted_folder():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# ---------------------------------------------------------------- the rules


def test_rule_expressions_use_exported_metrics():
    exprs = [r["expr"] for r in _rules()]
    assert exprs
    assert unknown_names(exprs, KNOWN) == {}


def test_recording_rules_follow_naming_convention():
    # level:metric:operations (Prometheus recording-rule naming)
    for name in RECORDED:
        assert name.count(":") == 2, name
        assert name not in METRIC_NAMES, name


# ---------------------------------------------------------------- what panels count


def _metric_labels() -> dict[str, frozenset[str]]:
    """Label names of every exported series name (a counter's ``_total`` too)."""
    from prometheus_client.metrics import MetricWrapperBase

    from monitoring import metrics

    out: dict[str, frozenset[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            names = frozenset(obj._labelnames)
            out[obj._name] = names
            out[f"{obj._name}_total"] = names
    return out


def test_alert_deliveries_are_never_summed_over_channels():
    """One alert is one log line plus one delivery per webhook and Alertmanager: a sum over
    every channel counted each alert two or three times ("notifications sent")."""
    bad = []
    for path in DASHBOARDS:
        for where, expr in _dashboard_exprs(_load(path)):
            if "appeals_notifications_total" not in metric_names(expr):
                continue
            per_channel = re.search(r"\bby\s*\([^)]*\bchannel\b", expr) is not None
            one_channel = re.search(r'\bchannel\s*=\s*"[^"]+"', expr) is not None
            if not (per_channel or one_channel):
                bad.append(f"{path.name}: {where}")
    assert bad == []


def test_breach_panels_count_the_same_breaches_of_the_selected_authorities():
    """"Breaches, last 24h" counted every stage's breaches of every authority while "Breaches
    per authority" beside it counts answer breaches of the authorities chosen in $authority."""
    dashboard = _load(GRAFANA / "dashboards" / "sla-breaches.json")
    assert "authority" in {v["name"] for v in dashboard["templating"]["list"]}
    panels = [p for p in _panels(dashboard["panels"]) if p["title"].startswith("Breaches")]
    assert len(panels) >= 2
    for panel in panels:
        for target in panel["targets"]:
            assert metric_names(target["expr"]) == {"appeals_sla_breaches_total"}, panel["title"]
            assert 'authority=~"$authority"' in target["expr"], panel["title"]


def test_authority_series_honour_the_authority_variable():
    """On a dashboard with an ``authority`` variable, a query of a series that has an
    ``authority`` label selects the authorities chosen."""
    labels = _metric_labels()
    bad = []
    for path in DASHBOARDS:
        dashboard = _load(path)
        if "authority" not in {v["name"] for v in dashboard.get("templating", {}).get("list", [])}:
            continue
        for where, expr in _dashboard_exprs(dashboard):
            names = metric_names(expr)
            by_authority = any("authority" in labels.get(n, ()) or n.startswith("authority:")
                               for n in names)
            if by_authority and "$authority" not in expr:
                bad.append(f"{path.name}: {where}")
    assert bad == []
