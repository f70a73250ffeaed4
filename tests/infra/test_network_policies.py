"""Reachability under the NetworkPolicies of the rendered overlays: every intended flow is
admitted, and every other connection between the namespace's pods (and from the outside
namespaces modelled here) is refused. Computed over the pods the manifests make (workload
templates; the pods Seldon's operator and KServe make for Server and InferenceService, with
the labels those operators give them) by tests/infra/network_policy.py."""
import json

import pytest
import yaml

from recsys.tools.kustomize import render
from tests.conftest import REPO
from tests.infra.network_policy import Pod, admits

K8S = REPO / "infra" / "k8s"
NAMESPACE = "recsys"
SERVING = json.loads((REPO / "serving/model_repository/settings.json").read_text())
METRICS_PORT, HTTP_PORT = SERVING["metrics_port"], SERVING["http_port"]
OUTSIDE = [Pod("ingress", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
           Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
           Pod("pipeline-step", "kubeflow", {"pipelines.kubeflow.org/v2_component": "true"}),
           Pod("seldon-operator", "seldon-system", {"control-plane": "seldon-controller"}),
           Pod("stranger", "default", {"app": "anything"})]
EXTERNAL = [Pod("s3", "external", {}, {443: "https"}),
            Pod("feast-registry-postgres", "external", {}, {5432: "postgres"}),
            Pod("online-store-redis", "external", {}, {6379: "redis"})]
WORKERS = ["recsys-processor", "recsys-lake-sink", "recsys-quarantine-sink"]
BASE_FLOWS = {("ingress", "recsys-collector", 8090), ("prometheus", "recsys-collector", 8090),
              *(("prometheus", worker, 9102) for worker in WORKERS),
              *((client, "recsys-redis-bus", 6379) for client in ["recsys-collector", *WORKERS]),
              ("pipeline-step", "recsys-mlflow", 5000),
              # the Spark data job's driver and executors talk to each other on any port
              *((a, b, None) for a in ("spark-driver", "spark-executor")
                for b in ("spark-driver", "spark-executor"))}
SELDON_FLOWS = {("ingress", "seldon-envoy", 9000),
                ("seldon-envoy", "recsys-mlserver", None),  # routes requests, mirrors
                ("seldon-scheduler", "recsys-mlserver", None),  # drives the agent
                ("recsys-mlserver", "recsys-mlserver", 8080),  # arm -> arm, by URL
                ("recsys-mlserver", "recsys-mlserver", 8081),
                ("recsys-mlserver", "seldon-envoy", 9000),  # arm -> arm, through the mesh
                ("prometheus", "recsys-mlserver", METRICS_PORT),
                ("prometheus", "recsys-mlserver", HTTP_PORT),  # /recsys/metrics
                ("prometheus", "seldon-envoy", 9003),
                ("recsys-mlserver", "recsys-mlflow", 5000),
                ("seldon-operator", "seldon-scheduler", None),
                ("seldon-envoy", "seldon-scheduler", None),
                ("recsys-mlserver", "seldon-scheduler", None)}
KSERVE_FLOWS = {("ingress", "recsys-predictor", 8080),
                ("recsys-predictor", "recsys-predictor", 8080),  # arm -> arm
                ("prometheus", "recsys-predictor", METRICS_PORT),
                ("prometheus", "recsys-predictor", HTTP_PORT),  # /recsys/metrics
                ("recsys-predictor", "recsys-mlflow", 5000)}


def _ports(containers: list[dict]) -> dict:
    return {p["containerPort"]: p.get("name", "") for c in containers for p in c.get("ports", [])}


def namespace_pods(resources: list[dict]) -> list[Pod]:
    """The pods of the namespace, with the labels and container ports they run with."""
    pods = []
    for resource in resources:
        kind, name = resource["kind"], resource["metadata"]["name"]
        spec = resource.get("spec", {})
        if kind in {"Deployment", "StatefulSet"}:
            template = spec["template"]
            pods.append(Pod(name, NAMESPACE, template["metadata"]["labels"],
                            _ports(template["spec"]["containers"])))
        elif kind == "Server":  # Seldon's operator: a StatefulSet per Server, and its runtime
            pods.append(Pod(name, NAMESPACE, {"app.kubernetes.io/name": "seldon-server",
                                              "seldon-server-name": name},
                            _ports(spec["podSpec"]["containers"])))
            pods.append(Pod("seldon-envoy", NAMESPACE, {"app.kubernetes.io/name": "seldon-envoy"},
                            {9000: "http", 9003: "envoy-stats"}))
            pods.append(Pod("seldon-scheduler", NAMESPACE,
                            {"app.kubernetes.io/name": "seldon-scheduler"},
                            {9002: "xds", 9004: "scheduler", 9005: "agent"}))
        elif kind == "InferenceService":  # KServe's RawDeployment predictor
            predictor = spec["predictor"]
            ports = {**_ports(predictor["containers"]), METRICS_PORT: "metrics"}
            pods.append(Pod(f"{name}-predictor", NAMESPACE,
                            {**predictor.get("labels", {}), "component": "predictor",
                             "serving.kserve.io/inferenceservice": name}, ports))
    application = yaml.safe_load((K8S / "spark" / "sparkapplication.example.yaml").read_text())
    for role in ("driver", "executor"):
        pods.append(Pod(f"spark-{role}", NAMESPACE,
                        {**application["spec"][role]["labels"], "spark-role": role},
                        {7078: "driver-rpc-port", 7079: "blockmanager"}))
    return pods


def overlay(serving: str) -> list[dict]:
    components = [REPO / "infra" / serving, K8S / "spark"]
    return render(K8S / "overlays" / "prod", components=components)


@pytest.mark.parametrize(("serving", "serving_flows"),
                         [("seldon", SELDON_FLOWS), ("kserve", KSERVE_FLOWS)])
def test_every_intended_flow_is_admitted_and_every_other_refused(serving, serving_flows):
    resources = overlay(serving)
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    pods = {p.name: p for p in namespace_pods(resources) + OUTSIDE}
    intended = BASE_FLOWS | serving_flows
    assert {name for flow in intended for name in flow[:2]} <= pods.keys()
    for source, destination, port in sorted(intended, key=str):
        ports = [port] if port else list(pods[destination].ports)
        for each in ports:
            assert admits(policies, pods[source], pods[destination], each), \
                f"{source} -> {destination}:{each} refused"
    admitted_extra = []
    for source in pods.values():
        for destination in (p for p in pods.values() if p.namespace == NAMESPACE):
            for port in destination.ports:
                wanted = {(source.name, destination.name, port),
                          (source.name, destination.name, None)} & intended
                if not wanted and admits(policies, source, destination, port):
                    admitted_extra.append(f"{source.name} -> {destination.name}:{port}")
    assert admitted_extra == []
    # nothing restricts egress: every pod reaches the managed services (S3, the Feast
    # registry's PostgreSQL, the online store's Redis)
    for source in pods.values():
        for service in EXTERNAL:
            assert all(admits(policies, source, service, port) for port in service.ports)


def test_the_evaluator_follows_the_networkpolicy_rules():
    web = Pod("web", "shop", {"app": "web"}, {8080: "http"})
    api = Pod("api", "shop", {"app": "api"}, {9000: "grpc"})
    probe = Pod("probe", "watch", {"app": "probe"})
    assert admits([], probe, web, 8080)  # nothing selects it: open
    policy = {"metadata": {"namespace": "shop"}, "spec": {
        "podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                     "ports": [{"port": "http"}]},
                    {"from": [{"namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": "watch"}},
                        "podSelector": {"matchExpressions": [
                            {"key": "app", "operator": "In", "values": ["probe"]}]}}]}]}}
    assert admits([policy], api, web, 8080)  # named port
    assert not admits([policy], api, web, 8081)
    assert admits([policy], probe, web, 8081)  # a rule without ports: every port
    stranger = Pod("probe", "elsewhere", {"app": "probe"})
    assert not admits([policy], stranger, web, 8080)  # both selectors must hold
    deny_egress = {"metadata": {"namespace": "shop"}, "spec": {
        "podSelector": {}, "policyTypes": ["Egress"]}}
    assert not admits([deny_egress], api, web, 8080)
    assert admits([deny_egress], probe, web, 8080)  # the source's namespace is not shop


def test_prometheus_reaches_the_serving_port_its_scrape_config_names():
    """The recsys-serving job scrapes `/recsys/metrics` on serving's HTTP port."""
    config = yaml.safe_load((REPO / "infra" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "recsys-serving")
    assert job["metrics_path"] == "/recsys/metrics"
    ports = {int(t.rsplit(":", 1)[1]) for c in job["static_configs"] for t in c["targets"]}
    assert ports == {HTTP_PORT}
    for serving, flows in (("seldon", SELDON_FLOWS), ("kserve", KSERVE_FLOWS)):
        assert any(s == "prometheus" and p == HTTP_PORT for s, _, p in flows), serving
