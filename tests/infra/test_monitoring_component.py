"""The Kubernetes monitoring component (infra/k8s/monitoring): PodMonitors for every service,
the alert rules as a PrometheusRule identical to infra/prometheus/rules.yml, the
Alertmanager configuration as the Operator's Secret, and the Grafana dashboards as
ConfigMaps labelled for Grafana's sidecar - each generated file current, each custom
resource valid against its upstream CRD."""
import base64
import importlib.util
import json
import shutil
import subprocess

import pytest
import yaml

from recsys.tools.kustomize import documents, render
from tests.conftest import REPO
from tests.infra import crd_schemas

INFRA = REPO / "infra"
FOLDER = INFRA / "k8s" / "monitoring"


def manifests_module():
    spec = importlib.util.spec_from_file_location("monitoring_manifests",
                                                  INFRA / "monitoring_manifests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered() -> dict[tuple[str, str], dict]:
    return {(r["kind"], r["metadata"]["name"]): r for r in render(FOLDER)}


def test_the_generated_files_are_current():
    expected = manifests_module().expected_files()
    on_disk = {str(p.relative_to(FOLDER)): p.read_text()
               for folder in ("dashboards", "alertmanager") for p in (FOLDER / folder).iterdir()}
    on_disk["prometheus-rule.yaml"] = (FOLDER / "prometheus-rule.yaml").read_text()
    assert set(on_disk) == set(expected), "run python3 infra/monitoring_manifests.py"
    for name, content in expected.items():
        assert on_disk[name] == content, \
            f"{name} is stale: run python3 infra/monitoring_manifests.py"


def test_the_prometheus_rule_holds_exactly_the_shipped_rules():
    rule = rendered()[("PrometheusRule", "recsys")]
    shipped = yaml.safe_load((INFRA / "prometheus" / "rules.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
    assert len([r for g in rule["spec"]["groups"] for r in g["rules"]]) == 16


@pytest.mark.skipif(not crd_schemas.available(),
                    reason=f"the upstream CRDs are not at {crd_schemas.CRDS}")
def test_every_monitoring_resource_validates_against_its_crd():
    custom = [r for r in render(FOLDER) if crd_schemas.known(r)]
    assert sorted((r["kind"], r["metadata"]["name"]) for r in custom) == [
        ("PodMonitor", "recsys-collector"), ("PodMonitor", "recsys-serving"),
        ("PodMonitor", "recsys-stream-workers"), ("PrometheusRule", "recsys")]
    for resource in custom:
        crd_schemas.validate(resource)


def test_each_pod_monitor_keeps_the_job_name_the_rules_use():
    """The Operator names a PodMonitor's job `namespace/name`; the rules and dashboards use
    the jobs of prometheus.yml (RecsysTargetDown matches job=~"recsys-.*")."""
    config = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for monitor in documents(FOLDER / "pod-monitors.yaml"):
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        job = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        assert job == [monitor["metadata"]["name"]]
        assert endpoint["path"] == jobs[job[0]]["metrics_path"]


def test_the_serving_pod_monitor_selects_the_seldon_servers_pods_on_the_recsys_port():
    monitor = rendered()[("PodMonitor", "recsys-serving")]
    [server] = [d for d in documents(INFRA / "seldon" / "server.yaml") if d["kind"] == "Server"]
    policies = documents(INFRA / "seldon" / "network-policy.yaml")
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected == {"seldon-server-name": server["metadata"]["name"]}
    assert any(p["spec"]["podSelector"]["matchLabels"] == selected for p in policies)
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"]
             for p in server["spec"]["podSpec"]["containers"][0]["ports"]}
    assert (endpoint["port"], ports[endpoint["port"]], endpoint["path"]) == \
        ("http", 8080, "/recsys/metrics")
    assert endpoint["authorization"]["credentials"] == {"name": "recsys-metrics-token",
                                                         "key": "token"}


def test_every_dashboard_is_a_configmap_labelled_for_grafana():
    maps = {name: r for (kind, name), r in rendered().items() if kind == "ConfigMap"}
    dashboards = sorted((INFRA / "grafana").glob("*.json"))
    assert len(maps) == len(dashboards) == 3
    for path in dashboards:
        [config_map] = [m for m in maps.values() if path.name in m["data"]]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == "monitoring"
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_the_alertmanager_secret_holds_a_valid_config_and_its_template(tmp_path):
    secret = rendered()[("Secret", "alertmanager-recsys")]
    files = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(files) == {"alertmanager.yaml", "recsys.tmpl"}
    assert files["recsys.tmpl"] == (INFRA / "alertmanager" / "templates" / "recsys.tmpl"
                                    ).read_text()
    config = yaml.safe_load(files["alertmanager.yaml"])
    shipped = yaml.safe_load((INFRA / "alertmanager" / "alertmanager.yml").read_text())
    assert config["templates"] == ["/etc/alertmanager/config/*.tmpl"]  # the Operator's mount
    assert {**config, "templates": shipped["templates"]} == shipped
    (tmp_path / "alertmanager.yaml").write_text(files["alertmanager.yaml"])
    checked = subprocess.run(["amtool", "check-config", str(tmp_path / "alertmanager.yaml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_renderer_prints_what_kubectl_kustomize_prints():
    printed = subprocess.run(["kubectl", "kustomize", str(FOLDER)], capture_output=True,
                             text=True, timeout=120, check=True).stdout
    theirs = {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(printed) if r}
    assert rendered() == theirs
