"""The compiled pipeline runs as compiled: the IR YAML of `recsys pipeline compile`, loaded
back with kfp.components.load_component_from_file, is the pipeline function's spec, and run
with every step in the project image it ends with the same champion and metrics as the
subprocess runner on the same data."""
import shutil
from pathlib import Path

import pytest
from google.protobuf import json_format

from recsys.cli.main import main as recsys_main
from recsys.pipelines.training_pipeline import training_pipeline
from recsys.tools.compiled_run import load_compiled_pipeline
from recsys.tools.container_run import run_compiled_in_containers
from tests.infra.shared_runs import (  # noqa: F401 - pytest fixtures
    MODEL,
    in_process_run,
    shop_source,
)
from tests.infra.test_images import images  # noqa: F401 - the fixture that runs `make image`

needs_podman = pytest.mark.skipif(shutil.which("podman") is None,
                                  reason="podman is not installed (apt-get install podman "
                                         "runc debootstrap; see docs/deployment.md)")


@pytest.fixture(scope="module")
def compiled_yaml(tmp_path_factory) -> Path:
    """build/training_pipeline.yaml as `recsys pipeline compile` (`make compile`) writes it."""
    out = tmp_path_factory.mktemp("build")
    assert recsys_main(["pipeline", "compile", "--out", str(out)]) == 0
    return out / "training_pipeline.yaml"


def dag_tasks(spec) -> dict[str, dict[str, str]]:
    """Every DAG of a PipelineSpec (the root and each nested one): its tasks, by name, with
    the component each runs."""
    dags = {"root": spec.root.dag}
    dags.update({name: component.dag for name, component in spec.components.items()
                 if component.WhichOneof("implementation") == "dag"})
    return {name: {task: task_spec.component_ref.name for task, task_spec in dag.tasks.items()}
            for name, dag in dags.items()}


def test_the_yaml_loaded_back_has_the_pipeline_functions_tasks_and_parameters(compiled_yaml):
    loaded = load_compiled_pipeline(compiled_yaml)
    compiled, written = loaded.component_spec.implementation.graph, training_pipeline.pipeline_spec

    tasks = dag_tasks(compiled)
    assert tasks == dag_tasks(written)
    every_task = {task for dag in tasks.values() for task in dag}
    assert {"fingerprint-op", "extract-op", "validate-op", "preprocess-op", "spark-data-op",
            "features-op", "train-op", "evaluate-op", "gate-op", "promote-op",
            "report-outcome-op", "exit-handler-1"} <= every_task
    parameters = {name: (spec.type, spec.default)
                  for name, spec in loaded.component_spec.inputs.items()}
    assert parameters == {name: (spec.type, spec.default)
                          for name, spec in training_pipeline.component_spec.inputs.items()}
    assert parameters["models"] == ("List", ["popularity", "item_knn", "ease"])
    assert parameters["engine"] == ("String", "pandas")
    assert {"source", "lake_uri", "tracking_uri"} == {
        name for name, spec in loaded.component_spec.inputs.items() if not spec.optional}
    # all of it: wiring, conditions, executors' images and commands, and the Secrets
    assert compiled == written
    assert loaded.component_spec.platform_spec == training_pipeline.platform_spec
    kubernetes = json_format.MessageToDict(
        loaded.component_spec.platform_spec.platforms["kubernetes"].deployment_spec)
    gate = kubernetes["executors"]["exec-gate-op"]["secretAsEnv"]
    assert {secret["secretName"] for secret in gate} == {"recsys-mlflow-pipeline",
                                                        "recsys-registry-lock"}


@pytest.mark.integration
@pytest.mark.slow
@needs_podman
def test_the_compiled_yaml_in_containers_promotes_what_the_in_process_run_promotes(
        tmp_path, images, compiled_yaml, shop_source, in_process_run):  # noqa: F811
    contained = run_compiled_in_containers(tmp_path / "compiled", shop_source, MODEL,
                                           pipeline_yaml=compiled_yaml)
    local = in_process_run["decision"]

    assert contained["aliases"]["champion"] == "1" == in_process_run["aliases"]["champion"]
    decision = contained["decision"]
    assert decision["version"] == "1"
    assert decision["promote"] is True and local["promote"] is True
    assert decision["candidate"] == local["candidate"]
    assert decision["candidate_value"] == pytest.approx(local["candidate_value"], abs=1e-9)
    quality = {k: v for k, v in local["candidate_metrics"].items() if "per_second" not in k}
    assert len(quality) >= 30  # every ranking metric, only the timing left out
    assert {k: decision["candidate_metrics"][k] for k in quality} == pytest.approx(
        quality, abs=1e-9)
