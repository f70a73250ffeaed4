"""The Kubernetes manifests validate against a current release's schemas (strict), every
overlay's resources and patch targets resolve, and every workload is locked down."""
import copy
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from recsys.tools.kustomize import render
from tests.conftest import REPO
from tests.infra import crd_schemas

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
    assert {r["kind"] for r in serving} == {"Server", "Model", "NetworkPolicy", "Role",
                                           "RoleBinding"}  # the deploy step's rights
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


def pod_specs() -> dict[str, dict]:
    """Every pod the project defines, by resource: the base's workloads, the Seldon
    Server's podSpec and the KServe predictor."""
    pods = {r["metadata"]["name"]: r["spec"]["template"]["spec"]
            for r in base_resources() if r["kind"] in WORKLOADS}
    for component in (REPO / "infra" / "seldon", REPO / "infra" / "kserve"):
        for resource in component_resources(component):
            if resource["kind"] == "Server":
                pods[resource["metadata"]["name"]] = resource["spec"]["podSpec"]
            if resource["kind"] == "InferenceService":
                pods[resource["metadata"]["name"]] = resource["spec"]["predictor"]
    return pods


def test_workloads_are_locked_down_and_bounded():
    pods = pod_specs()
    assert {"recsys-mlserver", "recsys"} <= set(pods)  # serving's pods are checked too
    for name, pod in pods.items():
        for container in pod["containers"]:
            context = container["securityContext"]
            assert (pod.get("securityContext", {}).get("runAsNonRoot")
                    or context.get("runAsNonRoot")) is True, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"]["memory"], name
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
    monitors = [doc for name in kustomization["resources"] for doc in documents(folder / name)
                if doc["kind"] == "PodMonitor" and doc["metadata"]["name"] != "recsys-serving"]
    assert len(monitors) == 2  # serving's: tests/infra/test_monitoring_component.py
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


def rendered(overlay: str, serving: str = "seldon") -> list[dict]:
    """The overlay as `kubectl kustomize` prints it, with `serving` (seldon or kserve) as
    its serving component."""
    return render(K8S / "overlays" / overlay,
                  components=[REPO / "infra" / serving, K8S / "spark"])


RENDERINGS = [(overlay, serving) for overlay in ("dev", "prod") for serving in ("seldon", "kserve")]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_renderer_prints_what_kubectl_kustomize_prints(overlay):
    folder = K8S / "overlays" / overlay
    printed = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                             text=True, timeout=120, check=True).stdout
    theirs = {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(printed) if r}
    ours = {(r["kind"], r["metadata"]["name"]): r for r in render(folder)}
    assert ours == theirs


@pytest.mark.skipif(not crd_schemas.available(),
                    reason=f"the upstream CRDs are not at {crd_schemas.CRDS}")
@pytest.mark.parametrize(("overlay", "serving"), RENDERINGS)
def test_every_rendered_resource_validates_strictly(overlay, serving):
    """Core kinds against Kubernetes' schemas, custom resources against their upstream
    CRD's (unknown fields refused)."""
    resources = rendered(overlay, serving)
    custom = [r for r in resources if crd_schemas.known(r)]
    assert {r["kind"] for r in custom} == ({"Server", "Model"} if serving == "seldon"
                                          else {"InferenceService"})
    for resource in resources:
        if crd_schemas.known(resource):
            crd_schemas.validate(resource)
        else:
            kubernetes_validate.validate(resource, VERSION, strict=True)


@pytest.mark.skipif(not crd_schemas.available(),
                    reason=f"the upstream CRDs are not at {crd_schemas.CRDS}")
def test_every_custom_resource_in_infra_validates_against_its_crd():
    """Seldon v2 Model, Server and Experiment, SeldonDeployment, InferenceService,
    SparkApplication, PodMonitor (the manifests outside the overlays included): each
    validates, and the same resource with one unknown field in its spec is refused."""
    found = crd_schemas.repository_custom_resources()
    kinds = {resource["kind"] for _, resource in found}
    assert kinds == {"Model", "Server", "Experiment", "SeldonDeployment", "InferenceService",
                     "SparkApplication", "PodMonitor", "PrometheusRule"}
    for path, resource in found:
        assert crd_schemas.known(resource), (path, resource["kind"])
        crd_schemas.validate(resource)
        wrong = copy.deepcopy(resource)
        wrong["spec"]["storageUrl"] = "s3://misspelt"
        with pytest.raises(jsonschema.ValidationError, match="storageUrl"):
            crd_schemas.validate(wrong)
    # the kinds the project may add later have their schemas too, as strict
    assert {("monitoring.coreos.com/v1", "ServiceMonitor"),
            ("monitoring.coreos.com/v1", "PrometheusRule"),
            ("serving.kserve.io/v1alpha1", "ServingRuntime")} <= set(crd_schemas.schemas())
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r"}, "spec": {"groups": [{"name": "g", "rules": [
                {"alert": "A", "expr": "up == 0", "for": "5m"}]}]}}
    crd_schemas.validate(rule)
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "page"  # belongs in labels
    with pytest.raises(jsonschema.ValidationError, match="severity"):
        crd_schemas.validate(rule)


IN_CLUSTER = re.compile(r"\b([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?")


@pytest.mark.parametrize(("overlay", "serving"), RENDERINGS)
def test_every_in_cluster_address_names_a_service_of_the_overlay(overlay, serving):
    """Each `<service>.<namespace>.svc[:port]` in the rendered manifests is a Service of
    the overlay, in that namespace, with that port."""
    resources = rendered(overlay, serving)
    services = {(r["metadata"]["name"], r["metadata"]["namespace"]):
                {p["port"] for p in r["spec"]["ports"]}
                for r in resources if r["kind"] == "Service"}
    addresses = [match for text in strings(resources) for match in IN_CLUSTER.findall(text)]
    assert ("recsys-mlflow", "recsys", "5000") in addresses or serving == "kserve"
    assert ("recsys-redis-bus", "recsys", "6379") in addresses
    for name, namespace, port in addresses:
        assert (name, namespace) in services, f"{name}.{namespace}.svc: no such Service"
        if port:
            assert int(port) in services[name, namespace], f"{name}.{namespace}.svc:{port}"


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return []


def redis_maxmemory_bytes(args: list[str]) -> int:
    value = args[args.index("--maxmemory") + 1].lower()
    units = {"gb": 1024 ** 3, "mb": 1024 ** 2, "kb": 1024, "g": 10 ** 9, "m": 10 ** 6}
    unit = next((u for u in units if value.endswith(u)), "")
    return int(value[:len(value) - len(unit)]) * units.get(unit, 1)


def memory_bytes(quantity: str) -> int:
    units = {"Gi": 1024 ** 3, "Mi": 1024 ** 2, "Ki": 1024, "G": 10 ** 9, "M": 10 ** 6}
    unit = next((u for u in units if quantity.endswith(u)), "")
    return int(quantity[:len(quantity) - len(unit)]) * units.get(unit, 1)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_bus_redis_refuses_writes_before_its_memory_limit(overlay):
    """noeviction with maxmemory 0 would let Redis grow until the kernel kills the pod;
    maxmemory below the limit makes it refuse writes (the collector answers 503)."""
    resources = {(r["kind"], r["metadata"]["name"]): r for r in rendered(overlay)}
    config = resources["ConfigMap", "recsys-redis-bus"]["data"]["bus.conf"]
    assert "maxmemory-policy noeviction" in config
    assert not re.search(r"^\s*maxmemory\s", config, re.MULTILINE)  # one place: the args
    redis = resources["StatefulSet", "recsys-redis-bus"]["spec"]["template"]["spec"][
        "containers"][0]
    limit = memory_bytes(redis["resources"]["limits"]["memory"])
    maxmemory = redis_maxmemory_bytes(redis["args"])
    assert 0.5 * limit <= maxmemory <= 0.8 * limit
