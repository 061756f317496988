"""docker/compose.yaml against the Compose Specification JSON Schema, plus the wiring the
monitoring relies on (service names, healthchecks, mounts, worker replicas)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from monitoring_support import MONITORING, REPO

COMPOSE = REPO / "docker" / "compose.yaml"
# Vendored from the docker-compose 1.29.2 wheel (compose/config/compose_spec.json): the Compose
# Specification schema as published by the compose-spec project in 2021.
SCHEMA = Path(__file__).with_name("compose-spec.schema.json")
SERVICES = {"kafka", "redis", "prometheus", "alertmanager", "grafana", "worker-1", "worker-2",
            "api", "notify-gateway", "gateway"}
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the x-worker anchors and merges


#: ``${VAR:?message}`` and ``${VAR?message}``: Compose refuses to start without ``VAR``.
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
#: Documents whose shell blocks start the stack.
GUIDES = (REPO / "README.md", MONITORING / "README.md")


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _errors(validator, document) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_matches_the_specification(validator, compose):
    assert _errors(validator, compose) == []


def test_schema_rejects_a_broken_file(validator, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["kafka"]["depends_on"] = {"redis": {"condition": "when_ready"}}
    errors = _errors(validator, broken)
    assert any("intervall" in e for e in errors), errors
    assert any("when_ready" in e for e in errors), errors


def test_services_and_healthchecks(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy", name


def test_workers(compose):
    services = compose["services"]
    for name in WORKERS:
        worker = services[name]
        assert worker["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        env = worker["environment"]
        assert env["APPEALS_KAFKA"] == "kafka://kafka:9092"
        assert env["APPEALS_REDIS"] == "redis://redis:6379/0"
        assert env["APPEALS_ALERTMANAGER_URL"] == "http://alertmanager:9093"
        assert set(worker["depends_on"]) >= {"kafka", "redis"}
        # Durable state on a volume of the worker's own (RocksDB locks its directory).
        assert env["APPEALS_STORE"] == "rocksdb://"
        # No published salt: compose refuses to start without one (phones in Redis keys).
        assert env["APPEALS_NEAR_DUP_SALT"].startswith("${APPEALS_NEAR_DUP_SALT:?"), name
        mounts = [v.split(":")[1] for v in worker["volumes"]]
        assert any(env["APPEALS_DATA_DIR"].startswith(m) for m in mounts)
    volumes = [services[name]["volumes"][0].split(":")[0] for name in WORKERS]
    assert len(set(volumes)) == len(WORKERS)
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "appeals-worker")
    port = services[WORKERS[0]]["environment"]["APPEALS_METRICS_PORT"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{port}" for name in WORKERS}


def test_the_readme_states_the_workers_stop_grace(compose):
    """README said `docker compose stop` gives a worker "the default 10 s grace" to stop
    cleanly (and keep its table state), while compose gives it stop_grace_period: 30s."""
    graces = {compose["services"][name]["stop_grace_period"] for name in WORKERS}
    assert len(graces) == 1
    seconds = int(re.fullmatch(r"(\d+)s", graces.pop()).group(1))
    readme = " ".join((REPO / "README.md").read_text().split())
    stated = re.findall(r"\(`docker compose stop`[^)]*?(\d+) s\b", readme)
    assert stated and all(int(s) == seconds for s in stated), stated


def test_the_webhook_sink_stops_on_sigterm(compose):
    """The sink sets no SIGTERM handler and PID 1 ignores unhandled signals: an init runs it."""
    assert compose["services"]["notify-gateway"]["init"] is True


def test_kafka_is_single_node_kraft(compose):
    kafka = compose["services"]["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka"
    assert tuple(map(int, tag.split(".")[:2])) >= (3, 9)
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_redis_appendonly(compose):
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert "--appendonly" in redis["command"]


def test_bind_mounts_exist_in_the_repository(compose):
    mounts = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name}: {source}"
                mounts[target] = path
    assert mounts["/etc/prometheus"] == MONITORING / "prometheus"
    assert mounts["/etc/alertmanager"] == MONITORING / "alertmanager"
    assert mounts["/etc/grafana/provisioning"] == MONITORING / "grafana" / "provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == MONITORING / "grafana" / "dashboards"


def test_dockerfile():
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert 'ENTRYPOINT ["appeals", "worker"]' in text
    assert "EXPOSE 9464" in text
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].split()[1].startswith(("root", "0"))


def test_api_service_is_scraped(compose):
    """The API process computes the rating and on-time gauges: Prometheus must scrape it."""
    api = compose["services"]["api"]
    assert api["entrypoint"][:2] == ["appeals", "api"]
    port = api["entrypoint"][api["entrypoint"].index("--port") + 1]
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "appeals-api")
    assert {t for sc in job["static_configs"] for t in sc["targets"]} == {f"api:{port}"}


def test_every_scrape_target_is_a_compose_service(compose):
    """Prometheus scrapes hosts the stack runs (the gateway's target pointed at nothing)."""
    config = yaml.safe_load((REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    hosts = {target.rsplit(":", 1)[0]
             for job in config["scrape_configs"]
             for static in job.get("static_configs", [])
             for target in static["targets"]}
    assert "gateway" in hosts
    assert hosts - {"localhost", "127.0.0.1"} <= set(compose["services"])


def _compose_up_blocks(text: str) -> list[str]:
    """The fenced shell blocks of a Markdown text that run ``docker compose ... up``."""
    blocks = re.findall(r"^```(?:sh|bash|shell)?\n(.*?)^```", text, re.M | re.S)
    return [b for b in blocks if re.search(r"docker compose\b[^\n]*\sup\b", b)]


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_stack_start_sets_the_required_variables(guide: Path) -> None:
    """monitoring/README.md's "Stack" step exported GRAFANA_ADMIN_PASSWORD only, and compose
    refused to start for want of APPEALS_NEAR_DUP_SALT: a command copied from the docs must
    set every variable compose.yaml requires."""
    required = set(REQUIRED_VARIABLE.findall(COMPOSE.read_text()))
    assert required >= {"GRAFANA_ADMIN_PASSWORD", "APPEALS_NEAR_DUP_SALT"}
    blocks = _compose_up_blocks(guide.read_text())
    assert blocks, f"{guide.name}: no shell block runs docker compose up"
    for block in blocks:
        exported = set(re.findall(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=", block, re.M))
        missing = sorted(required - exported)
        assert not missing, f"{guide.relative_to(REPO)}: docker compose up without {missing}"


def test_prometheus_scrapes_the_gateway_on_the_port_it_listens_on(compose):
    """The gateway's default port (8081: the API has 8080), in the container and published."""
    from workers.intake.gateway import GatewayConfig

    gateway = compose["services"]["gateway"]
    port = gateway["entrypoint"][gateway["entrypoint"].index("--port") + 1]
    assert int(port) == GatewayConfig().port
    assert gateway["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in gateway["healthcheck"]["test"][-1]
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "appeals-gateway")
    assert {t for sc in job["static_configs"] for t in sc["targets"]} == {f"gateway:{port}"}
