"""Which identity each pipeline step uses towards MLflow on a cluster, as Kubernetes Secrets.

Credentials never appear in a manifest, a pipeline YAML or a run's parameters: every step
that talks to MLflow gets `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` from a
Secret (kfp-kubernetes `use_secret_as_env`), and the gate and promote also get the registry
lock's PostgreSQL URL (`RECSYS_REGISTRY_LOCK_URL`) the same way. The feature store's addresses,
which hold credentials (the online store's Redis URL, the Feast registry's PostgreSQL URL
with its password), reach the features step the same way, never as pipeline parameters.
kfp.local ignores this platform config: its steps read the same variables from the caller's
environment (pipelines/local_runner.py hands them to container steps).

- `recsys-mlflow-pipeline` (keys `username`, `password`): the pipeline identity, which may
  write (train, evaluate, gate, promote; monitoring's nested retraining too).
- `recsys-mlflow-monitoring`: monitoring's read-only identity (reads the champion's run).
- `recsys-registry-lock` (key `url`): the registry database the alias-move lock uses.
- `recsys-redis` and `recsys-feast-registry` (key `url` each): the online store and the
  Feast registry (`RECSYS_REDIS_URL`, `RECSYS_FEAST_REGISTRY_URL`), the Secrets the stream
  workers and serving read too.
- `recsys-s3` (keys `access_key_id`, `secret_access_key`): the S3 lake's and the serving
  artifacts' credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) for every step that
  reads or writes them, the Secret the collector, the stream workers and MLflow read too.
  Optional: on a cluster whose pods get S3 access from a workload identity (IRSA, GKE
  Workload Identity) it does not exist, and the SDK's own credential chain applies.
Serving's read-only identity (`recsys-mlflow-serving`) is set in its own manifest.
"""
from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

PIPELINE_IDENTITY = "recsys-mlflow-pipeline"
MONITORING_IDENTITY = "recsys-mlflow-monitoring"
REGISTRY_LOCK_SECRET = "recsys-registry-lock"
FEATURE_STORE_SECRETS = {"recsys-redis": "RECSYS_REDIS_URL",
                         "recsys-feast-registry": "RECSYS_FEAST_REGISTRY_URL"}
_CREDENTIALS = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
LAKE_STORE_SECRET = "recsys-s3"
_S3_CREDENTIALS = {"access_key_id": "AWS_ACCESS_KEY_ID",
                   "secret_access_key": "AWS_SECRET_ACCESS_KEY"}


def as_identity(task: PipelineTask, secret_name: str) -> PipelineTask:
    """Give `task` the MLflow credentials of the Secret `secret_name` (required: a pod
    without them fails at start rather than calling MLflow anonymously)."""
    return kubernetes.use_secret_as_env(task, secret_name=secret_name,
                                        secret_key_to_env=_CREDENTIALS)


def with_registry_lock(task: PipelineTask) -> PipelineTask:
    """Give `task` RECSYS_REGISTRY_LOCK_URL from the Secret `recsys-registry-lock`."""
    return kubernetes.use_secret_as_env(task, secret_name=REGISTRY_LOCK_SECRET,
                                        secret_key_to_env={"url": "RECSYS_REGISTRY_LOCK_URL"})


def with_feature_store(task: PipelineTask) -> PipelineTask:
    """Give `task` RECSYS_REDIS_URL and RECSYS_FEAST_REGISTRY_URL from their Secrets."""
    for secret_name, env in FEATURE_STORE_SECRETS.items():
        kubernetes.use_secret_as_env(task, secret_name=secret_name,
                                     secret_key_to_env={"url": env})
    return task


def with_lake_store(task: PipelineTask) -> PipelineTask:
    """Give `task` the S3 credentials of the Secret `recsys-s3`, when it exists."""
    return kubernetes.use_secret_as_env(task, secret_name=LAKE_STORE_SECRET,
                                        secret_key_to_env=_S3_CREDENTIALS, optional=True)
