"""MLflow connection helpers: one tracking URI, experiments whose artifacts land in the state
directory when the store is local.

The tracking URI is the project's setting (`Settings.tracking_uri`: RECSYS_MLFLOW_TRACKING_URI,
else MLflow's own MLFLOW_TRACKING_URI, else a SQLite file in the state directory). The
registry is the same store, unless the project's setting is unset and MLFLOW_REGISTRY_URI
is set (`registry_uri_for`)."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow import MlflowClient

PROJECT_URI_VARIABLE = "RECSYS_MLFLOW_TRACKING_URI"
REGISTRY_URI_VARIABLE = "MLFLOW_REGISTRY_URI"
MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", REGISTRY_URI_VARIABLE)
STEP_REGISTRY_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
"""A pipeline step's MLflow calls: three retries, a wait of at most 60 s per reply (an
artifact upload's), so a registry that stopped answering fails the step within about five
minutes instead of MLflow's default seven retries of 120 s each (about 20 minutes)."""


@contextmanager
def registry_call_bounds(bounds: Mapping[str, str] = STEP_REGISTRY_BOUNDS) -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeout inside the block (MLflow reads them at each
    call), keeping any value the environment already sets, and put the environment back
    afterwards (a step's body may run inside another process, a test's)."""
    added = [name for name in bounds if name not in os.environ]
    os.environ.update({name: bounds[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def registry_uri_for(tracking_uri: str, environ: Mapping[str, str] | None = None) -> str:
    """The registry URI that goes with `tracking_uri`: MLflow's MLFLOW_REGISTRY_URI when it is
    set and the project's RECSYS_MLFLOW_TRACKING_URI is not (the project's one URI names
    both stores, and wins); otherwise `tracking_uri` itself."""
    environ = os.environ if environ is None else environ
    if environ.get(PROJECT_URI_VARIABLE):
        return tracking_uri
    return environ.get(REGISTRY_URI_VARIABLE) or tracking_uri


def client_for(tracking_uri: str) -> MlflowClient:
    """A client on `tracking_uri` and its registry (`registry_uri_for`: the same URI unless
    MLflow's MLFLOW_REGISTRY_URI says otherwise).

    The fluent URIs are pointed there too: MLflow's SQL registry resolves `models:/m-...`
    sources through a default client, so both must agree.
    """
    use_tracking(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri_for(tracking_uri))


def use_tracking(tracking_uri: str) -> None:
    """Point the fluent mlflow API at `tracking_uri` and its registry (call at the edge only).

    MLflow also writes both URIs into MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI for its
    subprocesses; they are put back as they were, so that they keep saying what the user
    set (what `Settings` and `registry_uri_for` read), not the store this process used last.
    """
    registry = registry_uri_for(tracking_uri)
    before = {name: os.environ.get(name) for name in MLFLOW_VARIABLES}
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_artifact_root(tracking_uri: str) -> str | None:
    """For a SQLite store, the `mlartifacts/` folder beside the database; else None (server)."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """Experiment id of `name`, created (with a local artifact root when the store is local)."""
    client = client_for(tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    root = local_artifact_root(tracking_uri)
    location = f"{root}/{name}" if root else None
    return client.create_experiment(name, artifact_location=location)
