"""The training pipeline: compiled for Kubeflow, and run end to end with kfp.local."""
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from recsys.components.gate.report import latest_decision
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.pyfunc import load_recommender
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for, use_tracking
from recsys.core.settings import Settings
from recsys.pipelines.local_runner import run_training_locally
from recsys.pipelines.training_pipeline import compile_pipeline

STEPS = {"extract-op", "validate-op", "preprocess-op", "features-op", "train-op",
         "evaluate-op", "gate-op"}
MODEL = "recs-under-test"


def compiled(path) -> tuple[dict, dict]:
    """The pipeline spec and the Kubernetes platform spec of a compiled pipeline YAML."""
    spec, platform = yaml.safe_load_all(open(path).read())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def secret_envs(executors: dict, executor: str) -> dict[str, tuple[str, str]]:
    """env name -> (secret, key) a step's pod gets from Kubernetes Secrets."""
    found = {}
    for secret in executors.get(executor, {}).get("secretAsEnv", []):
        name = secret["secretNameParameter"]["runtimeValue"]["constant"]
        for pair in secret["keyToEnv"]:
            found[pair["envVar"]] = (name, pair["secretKey"])
    return found


def dag_tasks(spec: dict, component: str | None = None) -> dict:
    """The tasks of the root DAG or of a component's DAG."""
    dag = spec["root"]["dag"] if component is None else spec["components"][component]["dag"]
    return dag["tasks"]


def step_names(tasks: dict) -> set[str]:
    """Task names without the suffix the compiler gives a second copy (`train-op-2`)."""
    return {re.sub(r"-\d+$", "", name) for name in tasks}


def test_compiled_yaml_names_every_step(tmp_path):
    path = compile_pipeline(str(tmp_path / "p.yaml"))
    spec, executors = compiled(path)
    root = dag_tasks(spec)  # the steps inside an exit handler that reports the outcome
    assert set(root) == {"exit-handler-1", "report-outcome-op"}
    root = dag_tasks(spec, root["exit-handler-1"]["componentRef"]["name"])
    assert set(root) == {"fingerprint-op", "condition-branches-2"}
    branches = dag_tasks(spec, root["condition-branches-2"]["componentRef"]["name"])
    assert len(branches) == 2  # engine == 'spark', else the pandas engine
    by_step = {}
    for branch in branches.values():
        inner = dag_tasks(spec, branch["componentRef"]["name"])
        by_step["spark" if "spark-data-op" in inner else "pandas"] = (branch, inner)
    spark_branch, spark_tasks = by_step["spark"]
    assert spark_branch["triggerPolicy"]["condition"].endswith("== 'spark'")
    _, tasks = by_step["pandas"]
    assert STEPS <= step_names(tasks)
    # the spark branch: one data step, then the same tail
    assert step_names(spark_tasks) == (STEPS - {"extract-op", "validate-op", "preprocess-op"}
                                       ) | {"spark-data-op", "condition"}
    tasks = {re.sub(r"-\d+$", "", name) if not name.startswith("condition") else name: task
             for name, task in tasks.items()}
    condition = [t for name, t in tasks.items() if name.startswith("condition")]
    assert len(condition) == 1
    assert "gate-op" in condition[0]["triggerPolicy"]["condition"]
    inner = spec["components"][condition[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert step_names(inner) == {"promote-op", "condition"}  # the deploy step's condition
    images = {name: e["container"]["image"]
              for name, e in spec["deploymentSpec"]["executors"].items()}
    assert images.pop("exec-spark-data-op") == Settings().spark_image_tag
    assert set(images.values()) == {Settings().image}
    assert spec["root"]["inputDefinitions"]["parameters"]["spark_image"]["defaultValue"] == \
        Settings().spark_image_tag
    assert tasks["extract-op"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["evaluate-op"]["cachingOptions"] == {}  # caching off: the champion may move
    assert tasks["train-op"]["cachingOptions"]["enableCache"] is True
    assert {"tracking_uri", "lake_uri", "source", "engine"} <= set(
        spec["root"]["inputDefinitions"]["parameters"])
    # MLflow credentials reach the steps as Secrets, never as parameters or literals
    identity = {"MLFLOW_TRACKING_USERNAME": ("recsys-mlflow-pipeline", "username"),
                "MLFLOW_TRACKING_PASSWORD": ("recsys-mlflow-pipeline", "password")}
    for step in ("train-op", "evaluate-op"):
        assert secret_envs(executors, f"exec-{step}") == identity, step
    for step in ("gate-op", "promote-op"):  # the alias-move lock's database
        assert secret_envs(executors, f"exec-{step}") == {
            **identity, "RECSYS_REGISTRY_LOCK_URL": ("recsys-registry-lock", "url")}, step
    s3 = {"AWS_ACCESS_KEY_ID": ("recsys-s3", "access_key_id"),
          "AWS_SECRET_ACCESS_KEY": ("recsys-s3", "secret_access_key")}
    assert secret_envs(executors, "exec-features-op") == {  # the feature store's addresses
        "RECSYS_REDIS_URL": ("recsys-redis", "url"),
        "RECSYS_FEAST_REGISTRY_URL": ("recsys-feast-registry", "url"), **s3}
    for step in ("fingerprint-op", "extract-op", "validate-op", "spark-data-op"):
        assert secret_envs(executors, f"exec-{step}") == s3, step  # the lake, no MLflow
    assert secret_envs(executors, "exec-deploy-op") == {  # exports the serving artifact
        **identity, "RECSYS_REGISTRY_LOCK_URL": ("recsys-registry-lock", "url"), **s3}
    for step in ("preprocess-op", "train-op", "evaluate-op", "gate-op", "promote-op"):
        assert not set(secret_envs(executors, f"exec-{step}")) & set(s3), step
    # optional: a workload identity (IRSA) cluster has no such Secret
    assert all(secret.get("optional") is True
               for executor in executors.values() for secret in executor.get("secretAsEnv", [])
               if secret["secretNameParameter"]["runtimeValue"]["constant"] == "recsys-s3")
    literal_env = [e["name"] for ex in spec["deploymentSpec"]["executors"].values()
                   for e in ex["container"].get("env", [])]
    assert not [name for name in literal_env if "MLFLOW" in name or "LOCK" in name]
    assert "postgresql://" not in open(path).read()


def test_the_gate_policy_is_one_parameter_given_whole_to_evaluate_and_gate(tmp_path):
    from recsys.core.lifecycle.gate import DEFAULT_POLICY

    spec, _ = compiled(compile_pipeline(str(tmp_path / "p.yaml")))
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["gate_policy"]["defaultValue"] == DEFAULT_POLICY.model_dump()
    assert not {"primary_metric", "min_relative_improvement", "require_significant"} & set(
        parameters)
    for step in ("evaluate-op", "gate-op"):
        inputs = spec["components"][f"comp-{step}"]["inputDefinitions"]["parameters"]
        assert inputs["policy"]["parameterType"] == "STRUCT", step
        assert not any("regression" in name for name in inputs), step


def test_the_image_setting_is_every_components_image(tmp_path):
    out = tmp_path / "p.yaml"
    code = ("from recsys.pipelines.training_pipeline import compile_pipeline; "
            f"compile_pipeline({str(out)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "RECSYS_IMAGE": "registry.example/recsys:1.2.3"})
    spec, _ = compiled(out)
    images = {name: e["container"]["image"]
              for name, e in spec["deploymentSpec"]["executors"].items()}
    # the spark-data step runs in the Spark image named after it
    assert images.pop("exec-spark-data-op") == "registry.example/recsys-spark:1.2.3"
    assert set(images.values()) == {"registry.example/recsys:1.2.3"}


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "shop.jsonl"
    end = pd.Timestamp.now(tz="UTC").floor("D")
    config = ShopConfig(events=20_000, seed=11, end=end.to_pydatetime())
    write_shop(generate_shop(config), "jsonl", path, config)
    return path


def run(tmp_path, source, tracking_uri, **extra):
    run_training_locally(tmp_path / "kfp", caching=True, source=str(source),
                         lake_uri=str(tmp_path / "lake"), tracking_uri=tracking_uri,
                         registered_model=MODEL, state_dir=str(tmp_path / "state"), **extra)


@pytest.mark.slow
def test_local_run_promotes_then_refuses_the_same_model(tmp_path, shop_file):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run(tmp_path, shop_file, tracking)
    client = client_for(tracking)
    assert aliases(client, MODEL) == {"champion": "1", "challenger": "1"}
    champion = client.get_model_version(MODEL, "1")
    metrics = client.get_run(champion.run_id).data.metrics
    assert 0 < metrics["ndcg_at_10"] <= 1 and "recall_at_20" in metrics
    # the champion carries session rules for unknown visitors, scored on the holdout's
    # sessions
    assert metrics["session_cases"] > 100 and 0 < metrics["session_hit_rate_at_20"] <= 1
    use_tracking(tracking)
    served = load_recommender(f"models:/{MODEL}@champion")
    assert served.session_rules is not None and served.session_rules.nnz > 0
    # and a next-item session model over its catalogue, in the same version
    from recsys.core.models.session_scoring import scorer_of, session_model_of

    assert scorer_of(served) == "session_model:sequential_rules"
    assert session_model_of(served).n_items == served.items.size
    # and the items first seen after its training split (the generated shop's catalogue is
    # fixed from day one, so few or none here), counted on the run
    assert len(served.new_item_ids) == metrics["new_items"]
    assert not set(served.new_item_ids) & set(served.items)
    params = client.get_run(champion.run_id).data.params
    assert params["data.events_in"] == "20000" and len(params["data.source_sha256"]) == 64
    assert champion.tags["gate.decision"] == "approved"
    # the features step materialized the new snapshots into the online store
    from recsys.feature_repo.features.online import online_features
    from recsys.feature_repo.features.store import open_store

    store, _ = open_store(Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake")))
    known = pd.read_parquet(next((tmp_path / "lake" / "features" / "user_stats").glob("*")))
    online = online_features(store, [known["user_id"].iloc[0], "ghost"]).users
    assert online["user_missing"].tolist() == [False, True]
    first = latest_decision(tracking, MODEL)
    assert first["against"] == "popularity baseline"
    assert first["candidate_value"] > first["reference_value"]

    run(tmp_path, shop_file, tracking)  # same data: the candidate is not better
    assert aliases(client, MODEL) == {"champion": "1", "challenger": "2"}
    second = latest_decision(tracking, MODEL)
    assert not second["promote"] and second["against"] == "champion v1"
    assert second["candidate_value"] == pytest.approx(second["reference_value"])
    # the champion's session answers were scored on the same holdout sessions
    assert any(reason.startswith("guardrail session_mrr_at_20") and "+0.00%" in reason
               for reason in second["reasons"]), second["reasons"]
    assert client.get_model_version(MODEL, "2").tags["gate.decision"] == "refused"


@pytest.mark.slow
def test_a_failing_step_leaves_the_registry_as_it_was(tmp_path, shop_file):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run(tmp_path, shop_file, tracking)
    before = aliases(client_for(tracking), MODEL)
    versions = len(client_for(tracking).search_model_versions(f"name='{MODEL}'"))
    with pytest.raises(RuntimeError, match="train-op"):
        run(tmp_path, shop_file, tracking, models=["item_knn", "no_such_model"])
    assert aliases(client_for(tracking), MODEL) == before
    assert len(client_for(tracking).search_model_versions(f"name='{MODEL}'")) == versions


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_against_an_mlflow_server_backed_by_postgresql(tmp_path, shop_file,
                                                                 mlflow_server_on_postgres,
                                                                 monkeypatch):
    url, database_url = mlflow_server_on_postgres
    # an HTTP tracking server hides its database: promotion locks on it by name. The lock's
    # URL holds credentials: the steps read it from the environment, as a cluster's Secret
    # gives it, never from a pipeline parameter
    monkeypatch.setenv("RECSYS_REGISTRY_LOCK_URL", database_url)
    run(tmp_path, shop_file, url)
    client = client_for(url)
    assert aliases(client, MODEL)["champion"] == "1"
    run_id = client.get_model_version(MODEL, "1").run_id
    assert "ndcg_at_10" in client.get_run(run_id).data.metrics
    assert latest_decision(url, MODEL)["promote"] is True
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["gate.compared_with_version"] == "none"


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_with_an_s3_lake(tmp_path, shop_file, s3_server, s3_lake):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    bucket = s3_lake.uri.removeprefix("s3://").split("/")[0]
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_training_locally(tmp_path / "kfp", caching=False, source=str(shop_file),
                         lake_uri=s3_lake.uri, s3_endpoint_url=s3_server,
                         tracking_uri=tracking, registered_model=MODEL,
                         state_dir=str(tmp_path / "state"), feast_profile="local")
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="shop/") for o in page.get("Contents", [])]
    assert any(k.startswith("shop/raw/events/event_date=") for k in keys)
    assert any(k.startswith("shop/clean/events/event_date=") for k in keys)
    assert any(k.startswith("shop/features/user_stats/as_of=") for k in keys)
    # Feast read and materialized the feature tables in the bucket: no copy on local disk
    assert not (tmp_path / "state" / "feast" / "offline").exists()
    assert aliases(client_for(tracking), MODEL)["champion"] == "1"
