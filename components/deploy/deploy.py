"""The deploy step: after a promotion, export the new champion as a serving artifact, move
the cluster's serving resource to it (`rollout.py`) and, when that fails, move the
`champion` alias back (the registry's own rollback), so the registry never names a champion
that serving could not load."""
from __future__ import annotations

import logging
from typing import Any

from mlflow import MlflowClient
from pydantic import BaseModel, ConfigDict, Field

from recsys.components.deploy.rollout import RolloutFailed, failure_message, roll_out
from recsys.components.deploy.served_resource import ExportedArtifact, ServingTarget
from recsys.core.errors import NotFoundError
from recsys.core.lifecycle.registry import CHAMPION, StaleComparison, aliases, rollback
from recsys.core.lifecycle.registry_lock import RegistryLock

log = logging.getLogger(__name__)


class DeployConfig(BaseModel):
    """What the deploy step moves, where the artifact goes and how long it waits."""

    model_config = ConfigDict(extra="forbid")

    registered_model: str
    version: str
    """The version the promote step made champion (the gate's outcome)."""
    target: ServingTarget
    artifacts: str = Field(min_length=1)
    """Folder or `s3://bucket/prefix` the artifact is written under, as `v<version>`."""
    s3_endpoint_url: str | None = None
    timeout_seconds: float = Field(600.0, gt=0)
    """How long the resource may take to report the new generation Ready."""
    poll_seconds: float = Field(5.0, gt=0)


def artifact_uri(artifacts: str, version: str) -> str:
    """Where version `version`'s artifact goes (infra/seldon/model.yaml: `.../recsys/v<N>`)."""
    return f"{artifacts.rstrip('/')}/v{version}"


def export_version(config: DeployConfig) -> ExportedArtifact:
    """Write the version's model and its MLServer settings (pinned to the version and its
    SHA-256) under `artifact_uri`; the same artifact `recsys registry export --artifact`
    writes."""
    from recsys.core.lifecycle.pyfunc import load_recommender
    from recsys.serving.artifact import write_artifact

    model = load_recommender(f"models:/{config.registered_model}/{config.version}")
    written = write_artifact(model, artifact_uri(config.artifacts, config.version),
                             config.target.name, config.version, config.s3_endpoint_url)
    return ExportedArtifact(uri=written["uri"], version=written["version"],
                            sha256=written["sha256"])


def deploy_promoted(config: DeployConfig, client: MlflowClient, lock: RegistryLock,
                    api_client: Any) -> dict:
    """Roll the promoted version out to `config.target`; returns what is served. Any failure
    after the champion check (export, a refused patch, not ready in time) rolls the champion
    alias back and raises RolloutFailed naming the resource and why."""
    name, version = config.registered_model, config.version
    champion = aliases(client, name).get(CHAMPION)
    if champion != version:
        raise RolloutFailed(f"the champion of {name} is v{champion}, not the promoted "
                            f"v{version} (moved since the promotion): nothing rolled out "
                            f"to {config.target}")
    try:
        artifact = export_version(config)
        served = roll_out(api_client, config.target, artifact,
                          timeout_seconds=config.timeout_seconds,
                          poll_seconds=config.poll_seconds)
    except Exception as exc:
        reason = f"rollout of {name} v{version} to {config.target} failed: " \
                 f"{failure_message(exc)}"
        raise RolloutFailed(f"{reason}; {_roll_back_champion(client, name, version, reason, lock)}"
                            ) from exc
    return {"target": str(config.target), "version": version, "uri": artifact.uri,
            "sha256": artifact.sha256, "generation": served["metadata"].get("generation")}


def _roll_back_champion(client: MlflowClient, name: str, version: str, reason: str,
                        lock: RegistryLock) -> str:
    """champion <- previous, if the champion is still `version` (checked under the registry
    lock, so a promotion landing meanwhile stays); says what was done."""
    try:
        restored = rollback(client, name, reason, lock=lock, only_from=version)
    except StaleComparison:
        current = aliases(client, name).get(CHAMPION)
        return f"the champion is v{current} now, not v{version}: alias left as it is"
    except NotFoundError:
        return (f"{name} has no previous version: the champion stays v{version}, which "
                "serving does not run")
    log.warning("deploy: champion of %s rolled back to v%s: %s", name, restored, reason)
    return f"the champion of {name} is rolled back to v{restored}"
