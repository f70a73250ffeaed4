"""Run the training pipeline on one machine with kfp.local.

- `subprocess` (the embedded default): every step a subprocess of this environment.
- `container`: every step in the project image (`RECSYS_IMAGE`, built by `make image`)
  through kfp.local's DockerRunner - on this machine podman's Docker-compatible API
  (`DOCKER_HOST=unix:///...sock`). Steps use the host network, so they reach the services
  on loopback (MLflow, PostgreSQL, Redis, an S3 endpoint), and get `environment` (e.g. S3
  credentials, as a cluster's Secrets would give them).
Addresses that hold credentials (the online store's Redis URL, the Feast registry's and the
registry lock's PostgreSQL URLs) are never pipeline parameters: subprocess steps read them from this
process's environment, container steps get them in theirs (`container_environment`).
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kfp import local
from kfp.local import status as local_status

from recsys.components.outcome.push import RunOutcome, gate_outcome, push_run_outcome
from recsys.core.errors import ConfigError
from recsys.core.settings import load_settings
from recsys.pipelines.training_pipeline import training_pipeline

log = logging.getLogger(__name__)
RUNNERS = ("subprocess", "container")
CONTAINER_STATE_DIR = "/work/.recsys"
"""The steps' state directory inside the image (its writable work dir)."""
CONTAINER_PASSTHROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                         "AWS_DEFAULT_REGION", "MLFLOW_TRACKING_USERNAME",
                         "MLFLOW_TRACKING_PASSWORD", "RECSYS_NO_PROGRESS")
"""Credentials a container step gets from the caller's environment (a cluster gives them
from Secrets); nothing else of the host's environment reaches the steps."""


def container_environment() -> dict:
    """The passthrough credentials, and the feature store's and the registry lock's URLs
    as this process's settings resolve them (what a cluster gives the steps from Secrets)."""
    settings = load_settings()
    lock = {"RECSYS_REGISTRY_LOCK_URL": settings.registry_lock_url} \
        if settings.registry_lock_url else {}
    return {**{name: os.environ[name] for name in CONTAINER_PASSTHROUGH if name in os.environ},
            "RECSYS_REDIS_URL": settings.redis_url,
            "RECSYS_FEAST_REGISTRY_URL": settings.feast_registry_url, **lock}


def container_problems(source: str, lake_uri: str, tracking_uri: str,
                       feast_profile: str) -> list[str]:
    """Why a run cannot work with every step in its own container: each step sees only
    what it reaches over the network, so nothing may live on this machine's disk."""
    problems = []
    if not source.startswith("s3://"):
        problems.append(f"the source must be in S3 (s3://...), not {source!r}")
    if not lake_uri.startswith("s3://"):
        problems.append(f"the lake must be in S3 (RECSYS_LAKE_URI=s3://...), not {lake_uri!r}")
    if not tracking_uri.startswith(("http://", "https://")):
        problems.append("MLflow must be a server (RECSYS_MLFLOW_TRACKING_URI=http://...), "
                        f"not {tracking_uri!r}")
    if feast_profile != "production":
        problems.append("Feast must use the production profile (RECSYS_FEAST_PROFILE="
                        "production: Redis online store, SQL registry)")
    return problems


def run_training_locally(pipeline_root: Path, caching: bool = True,
                         runner: str = "subprocess", environment: dict | None = None,
                         **params) -> None:
    """Execute every step with `runner`; raises if a step fails."""
    pipeline_root = Path(pipeline_root).resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    if runner == "subprocess":
        chosen = local.SubprocessRunner(use_venv=False)
    elif runner == "container":
        if not os.environ.get("DOCKER_HOST"):
            raise ConfigError("the container runner needs a Docker-compatible API: start "
                              "`podman system service --time=0 unix:///PATH.sock` and set "
                              "DOCKER_HOST=unix:///PATH.sock (make run-containers does both)")
        os.chmod(pipeline_root, 0o777)  # the image's user (uid 1000) writes step outputs here
        read_exit_codes_reliably()
        chosen = local.DockerRunner(network_mode="host", environment=dict(environment or {}))
    else:
        raise ConfigError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    local.init(runner=chosen, pipeline_root=str(pipeline_root), enable_caching=caching,
               raise_on_error=True)
    log.info("pipeline %s: running locally under %s with the %s runner (caching %s)",
             training_pipeline.name, pipeline_root, runner, "on" if caching else "off")
    pushgateway_url = load_settings().pushgateway_url
    with timed_steps() as report, _without_env("RECSYS_PUSHGATEWAY_URL"):
        try:
            training_pipeline(**params)
        except Exception:
            report.succeeded = False
            raise
        finally:  # failed runs report too
            push_run_outcome(pushgateway_url, report)


@contextmanager
def timed_steps() -> Iterator[RunOutcome]:
    """The training run's outcome as kfp.local runs it: each step's wall time (the last
    attempt's, by step name) and the gate's decision, read from its `outcome` artifact."""
    from kfp.local import task_dispatcher

    report = RunOutcome(pipeline="training", succeeded=True)
    original = task_dispatcher.run_single_task_implementation

    def timed(*args, **kwargs):
        started = time.monotonic()
        outputs, state = original(*args, **kwargs)
        # comp-train-op-2: the second copy of a step (the pandas and Spark branches)
        step = re.sub(r"-\d+$", "", kwargs["component_name"].removeprefix("comp-"))
        if step != "report-outcome-op":  # the exit handler, not a step of the run
            report.step_seconds[step] = time.monotonic() - started
        if step == "gate-op":
            report.gate = gate_outcome(_decision(outputs),
                                       step_failed=state != local_status.Status.SUCCESS)
        return outputs, state

    task_dispatcher.run_single_task_implementation = timed
    try:
        yield report
    finally:
        task_dispatcher.run_single_task_implementation = original
        report.finished_at = time.time()


def _decision(outputs: dict) -> dict | None:
    artifact = (outputs or {}).get("outcome")
    path = getattr(artifact, "path", None)
    if not path or not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle).get("decision")


@contextmanager
def _without_env(name: str) -> Iterator[None]:
    """The steps do not see `name` (under kfp.local the runner reports, not the pipeline's
    exit handler: one push per run)."""
    value = os.environ.pop(name, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[name] = value


def read_exit_codes_reliably() -> None:
    """kfp.local 2.17 runs step containers with auto-remove and, when the container is gone
    before it asks for the exit code, assumes 0: a failed step could pass. Here the
    container is kept until its exit code is read, then removed."""
    import kfp
    from kfp.local import docker_task_handler

    if not kfp.__version__.startswith("2.17."):
        raise ConfigError(f"the container runner is checked against kfp 2.17, found "
                          f"{kfp.__version__}")
    docker_task_handler.run_docker_container = run_and_read_exit_code


def run_and_read_exit_code(client, image: str, command: list[str], volumes: dict,
                            **container_run_args) -> int:
    from docker.errors import ImageNotFound

    image = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    try:  # this image only: listing them all races with another build removing one
        client.images.get(image)
    except ImageNotFound:
        raise ConfigError(f"image {image} is not built here: run `make image`") from None
    container = client.containers.run(image=image, command=command, detach=True,
                                      stdout=True, stderr=True, volumes=volumes,
                                      auto_remove=False, **container_run_args)
    try:
        for line in container.logs(stream=True):
            print(line.decode(), end="")
        code = int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)
    if code:
        log.error("step container %s exited with %d", container.short_id, code)
    return code
