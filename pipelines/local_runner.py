"""Run the training pipeline on one machine with kfp.local.

- `subprocess` (the embedded default): every step a subprocess of this environment.
- `container`: every step in the project image (`RECSYS_IMAGE`, built by `make image`)
  through kfp.local's DockerRunner - on this machine podman's Docker-compatible API
  (`DOCKER_HOST=unix:///...sock`). Steps use the host network, so they reach the services
  on loopback (MLflow, PostgreSQL, Redis, an S3 endpoint), and get `environment` (e.g. S3
  credentials, as a cluster's Secrets would give them).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from kfp import local

from recsys.core.errors import ConfigError
from recsys.pipelines.training_pipeline import training_pipeline

log = logging.getLogger(__name__)
RUNNERS = ("subprocess", "container")


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
        chosen = local.DockerRunner(network_mode="host", environment=dict(environment or {}))
    else:
        raise ConfigError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    local.init(runner=chosen, pipeline_root=str(pipeline_root), enable_caching=caching,
               raise_on_error=True)
    log.info("pipeline %s: running locally under %s with the %s runner (caching %s)",
             training_pipeline.name, pipeline_root, runner, "on" if caching else "off")
    training_pipeline(**params)
