"""The Seldon manifests in infra/ stay valid: names, images and ports agree with the code."""
import json

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
    assert container["image"] == "ghcr.io/recsys-mlops/recsys-serving:0.1.0"
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
