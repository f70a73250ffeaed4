"""`recsys registry migrate`: convert versions registered before 0.2 (pickles) to data-only.

Since 0.2 nothing loads a pickle: a version without the `recsys.model_sha256` tag is refused
everywhere. An operator upgrading a registry runs this once, explicitly. For every such
version it:

1. reads the old pickled recommender (`artifacts/recommender.pkl`, as its MLmodel file
   names it) with the model-only unpickler
   (`recsys.core.models.legacy_pickle`: a pickle naming anything else is refused, nothing in
   it runs) - the old version's `python_model.pkl` (a cloudpickle) is never opened;
2. logs the model again, data-only and code-based, in a run of the experiment
   `registry-migration`, and registers it as a new version carrying the old version's tags,
   its SHA-256 and `registry.migrated_from_version`;
3. under the registry lock, moves every alias that still points at the old version to the
   new one, and tags the old version `registry.migrated_to_version`.

Old versions are kept (delete them in MLflow when you no longer need their history). A
version that cannot be converted is reported and left as it was; the others still migrate.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import yaml
from mlflow import MlflowClient

from recsys.core.lifecycle.pyfunc import ARTIFACT_KEY, log_recommender
from recsys.core.lifecycle.registry import MODEL_SHA_TAG, aliases, create_version
from recsys.core.lifecycle.registry_lock import RegistryLock
from recsys.core.lifecycle.tracking import ensure_experiment
from recsys.core.models.legacy_pickle import read_legacy_model

log = logging.getLogger(__name__)
MIGRATION_EXPERIMENT = "registry-migration"
MIGRATED_FROM_TAG = "registry.migrated_from_version"
MIGRATED_TO_TAG = "registry.migrated_to_version"


@dataclass
class MigrationReport:
    migrated: dict[str, str] = field(default_factory=dict)
    """old version -> new version"""
    moved_aliases: dict[str, str] = field(default_factory=dict)
    """alias -> new version"""
    failed: dict[str, str] = field(default_factory=dict)
    """old version -> why it was left as it was"""


def legacy_versions(client: MlflowClient, name: str) -> list[str]:
    """Versions that record no model SHA-256 and were not migrated yet, oldest first."""
    found = []
    for mv in client.search_model_versions(f"name='{name}'"):
        tags = mv.tags or {}
        if MODEL_SHA_TAG not in tags and MIGRATED_TO_TAG not in tags:
            found.append(str(mv.version))
    return sorted(found, key=int)


def migrate_registry(client: MlflowClient, tracking_uri: str, name: str, *,
                     lock: RegistryLock) -> MigrationReport:
    """Convert every legacy version of `name` (see the module docstring)."""
    report = MigrationReport()
    for old in legacy_versions(client, name):
        try:
            report.migrated[old] = _migrate_version(client, tracking_uri, name, old)
        except Exception as exc:
            report.failed[old] = f"{type(exc).__name__}: {exc}"
            log.error("%s v%s not migrated: %s", name, old, report.failed[old])
    with lock:
        for alias, version in aliases(client, name).items():
            new = report.migrated.get(version)
            if new is not None:
                client.set_registered_model_alias(name, alias, new)
                report.moved_aliases[alias] = new
        for old, new in report.migrated.items():
            client.set_model_version_tag(name, old, MIGRATED_TO_TAG, new)
    return report


def _migrate_version(client: MlflowClient, tracking_uri: str, name: str, old: str) -> str:
    source = client.get_model_version(name, old)
    with tempfile.TemporaryDirectory(prefix="recsys-migrate-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{old}", dst_path=str(Path(tmp) / "old")))
        model = read_legacy_model(_legacy_artifact(local, f"{name} v{old}"))
        experiment_id = ensure_experiment(tracking_uri, MIGRATION_EXPERIMENT)
        with mlflow.start_run(experiment_id=experiment_id,
                              run_name=f"{name} v{old} -> data-only") as run:
            mlflow.set_tags({"recsys.step": "migrate", "recsys.model": model.name,
                             MIGRATED_FROM_TAG: old, "registry.migrated_from_run": str(
                                 source.run_id)})
            info = log_recommender(model, Path(tmp) / "new")
        digest = client.get_run(run.info.run_id).data.tags[MODEL_SHA_TAG]
    new = create_version(client, name, info.model_uri, run.info.run_id, source.description)
    for key, value in (source.tags or {}).items():
        client.set_model_version_tag(name, new, key, value)
    client.set_model_version_tag(name, new, MODEL_SHA_TAG, digest)
    client.set_model_version_tag(name, new, MIGRATED_FROM_TAG, old)
    log.info("%s v%s (a pickle) migrated to v%s (data-only, SHA-256 %s)", name, old, new,
             digest[:12])
    return new


def _legacy_artifact(model_dir: Path, what: str) -> Path:
    """The pickled recommender a pre-0.2 pyfunc names as its `recommender` artifact (read
    from the MLmodel file as plain YAML; nothing of the model is imported)."""
    spec = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts") or {}
    relative = (artifacts.get(ARTIFACT_KEY) or {}).get("path")
    if not relative:
        raise FileNotFoundError(f"{what} names no '{ARTIFACT_KEY}' artifact: not a model "
                                "registered by recsys")
    path = (model_dir / relative).resolve()
    if not path.is_relative_to(model_dir.resolve()) or not path.is_file():
        raise FileNotFoundError(f"{what}: artifact {relative!r} is not a file of the model")
    if not path.name.endswith(".pkl"):
        raise FileNotFoundError(f"{what}: artifact {relative!r} is not a pre-0.2 pickle")
    return path
