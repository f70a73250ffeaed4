"""The MLflow identities of the production profile, on MLflow's basic-auth server app.

The tracking server runs `mlflow server --app-name basic-auth` with its users in PostgreSQL
and `default_permission = READ` (infra/mlflow/basic_auth.ini). MLflow gives whoever creates
an experiment MANAGE on it, so nothing is left for a reader to create: the experiments every
identity uses are created here, as the admin, and each identity gets exactly its grant on
them. Three roles:

- **writer** (the pipeline): MANAGE on the registered model (registers versions, moves
  aliases, deletes a half-registered version) and on the writer's experiments (training
  runs, the online experiments `recsys experiment start` records);
- **reader** (serving): READ on the model and on every experiment; it cannot create a run,
  set a tag or move an alias;
- **monitor** (monitoring): READ on the model and on the writer's experiments, EDIT on its
  own experiment (its drift runs) and EDIT on model *versions* (MLflow's
  `registered_model_version` tier), which is what setting the drift tags on the champion's
  version takes; it cannot register a version, move an alias or delete a tag (those need
  the model itself), nor write to the writer's experiments.

`provision_identities` creates the users, the registered model and the experiments that do
not exist yet and grants those permissions, replacing a different grant (e.g. the MANAGE an
earlier release's serving got by creating `recsys-online-experiments`); it runs as MLflow's
admin (MLFLOW_TRACKING_USERNAME/PASSWORD of the admin) and is safe to run again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
REGISTERED_MODEL, MODEL_VERSIONS, EXPERIMENT = ("registered_model", "registered_model_version",
                                                "experiment")
Role = Literal["writer", "reader", "monitor"]


@dataclass(frozen=True)
class Identity:
    username: str
    password: str
    role: Role


@dataclass(frozen=True)
class Experiments:
    """The experiments to create and grant on, by who writes to them."""

    writer: tuple[str, ...] = ()
    """Written by the writer (training runs, online experiments)."""
    monitor: tuple[str, ...] = ()
    """Written by the monitor (drift runs)."""


def grants_of(role: Role, registered_model: str, experiments: Experiments
              ) -> dict[tuple[str, str], str | None]:
    """(resource type, name) -> the exact permission of `role` (None: no grant of its own)."""
    writes_model, writes_versions = role == "writer", role == "monitor"
    grants: dict[tuple[str, str], str | None] = {
        (REGISTERED_MODEL, registered_model): "MANAGE" if writes_model else "READ",
        (MODEL_VERSIONS, "*"): "EDIT" if writes_versions else None}
    for name in experiments.writer:
        grants[(EXPERIMENT, name)] = "MANAGE" if role == "writer" else "READ"
    for name in experiments.monitor:
        grants[(EXPERIMENT, name)] = "EDIT" if role == "monitor" else "READ"
    return grants


def provision_identities(tracking_uri: str, registered_model: str, identities: list[Identity],
                         experiments: Experiments = Experiments()) -> dict[str, dict[str, str]]:
    """Create missing users, the registered model and `experiments` when missing, and grant
    each identity exactly its role's permissions; returns user -> "type name" -> permission."""
    from mlflow.server.auth.client import AuthServiceClient

    from recsys.core.lifecycle.tracking import client_for, ensure_experiment

    auth = AuthServiceClient(tracking_uri)
    registry = client_for(tracking_uri)
    try:
        registry.get_registered_model(registered_model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registry.create_registered_model(registered_model)
    experiment_ids = {name: ensure_experiment(tracking_uri, name)
                      for name in (*experiments.writer, *experiments.monitor)}
    granted: dict[str, dict[str, str]] = {}
    for identity in identities:
        try:
            auth.create_user(identity.username, identity.password)
            log.info("created MLflow user %s", identity.username)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        mine = granted.setdefault(identity.username, {})
        for (kind, name), permission in grants_of(identity.role, registered_model,
                                                  experiments).items():
            resource = experiment_ids[name] if kind == EXPERIMENT else name
            _grant(auth, identity.username, kind, resource, permission)
            if permission is not None:
                mine[f"{kind} {name}"] = permission
    return granted


def _grant(auth, username: str, kind: str, resource: str, permission: str | None) -> None:
    """Grant exactly `permission` on (kind, resource): an existing different grant is
    replaced; None removes a grant of the user's own."""
    if permission is None:
        try:
            auth.revoke_user_permission(username, kind, resource)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        return
    try:
        auth.grant_user_permission(username, kind, resource, permission)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        if auth.get_user_permission(username, kind, resource).permission != permission:
            auth.revoke_user_permission(username, kind, resource)
            auth.grant_user_permission(username, kind, resource, permission)
