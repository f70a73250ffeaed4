"""MLflow connection helpers: one tracking URI, experiments whose artifacts land in the state
directory when the store is local."""
from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient


def client_for(tracking_uri: str) -> MlflowClient:
    """A client whose tracking and registry both use `tracking_uri`.

    The fluent URI is pointed there too: MLflow's SQL registry resolves `models:/m-...`
    sources through a default client, so both must agree.
    """
    use_tracking(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def use_tracking(tracking_uri: str) -> None:
    """Point the fluent mlflow API at `tracking_uri` (call at the edge only)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


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
