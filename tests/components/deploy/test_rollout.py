"""Promotion rolls out: the deploy step exports the champion from a real MLflow registry
(SQLite), moves the Seldon `Model` or KServe `InferenceService` of infra/ to it through a
Kubernetes API served here (a real HTTP server answering the custom-object endpoints the
`kubernetes` client calls: GET, and PATCH as a JSON merge patch whose result is validated
against the upstream CRD's schema; it reports Ready the way each operator does, after some
polls or never) and moves the champion back when the resource never runs it."""
import copy
import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import jsonschema
import pandas as pd
import pytest
import yaml

from recsys.components.deploy.deploy import DeployConfig, artifact_uri, deploy_promoted
from recsys.components.deploy.rollout import RolloutFailed
from recsys.components.deploy.served_resource import (
    KINDS,
    SHA256_ANNOTATION,
    VERSION_ANNOTATION,
    ServingTarget,
    is_ready_for,
    parse_target,
    storage_uri,
)
from recsys.core.errors import ConfigError
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.serving.artifact import SETTINGS_FILE
from tests.conftest import REPO
from tests.factories import register_trained
from tests.infra import crd_schemas
from tests.kubernetes_api import ServedApi, served_apis
from tests.serving.conftest import ROWS

NAME = "recs"
MANIFESTS = {"seldon": REPO / "infra" / "seldon" / "model.yaml",
             "kserve": REPO / "infra" / "kserve" / "inference-service.yaml"}
BEFORE = "2026-12-01T00:00:00Z"
needs_crds = pytest.mark.skipif(not crd_schemas.available(),
                                reason=f"the upstream CRDs are not at {crd_schemas.CRDS}")


def merge_patch(target, patch):
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def condition(kind: str, status: str, reason: str, message: str = "", at: str = BEFORE) -> list:
    ready = {"type": "Ready", "status": status, "reason": reason, "lastTransitionTime": at}
    if message:
        ready["message"] = message
    own = "ModelReady" if kind == "seldon" else "PredictorReady"
    return [{**ready, "type": own}, ready]


def deployed(label: str) -> dict:
    """The manifest in infra/ as the API server holds it: generation 1, Ready."""
    resource = yaml.safe_load(MANIFESTS[label].read_text())
    resource["metadata"]["generation"] = 1
    resource["status"] = {"conditions": condition(label, "True", "ModelAvailable")}
    if label == "kserve":  # KServe's controller reports the generation it reconciled
        resource["status"]["observedGeneration"] = 1
    return resource


class KubernetesApi(ServedApi):
    """The API server's custom-object endpoints for one Seldon Model or KServe
    InferenceService. After a PATCH that changes the spec (a new generation) the operator
    first has not reacted (the old Ready stays, as an informer's lag leaves it), then
    reports the new generation progressing, and Ready after `ready_after` polls (never when
    None: failed, with `failure` as its message). `admission`, a validating webhook:
    returns a refusal message for an object it denies."""

    def __init__(self, label: str, ready_after: int | None, failure: str = "",
                 admission=None):
        self.label, self.kind = label, KINDS[label]
        self.resource = deployed(label)
        self.ready_after, self.failure, self.admission = ready_after, failure, admission
        self.patches: list[tuple[str, dict]] = []
        self.polls_since_patch = 0
        self.pending_generation: int | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                """Quiet: the tests assert on what the server holds and was sent."""

            def _send(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, code: int, message: str):
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "code": code, "message": message})

            def do_GET(self):
                if self.path.split("?")[0] != api.path:
                    return self._refuse(404, f"{self.path} not found")
                self._send(200, api.observe())

            def do_PATCH(self):
                if self.path.split("?")[0] != api.path:
                    return self._refuse(404, f"{self.path} not found")
                content_type = self.headers.get("Content-Type", "")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.patches.append((content_type, body))
                if content_type != "application/merge-patch+json":
                    return self._refuse(415, f"unsupported patch type {content_type}")
                code, answer = api.apply(body)
                self._send(code, answer)

        self.serve(Handler)

    @property
    def path(self) -> str:
        meta = self.resource["metadata"]
        return (f"/apis/{self.kind.group}/{self.kind.version}/namespaces/{meta['namespace']}/"
                f"{self.kind.plural}/{meta['name']}")

    @property
    def target(self) -> ServingTarget:
        meta = self.resource["metadata"]
        return ServingTarget(label=self.label, namespace=meta["namespace"], name=meta["name"])

    def apply(self, patch: dict) -> tuple[int, dict]:
        """A merge patch on the main resource: status is a subresource (left as it is),
        the result must satisfy the CRD's schema and the webhook, a changed spec is a new
        generation."""
        patch = {key: value for key, value in patch.items() if key != "status"}
        merged = merge_patch(copy.deepcopy(self.resource), patch)
        try:
            crd_schemas.validate(merged)
        except jsonschema.ValidationError as exc:
            return 422, {"kind": "Status", "code": 422, "status": "Failure",
                         "message": f"{self.kind.kind}.{self.kind.group} "
                                    f"{merged['metadata']['name']!r} is invalid: {exc.message}"}
        refusal = self.admission(merged) if self.admission else None
        if refusal:
            return 422, {"kind": "Status", "code": 422, "status": "Failure",
                         "message": f"admission webhook denied the request: {refusal}"}
        if merged["spec"] != self.resource["spec"]:
            merged["metadata"]["generation"] += 1
            self.pending_generation = merged["metadata"]["generation"]
            self.polls_since_patch = 0
        self.resource = merged
        return 200, merged

    def observe(self) -> dict:
        """The resource as a GET returns it, the operator having moved on by one poll."""
        if self.pending_generation is not None:
            self.polls_since_patch += 1
            if self.polls_since_patch > 1:  # the first poll still sees the old status
                self.resource["status"] = self.status_now()
        return copy.deepcopy(self.resource)

    def status_now(self) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.ready_after is not None and self.polls_since_patch >= self.ready_after:
            status = {"conditions": condition(self.label, "True", "ModelAvailable", at=now)}
        elif self.ready_after is None and self.polls_since_patch > 2:
            status = {"conditions": condition(self.label, "False", "ModelFailed", self.failure,
                                              at=now)}
        else:
            status = {"conditions": condition(self.label, "False", "ModelProgressing", at=now)}
        if self.label == "kserve":
            status["observedGeneration"] = self.pending_generation
        old = self.resource["status"]["conditions"]
        for new in status["conditions"]:  # a condition that did not change keeps its time
            kept = next(c for c in old if c["type"] == new["type"])
            if (kept["status"], kept["reason"]) == (new["status"], new["reason"]):
                new["lastTransitionTime"] = kept["lastTransitionTime"]
        return status


@pytest.fixture
def kube():
    with served_apis(KubernetesApi) as make:
        yield make


@pytest.fixture
def registry(tmp_path):
    """A registry whose champion is v2, just promoted over v1 (now `previous`)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    register_trained(uri, NAME, frame)
    register_trained(uri, NAME, frame)
    assert moved_aliases(uri) == {"champion": "2", "previous": "1"}
    return uri


def moved_aliases(uri: str) -> dict[str, str]:
    """`champion` and `previous` (the aliases a promotion and a rollback move)."""
    return {alias: version for alias, version in aliases(client_for(uri), NAME).items()
            if alias in ("champion", "previous")}


def deploy(uri: str, api: KubernetesApi, tmp_path, timeout: float = 10.0) -> dict:
    config = DeployConfig(registered_model=NAME, version="2", target=api.target,
                          artifacts=str(tmp_path / "models"), timeout_seconds=timeout,
                          poll_seconds=0.02)
    return deploy_promoted(config, client_for(uri), registry_lock(uri, NAME), api.client)


def exported_sha256(tmp_path) -> str:
    settings = json.loads((tmp_path / "models" / "v2" / SETTINGS_FILE).read_text())
    assert settings["parameters"]["version"] == "2"
    return settings["parameters"]["extra"]["model_sha256"]


@pytest.mark.integration
@needs_crds
def test_a_seldon_model_is_moved_to_the_new_champion_once_ready(kube, registry, tmp_path):
    api = kube("seldon", ready_after=4)
    served = deploy(registry, api, tmp_path)
    model = api.resource
    assert model["spec"]["storageUri"] == str(tmp_path / "models" / "v2") == served["uri"]
    assert model["metadata"]["annotations"] == {VERSION_ANNOTATION: "2",
                                                SHA256_ANNOTATION: exported_sha256(tmp_path)}
    assert served["sha256"] == exported_sha256(tmp_path) and served["generation"] == 2
    # it waited for the new generation's Ready, not the old one still shown after the patch
    assert api.polls_since_patch == 4
    assert [c for c, _ in api.patches] == ["application/merge-patch+json"]
    # the rest of the Model is untouched
    untouched = deployed("seldon")["spec"]
    assert {**model["spec"], "storageUri": untouched["storageUri"]} == untouched
    assert moved_aliases(registry) == {"champion": "2", "previous": "1"}


@pytest.mark.integration
@needs_crds
def test_a_kserve_inference_service_is_moved_to_the_new_champion_once_ready(kube, registry,
                                                                             tmp_path):
    api = kube("kserve", ready_after=3)
    served = deploy(registry, api, tmp_path)
    service = api.resource
    container = service["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STORAGE_URI"] == str(tmp_path / "models" / "v2") == served["uri"]
    assert service["metadata"]["annotations"][SHA256_ANNOTATION] == exported_sha256(tmp_path)
    assert service["status"]["observedGeneration"] == 2 and api.polls_since_patch == 3
    # the merge patch sent the container list whole: everything but the URI is as it was
    before = deployed("kserve")["spec"]["predictor"]
    assert [{**e, "value": "s3://recsys-models/recsys/v1"} if e["name"] == "STORAGE_URI"
            else e for e in container["env"]] == before["containers"][0]["env"]
    assert {k: v for k, v in container.items() if k != "env"} == {
        k: v for k, v in before["containers"][0].items() if k != "env"}
    # the service keeps its own annotations beside ours
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == \
        "RawDeployment"
    assert aliases(client_for(registry), NAME)["champion"] == "2"


@pytest.mark.integration
@needs_crds
@pytest.mark.parametrize("label", ["seldon", "kserve"])
def test_a_resource_that_never_becomes_ready_is_restored_and_the_champion_moved_back(
        kube, registry, tmp_path, label):
    api = kube(label, ready_after=None,
               failure="rclone copy: directory not found: models/v2/model")
    with pytest.raises(RolloutFailed) as failure:
        deploy(registry, api, tmp_path, timeout=0.5)
    message = str(failure.value)
    assert f"{api.kind.kind} recsys/recsys was not ready on generation 2" in message
    assert "Ready=False" in message and "ModelFailed" in message
    assert "directory not found: models/v2/model" in message
    assert "previous spec is restored" in message and "rolled back to v1" in message
    # serving is back on the artifact it ran, without our annotations; the registry agrees
    assert storage_uri(api.target, api.resource) == "s3://recsys-models/recsys/v1"
    assert VERSION_ANNOTATION not in api.resource["metadata"].get("annotations", {})
    assert api.resource["spec"] == deployed(label)["spec"]
    assert len(api.patches) == 2
    assert moved_aliases(registry) == {"champion": "1", "previous": "2"}


@pytest.mark.integration
@needs_crds
def test_a_patch_the_api_refuses_fails_with_its_message_and_moves_the_champion_back(
        kube, registry, tmp_path):
    def models_bucket_only(model: dict) -> str | None:
        uri = model["spec"]["storageUri"]
        if not uri.startswith("s3://recsys-models/"):
            return f"storageUri {uri} is outside s3://recsys-models/"
        return None

    api = kube("seldon", ready_after=1, admission=models_bucket_only)
    with pytest.raises(RolloutFailed) as failure:
        deploy(registry, api, tmp_path)
    message = str(failure.value)
    assert "Model recsys/recsys refused the patch" in message
    assert "422 admission webhook denied the request: storageUri " in message
    assert "is outside s3://recsys-models/" in message
    assert "rolled back to v1" in message
    assert api.resource == deployed("seldon") and len(api.patches) == 1
    assert moved_aliases(registry) == {"champion": "1", "previous": "2"}


@pytest.mark.integration
@needs_crds
def test_the_test_api_refuses_what_the_crd_refuses(kube):
    """The server here validates like the real one: a misspelt field is a 422."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = kube("seldon", ready_after=1)
    kind = api.kind
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
            kind.group, kind.version, "recsys", kind.plural, "recsys",
            {"spec": {"storageUrl": "s3://misspelt"}})
    assert refused.value.status == 422 and "storageUrl" in json.loads(refused.value.body)[
        "message"]
    assert api.resource == deployed("seldon")


def test_a_champion_that_moved_since_the_promotion_is_not_rolled_out(registry, tmp_path):
    config = DeployConfig(registered_model=NAME, version="1", target=parse_target(
        "seldon:recsys", "recsys"), artifacts=str(tmp_path / "models"))
    with pytest.raises(RolloutFailed, match="champion of recs is v2, not the promoted v1"):
        deploy_promoted(config, client_for(registry), registry_lock(registry, NAME),
                        api_client=None)
    assert not (tmp_path / "models").exists()
    assert aliases(client_for(registry), NAME)["champion"] == "2"


def test_targets_name_their_kind_and_resource():
    assert parse_target("kserve:recsys", "shop") == ServingTarget(
        label="kserve", namespace="shop", name="recsys")
    assert str(parse_target("seldon:recsys-b", "recsys")) == "Model recsys/recsys-b"
    for wrong in ("recsys", "seldon:", "knative:recsys"):
        with pytest.raises(ConfigError, match="seldon:<name>"):
            parse_target(wrong, "recsys")
    assert artifact_uri("s3://recsys-models/recsys/", "7") == "s3://recsys-models/recsys/v7"


def test_readiness_is_for_the_new_generation():
    ready_then = condition("seldon", "True", "ModelAvailable")[1]
    stale = {"status": {"conditions": condition("seldon", "True", "ModelAvailable")}}
    fresh = {"status": {"conditions": condition("seldon", "True", "ModelAvailable",
                                                at="2026-12-07T10:00:00Z")}}
    # Seldon v2 writes no observedGeneration: the Ready from before the patch does not count
    assert not is_ready_for(stale, 2, ready_then)
    assert is_ready_for(fresh, 2, ready_then)
    assert is_ready_for(stale, 2, None)  # nothing was ready before: any Ready is the new one
    reconciled = {"status": {**fresh["status"], "observedGeneration": 1}}
    assert not is_ready_for(reconciled, 2, None)  # KServe: Ready, but for generation 1
    reconciled["status"]["observedGeneration"] = 2
    assert is_ready_for(reconciled, 2, ready_then)
    failed = {"status": {"conditions": condition("kserve", "False", "ModelFailed"),
                         "observedGeneration": 2}}
    assert not is_ready_for(failed, 2, None)


def test_the_deploy_step_runs_after_a_promotion_only_when_a_serving_target_is_named(tmp_path):
    from recsys.pipelines.task_resources import STEPS
    from recsys.pipelines.training_pipeline import compile_pipeline

    spec, platform = yaml.safe_load_all(open(compile_pipeline(str(tmp_path / "p.yaml"))))
    components = spec["components"]

    def parent_of(task: str) -> tuple[str, dict]:
        return next((name, c["dag"]["tasks"][task]) for name, c in components.items()
                    if task in c.get("dag", {}).get("tasks", {}))

    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["serving_target"]["defaultValue"] == ""  # kfp.local: no deploy step
    assert parameters["model_artifacts"]["defaultValue"] == "s3://recsys-models/recsys"
    for deploy_task in ("deploy-op", "deploy-op-2"):  # the pandas and the spark data path
        named, task = parent_of(deploy_task)
        assert task["inputs"]["artifacts"]["outcome"]["componentInputArtifact"].startswith(
            "pipelinechannel--gate-op")  # the gate's outcome: the promoted version
        assert task["cachingOptions"] == {}  # never cached: the champion moves
        # condition: serving_target != '', inside: promote-op returned true, inside: the gate
        targeted, condition = parent_of(named.removeprefix("comp-"))
        assert condition["triggerPolicy"]["condition"] == \
            "inputs.parameter_values['pipelinechannel--serving_target'] != ''"
        promoted, condition = parent_of(targeted.removeprefix("comp-"))
        assert condition["triggerPolicy"]["condition"].startswith(
            "inputs.parameter_values['pipelinechannel--promote-op")
        assert condition["triggerPolicy"]["condition"].endswith("-Output'] == true")
        assert any(t.startswith("promote-op") for t in components[promoted]["dag"]["tasks"])
        _, gated = parent_of(promoted.removeprefix("comp-"))
        assert "gate-op" in gated["triggerPolicy"]["condition"]
    executors = spec["deploymentSpec"]["executors"]
    for executor in ("exec-deploy-op", "exec-deploy-op-2"):
        resources = executors[executor]["container"]["resources"]
        assert resources["resourceCpuRequest"] == STEPS["deploy-op"].cpu_request == "500m"
        assert resources["resourceMemoryLimit"] == STEPS["deploy-op"].memory_limit == "2Gi"
        secrets = {s["secretName"] for s in platform["platforms"]["kubernetes"][
            "deploymentSpec"]["executors"][executor]["secretAsEnv"]}
        assert secrets == {"recsys-mlflow-pipeline", "recsys-registry-lock", "recsys-s3"}


@pytest.mark.parametrize("label", ["seldon", "kserve"])
def test_the_rollout_role_grants_exactly_what_the_step_calls(label):
    """get and patch on the one kind, in the serving namespace, bound to the pipeline's
    identity; valid against the Kubernetes schemas."""
    import kubernetes_validate

    manifests = [d for d in yaml.safe_load_all(
        (REPO / "infra" / label / "rollout-rbac.yaml").read_text()) if d]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.37.0", strict=True)
    role = next(m for m in manifests if m["kind"] == "Role")
    binding = next(m for m in manifests if m["kind"] == "RoleBinding")
    kind, served = KINDS[label], deployed(label)
    assert role["rules"] == [{"apiGroups": [kind.group], "resources": [kind.plural],
                              "verbs": ["get", "patch"]}]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == \
        served["metadata"]["namespace"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner",
                                    "namespace": "kubeflow"}]  # as infra/k8s/spark/rbac.yaml
