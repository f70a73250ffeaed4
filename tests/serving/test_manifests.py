"""The Seldon manifests in infra/ stay valid: names, images and ports agree with the code."""
import json
import re

import yaml

from tests.conftest import REPO

SELDON = REPO / "infra" / "seldon"


def load(name):
    return yaml.safe_load((SELDON / name).read_text())


def test_v2_server_and_model():
    server, model = load("server.yaml"), load("model.yaml")
    assert (server["apiVersion"], server["kind"]) == ("mlops.seldon.io/v1alpha1", "Server")
    assert model["kind"] == "Model" and model["spec"]["server"] == server["metadata"]["name"]
    container = server["spec"]["podSpec"]["containers"][0]
    assert container["image"] == "ghcr.io/recsys-mlops/recsys-serving:0.2.0"
    settings = json.loads((REPO / "serving/model_repository/settings.json").read_text())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings["http_port"], "grpc": settings["grpc_port"],
                     "metrics": settings["metrics_port"]}
    env = {e["name"]: e for e in container["env"]}
    assert env["MLSERVER_HOST"]["value"] == "0.0.0.0"  # the pod's interface, not loopback
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["serving-token"]
    assert env["RECSYS_SERVING_TOKEN_FILE"]["value"].startswith(mount + "/")
    volume = {v["name"]: v for v in server["spec"]["podSpec"]["volumes"]}["serving-token"]
    assert volume["secret"]["secretName"] == "recsys-serving-token"
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # never literal
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]
    model_settings = json.loads(
        (REPO / "serving/model_repository/recsys/model-settings.json").read_text())
    assert model["metadata"]["name"] == model_settings["name"]
    assert model_settings["implementation"] == "recsys.serving.runtime.RecsysRuntime"
    assert set(model["spec"]["requirements"]) <= set(server["spec"]["extraCapabilities"])
    # the storage URI is where `recsys registry export --artifact` writes: a versioned
    # prefix in S3, fetched with the rclone remote of the Secret the Model names
    assert re.fullmatch(r"s3://[a-z0-9.-]+/[\w/-]+/v\d+", model["spec"]["storageUri"])
    assert model["spec"]["secretName"]


def test_v1_seldon_deployment():
    deployment = load("seldon-deployment-v1.yaml")
    assert deployment["kind"] == "SeldonDeployment"
    predictor = deployment["spec"]["predictors"][0]
    container = predictor["componentSpecs"][0]["spec"]["containers"][0]
    assert container["name"] == predictor["graph"]["name"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODEL_NAME"] == "recsys.serving.seldon_v1.SeldonRecommender"
    assert container["ports"][0]["containerPort"] == 9000
    assert "--http-port 9000" in (REPO / "infra" / "Dockerfile.seldon-v1").read_text()


def test_kserve_serves_the_same_image_and_artifact_as_seldon():
    service = yaml.safe_load((REPO / "infra" / "kserve" / "inference-service.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1",
                                                        "InferenceService")
    container = service["spec"]["predictor"]["containers"][0]
    seldon = load("server.yaml")["spec"]["podSpec"]["containers"][0]
    assert container["image"] == seldon["image"]
    assert container["command"][-3:] == ["recsys.serving.server", "start", "/mnt/models"]
    env = {e["name"]: e for e in container["env"]}
    # KServe's storage initializer fetches the artifact `recsys registry export
    # --artifact` wrote, the same the Seldon Model points at
    assert env["STORAGE_URI"]["value"] == load("model.yaml")["spec"]["storageUri"]
    assert env["MLSERVER_HTTP_PORT"]["value"] == str(container["ports"][0]["containerPort"])
    assert container["readinessProbe"]["httpGet"]["port"] == container["ports"][0]["containerPort"]
    for spec in (container, seldon):
        names = {e["name"]: e for e in spec["env"]}
        assert names["RECSYS_LAKE_URI"]["value"].startswith("s3://")  # nothing pod-local
        for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in names[secret] and names[secret]["valueFrom"]["secretKeyRef"]
    assert container["securityContext"]["runAsNonRoot"] is True


def test_the_experiment_model_and_its_shadow():
    documents = list(yaml.safe_load_all((SELDON / "experiment.yaml").read_text()))
    model, experiment = documents
    served = load("model.yaml")
    assert model["kind"] == "Model" and experiment["kind"] == "Experiment"
    assert model["spec"]["server"] == served["spec"]["server"]
    assert model["spec"]["requirements"] == served["spec"]["requirements"]
    # production stays on the champion; the experiment's Model gets a mirror of it
    assert experiment["spec"]["default"] == served["metadata"]["name"]
    assert experiment["spec"]["candidates"] == [{"name": served["metadata"]["name"],
                                                 "weight": 100}]
    assert experiment["spec"]["mirror"]["name"] == model["metadata"]["name"]


def test_the_arms_experiment_is_what_the_export_writes_for_the_seeds_split():
    from recsys.experiments.definition import ExperimentDefinition, Variant
    from recsys.experiments.seldon import arm_manifests

    documents = list(yaml.safe_load_all((SELDON / "experiment-arms.yaml").read_text()))
    seeds = ExperimentDefinition(name="ab-1", variants=(
        Variant(label="control", target="popularity", weight=30),
        Variant(label="a", target="champion", weight=35, version="7"),
        Variant(label="b", target="8", weight=35, version="8")))
    assert documents == arm_manifests(seeds, "s3://recsys-models/experiments/ab-1")
    served = load("model.yaml")
    for model in documents[:3]:
        assert model["spec"]["server"] == served["spec"]["server"]
        assert model["spec"]["secretName"] == served["spec"]["secretName"]
        assert model["metadata"]["namespace"] == served["metadata"]["namespace"]
    assert [c["weight"] for c in documents[3]["spec"]["candidates"]] == [30, 35, 35]
