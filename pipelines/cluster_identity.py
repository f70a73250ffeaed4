"""Which identity each pipeline step uses towards MLflow on a cluster, as Kubernetes Secrets.

Credentials never appear in a manifest, a pipeline YAML or a run's parameters: every step
that talks to MLflow gets `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` from a
Secret (kfp-kubernetes `use_secret_as_env`), and promote also gets the registry lock's
PostgreSQL URL (`RECSYS_REGISTRY_LOCK_URL`) the same way. kfp.local ignores this platform
config: the embedded default runs without MLflow authentication.

- `recsys-mlflow-pipeline` (keys `username`, `password`): the pipeline identity, which may
  write (train, evaluate, gate, promote; monitoring's nested retraining too).
- `recsys-mlflow-monitoring`: monitoring's read-only identity (reads the champion's run).
- `recsys-registry-lock` (key `url`): the registry database the alias-move lock uses.
Serving's read-only identity (`recsys-mlflow-serving`) is set in its own manifest.
"""
from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

PIPELINE_IDENTITY = "recsys-mlflow-pipeline"
MONITORING_IDENTITY = "recsys-mlflow-monitoring"
REGISTRY_LOCK_SECRET = "recsys-registry-lock"
_CREDENTIALS = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}


def as_identity(task: PipelineTask, secret_name: str) -> PipelineTask:
    """Give `task` the MLflow credentials of the Secret `secret_name` (required: a pod
    without them fails at start rather than calling MLflow anonymously)."""
    return kubernetes.use_secret_as_env(task, secret_name=secret_name,
                                        secret_key_to_env=_CREDENTIALS)


def with_registry_lock(task: PipelineTask) -> PipelineTask:
    """Give `task` RECSYS_REGISTRY_LOCK_URL from the Secret `recsys-registry-lock`."""
    return kubernetes.use_secret_as_env(task, secret_name=REGISTRY_LOCK_SECRET,
                                        secret_key_to_env={"url": "RECSYS_REGISTRY_LOCK_URL"})
