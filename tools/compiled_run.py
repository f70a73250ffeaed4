"""The compiled training pipeline run as compiled: its Kubeflow IR YAML (what a cluster is
given, `build/training_pipeline.yaml`) loaded back with
`kfp.components.load_component_from_file` and run by kfp.local's DockerRunner, every step
in the project image, against the services of `make run-containers`
(`python -m recsys.tools.container_run --compiled`: `run_compiled_in_containers` there).

What kfp.local 2.17 does with the loaded YAML: it is a graph component, and calling it under
`local.init` hands its PipelineSpec to the same orchestrator as calling the pipeline
function does (the DAG, the engine branches, the gate's condition, the exit handler; each
executor's image and command as compiled, the YAML's defaults for every parameter not
given). kfp.local ignores the YAML's platform spec (kfp-kubernetes), so it runs without:
- the Secrets given as environment (MLflow credentials, the registry lock's, the online
  store's and the Feast registry's URLs): here every step gets them as environment
  instead (`container_environment`, as `pipeline run --runner container` gives them), on a
  cluster only the steps the pipeline names get each Secret;
- the ConfigMap with the Pushgateway's address: the exit handler pushes nothing (under
  kfp.local the runner reports, and this run has no Pushgateway);
- the steps' CPU and memory requests and limits: the containers run unbounded.
"""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from kfp import local
from kfp.components import YamlComponent, load_component_from_file

from recsys.core.errors import ConfigError
from recsys.core.settings import load_settings
from recsys.pipelines.local_runner import (
    CONTAINER_STATE_DIR,
    read_exit_codes_reliably,
)

log = logging.getLogger(__name__)


def load_compiled_pipeline(path: Path) -> YamlComponent:
    """The training pipeline's IR YAML at `path`, loaded back."""
    pipeline = load_component_from_file(str(path))
    if pipeline.component_spec.implementation.graph is None:
        raise ConfigError(f"{path} holds a single component, not a compiled pipeline")
    return pipeline


def compiled_run_arguments(source_uri: str, models: list[str] | None = None) -> dict:
    """The arguments `recsys pipeline run --runner container` gives the pipeline that
    depend on where it runs, from this process's settings; every other parameter keeps
    the YAML's default (the run command's defaults are the same values)."""
    settings = load_settings()
    arguments: dict[str, object] = dict(
        source=source_uri, lake_uri=settings.lake,
        tracking_uri=settings.tracking_uri, s3_endpoint_url=settings.s3_endpoint_url or "",
        registered_model=settings.registered_model_name, state_dir=CONTAINER_STATE_DIR,
        feast_profile=settings.feast_profile, engine=settings.engine,
        run_label=uuid.uuid4().hex)
    if models:
        arguments["models"] = list(models)
    return arguments


def run_compiled_pipeline(pipeline: YamlComponent, pipeline_root: Path, environment: dict,
                          arguments: dict) -> None:
    """Run the loaded pipeline with every step in its compiled image through DOCKER_HOST,
    on the host network, with `environment`; raises if a step fails."""
    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    os.chmod(pipeline_root, 0o777)  # the image's user (uid 1000) writes step outputs here
    read_exit_codes_reliably()
    local.init(runner=local.DockerRunner(network_mode="host", environment=dict(environment)),
               pipeline_root=str(pipeline_root), enable_caching=False, raise_on_error=True)
    log.info("compiled pipeline %s: running under %s", pipeline.name, pipeline_root)
    pipeline(**arguments)
