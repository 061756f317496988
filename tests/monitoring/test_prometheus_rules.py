"""Prometheus config and alert rules: promtool checks, rule unit tests, rule hygiene."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from monitoring_support import MONITORING, run_tool

PROM = MONITORING / "prometheus"
CONFIG = PROM / "prometheus.yml"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
SEVERITIES = {"warning", "critical", "page"}
# Labels an annotation may print: ids of bounded things, never of appeals or people.
PRINTABLE_LABELS = {"instance", "job", "topic", "partition", "stage", "reason", "regime",
                    "authority", "level", "channel", "category", "window",
                    "patch"}  # fmt: skip


def _rel(path: Path) -> str:
    return str(path.relative_to(MONITORING.parent))


def _alert_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def test_files_exist():
    assert RULE_FILES, "no rule files in monitoring/prometheus/rules"
    assert TEST_FILES, "no promtool test files in monitoring/prometheus/tests"


def test_promtool_check_config(promtool):
    out = run_tool(promtool, "check", "config", _rel(CONFIG))
    assert "SUCCESS" in out.stdout + out.stderr


def test_config_loads_every_rule_file():
    config = yaml.safe_load(CONFIG.read_text())
    loaded = {p for pattern in config["rule_files"] for p in CONFIG.parent.glob(pattern)}
    assert loaded == set(RULE_FILES)


def test_config_scrapes_both_workers():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for sc in jobs["appeals-worker"]["static_configs"] for t in sc["targets"]}
    assert targets == {"worker-1:9464", "worker-2:9464"}
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


def test_config_scrapes_the_intake_gateway():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    gateway = jobs["appeals-gateway"]
    assert gateway.get("metrics_path", "/metrics") == "/metrics"
    assert [t for sc in gateway["static_configs"] for t in sc["targets"]] == ["gateway:8081"]


def test_promtool_check_rules(promtool):
    run_tool(promtool, "check", "rules", *map(_rel, RULE_FILES))


def test_promtool_rule_unit_tests(promtool):
    out = run_tool(promtool, "test", "rules", *map(_rel, TEST_FILES))
    assert "FAILED" not in out.stdout + out.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in _alert_rules()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - quiet == set(), "alerts without a not-firing test case"
    assert (firing | quiet) - names == set(), "tests for alerts that do not exist"


def test_alerts_have_severity_and_clean_annotations():
    rules = _alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        for text in annotations.values():
            used = set(re.findall(r"\$labels\.(\w+)", text))
            assert used <= PRINTABLE_LABELS, f"{name} prints labels {used - PRINTABLE_LABELS}"
            assert "$externalLabels" not in text, name


def test_promtool_check_metrics_on_the_catalogue(promtool):
    # The exposition of monitoring/metrics.py passes promtool's naming lint. (The same check on
    # a live worker's /metrics scrape belongs with the end-to-end tests that run a worker.)
    from prometheus_client import generate_latest

    from monitoring.metrics import API_REGISTRY, GATEWAY_REGISTRY, REGISTRY

    # the workers', the intake gateway's, the API's own
    for registry in (REGISTRY, GATEWAY_REGISTRY, API_REGISTRY):
        proc = subprocess.run(
            [promtool, "check", "metrics"],
            input=generate_latest(registry),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()


def test_gateway_metrics_are_in_the_catalogue_and_apart_from_the_workers():
    # Dashboards and rules may name the gateway's metrics (METRIC_NAMES), but a worker's scrape
    # does not carry them, nor the gateway's a worker's (appeals_worker_up would read 0).
    from prometheus_client import generate_latest

    from monitoring.metrics import GATEWAY_REGISTRY, METRIC_NAMES, REGISTRY

    gateway = {m.name for m in GATEWAY_REGISTRY.collect()}
    assert {"appeals_gateway_requests_total", "appeals_gateway_request_duration_seconds_bucket",
            "appeals_gateway_appeals_total",
            "appeals_gateway_kafka_last_ack_timestamp_seconds"} <= METRIC_NAMES
    assert gateway.isdisjoint(m.name for m in REGISTRY.collect())
    assert b"appeals_gateway_" not in generate_latest(REGISTRY)
    assert b"appeals_worker_up" not in generate_latest(GATEWAY_REGISTRY)
