"""The Kubernetes manifests validate against a current release's schemas (strict), every
overlay's resources and patch targets resolve, and every workload is locked down."""
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "infra" / "k8s"
VERSION = "1.37.0"
WORKLOADS = {"Deployment", "StatefulSet"}


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base_resources() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"]
            for doc in documents(K8S / "base" / name)]


def component_resources(folder: Path) -> list[dict]:
    """The resources of a kustomize Component (every listed file exists)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    return [doc for name in kustomization["resources"] for doc in documents(folder / name)]


def test_serving_components_are_in_the_namespace_and_the_alternatives_agree():
    seldon = component_resources(REPO / "infra" / "seldon")
    kserve = component_resources(REPO / "infra" / "kserve")
    namespace = next(r for r in base_resources() if r["kind"] == "Namespace")
    for resource in seldon + kserve:
        assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]
    model = next(r for r in seldon if r["kind"] == "Model")
    env = {e["name"]: e.get("value")
           for e in kserve[0]["spec"]["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"] == model["spec"]["storageUri"]  # the same exported champion


def test_every_base_manifest_validates_strictly():
    resources = base_resources()
    assert {r["kind"] for r in resources} >= {"Namespace", "ConfigMap", "StatefulSet",
                                              "Service", "Deployment",
                                              "HorizontalPodAutoscaler",
                                              "PodDisruptionBudget", "NetworkPolicy"}
    for resource in resources:
        kubernetes_validate.validate(resource, VERSION, strict=True)  # raises when invalid
    listed = set(yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk  # nothing written and forgotten


def test_an_invalid_manifest_is_caught():
    broken = next(r for r in base_resources() if r["kind"] == "Deployment")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_resolve(overlay):
    folder = K8S / "overlays" / overlay
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert [(folder / r).resolve() for r in kustomization["resources"]] == [
        (K8S / "base").resolve()]
    # serving is a component: Seldon Core v2 by default (KServe is the other one)
    components = [(folder / c).resolve() for c in kustomization["components"]]
    assert components == [(REPO / "infra" / "seldon").resolve(), (K8S / "spark").resolve()]
    serving = component_resources(components[0])
    assert {r["kind"] for r in serving} == {"Server", "Model"}
    # the spark engine's identities and network rule: core kinds, validated strictly
    spark = component_resources(components[1])
    assert {r["kind"] for r in spark} == {"ServiceAccount", "Role", "RoleBinding",
                                         "NetworkPolicy"}
    namespace = next(r for r in base_resources() if r["kind"] == "Namespace")
    for resource in spark:
        assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]
        kubernetes_validate.validate(resource, VERSION, strict=True)
    targets = {(r["kind"], r["metadata"]["name"]) for r in base_resources() + serving}
    for patch in kustomization["patches"]:
        for doc in documents(folder / patch["path"]):
            assert (doc["kind"], doc["metadata"]["name"]) in targets, patch
    images = {c["image"].rsplit(":", 1)[0] for r in base_resources() if r["kind"] in WORKLOADS
              for c in r["spec"]["template"]["spec"]["containers"]}
    for image in kustomization.get("images", []):
        assert image["name"] in images


def test_workloads_are_locked_down_and_bounded():
    for resource in base_resources():
        if resource["kind"] not in WORKLOADS:
            continue
        pod = resource["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, resource["metadata"]["name"]
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"]["memory"]
            for env in container.get("env", []):  # credentials only from Secrets
                if any(word in env["name"] for word in ("PASSWORD", "SECRET", "KEY_ID")):
                    assert "valueFrom" in env, env["name"]


def test_partitioned_workers_agree_on_their_membership():
    """Processors and sinks are StatefulSets whose pod ordinal is the member index; MEMBERS
    equals the replicas and the bus has at least that many partitions; the collector reads
    the same partition count."""
    resources = {(r["kind"], r["metadata"]["name"]): r for r in base_resources()}
    partitions = int(resources["ConfigMap", "recsys-stream"]["data"]["bus_partitions"])
    for name in ("recsys-processor", "recsys-lake-sink"):
        workload = resources["StatefulSet", name]
        container = workload["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert int(env["MEMBERS"]["value"]) == workload["spec"]["replicas"] <= partitions
        assert "$(POD_INDEX)/$(MEMBERS)" in container["command"]
        assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.labels['apps.kubernetes.io/pod-index']"
        assert env["RECSYS_BUS_PARTITIONS"]["valueFrom"]["configMapKeyRef"]["name"] == \
            "recsys-stream"
    collector = resources["Deployment", "recsys-collector"]
    env = {e["name"]: e for e in collector["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RECSYS_BUS_PARTITIONS"]["valueFrom"]["configMapKeyRef"]["name"] == \
        "recsys-stream"


def test_prometheus_reaches_every_pod_that_serves_metrics():
    """Each DNS name Prometheus resolves is a headless Service of the base whose port is a
    named container port of every pod it selects; every stream worker serves /metrics
    and /health on that port, and its liveness probe uses it."""
    config = yaml.safe_load((REPO / "infra" / "prometheus" / "prometheus.yml").read_text())
    resources = base_resources()
    services = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Service"}
    pods = [r["spec"]["template"] for r in resources if r["kind"] in WORKLOADS]
    resolved = 0
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                service = services[name.split(".")[0]]
                assert service["spec"]["clusterIP"] == "None"  # one A record per pod
                port = next(p for p in service["spec"]["ports"] if p["port"] == sd["port"])
                selected = [t for t in pods if service["spec"]["selector"].items()
                            <= t["metadata"]["labels"].items()]
                assert selected, name
                for template in selected:
                    container = template["spec"]["containers"][0]
                    named = {p["name"]: p["containerPort"] for p in container["ports"]}
                    assert named[port["targetPort"]] == sd["port"]
                    resolved += 1
    assert resolved == 4  # collector, processor, lake sink, quarantine sink
    workers = 0
    for template in pods:
        container = template["spec"]["containers"][0]
        command = container.get("command", [])
        if command[:2] == ["recsys", "stream"] and command[2] != "collector":
            workers += 1
            assert command[command.index("--metrics-port") + 1] == "9102"
            assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert workers == 3


def test_pod_monitors_scrape_what_the_scrape_config_scrapes():
    """The Prometheus Operator's PodMonitors select the same pods, on named ports that
    serve /metrics, with the metrics token Secret the services mount."""
    folder = K8S / "monitoring"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    monitors = [doc for name in kustomization["resources"] for doc in documents(folder / name)]
    assert {m["kind"] for m in monitors} == {"PodMonitor"} and len(monitors) == 2
    templates = [r["spec"]["template"] for r in base_resources() if r["kind"] in WORKLOADS]
    mounted = {v["secret"]["secretName"] for t in templates for v in t["spec"].get("volumes", [])
               if "secret" in v and v["name"] == "metrics-token"}
    assert mounted == {"recsys-metrics-token"}
    selected_pods = 0
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        labels = monitor["spec"]["selector"]["matchLabels"]
        pods = [t for t in templates if labels.items() <= t["metadata"]["labels"].items()]
        assert pods, monitor["metadata"]["name"]
        selected_pods += len(pods)
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics"
            assert endpoint["authorization"]["credentials"] == {
                "name": "recsys-metrics-token", "key": "token"}
            for template in pods:
                ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
                assert endpoint["port"] in ports
    assert selected_pods == 4  # collector, processor, lake sink, quarantine sink


def test_the_multi_user_spark_component_rebinds_only_the_submitter():
    folder = K8S / "spark" / "multi-user"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component" and "resources" not in kustomization
    spark = {(r["kind"], r["metadata"]["name"]): r for r in component_resources(K8S / "spark")}
    for patch in kustomization["patches"]:
        for doc in documents(folder / patch["path"]):
            target = spark[(doc["kind"], doc["metadata"]["name"])]
            assert doc["metadata"]["namespace"] == target["metadata"]["namespace"]
            # a strategic merge replaces a RoleBinding's subjects (the list has no merge key)
            patched = {**target, "subjects": doc["subjects"]}
            kubernetes_validate.validate(patched, VERSION, strict=True)
            assert patched["roleRef"]["name"] == "recsys-spark-submitter"
            assert [s["name"] for s in patched["subjects"]] == ["default-editor"]
