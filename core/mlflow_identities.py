"""The MLflow identities of the production profile, on MLflow's basic-auth server app.

The tracking server runs `mlflow server --app-name basic-auth` with its users in PostgreSQL
and `default_permission = READ` (infra/mlflow/basic_auth.ini). Three identities:

- the **pipeline** (writer): MANAGE on the registered model - registers versions, moves
  aliases, deletes a half-registered version; it owns the experiments it creates;
- **serving** and **monitoring** (readers): READ on the registered model - they load the
  champion and read its run, and cannot register a version or move an alias (monitoring
  writes its drift runs to an experiment it creates and therefore owns).

`provision_identities` creates the users that do not exist yet and grants those
permissions; it runs as MLflow's admin (MLFLOW_TRACKING_USERNAME/PASSWORD of the admin)
and is safe to run again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
REGISTERED_MODEL = "registered_model"
WRITER_PERMISSION, READER_PERMISSION = "MANAGE", "READ"


@dataclass(frozen=True)
class Identity:
    username: str
    password: str
    writes: bool


def provision_identities(tracking_uri: str, registered_model: str,
                         identities: list[Identity]) -> dict[str, str]:
    """Create missing users and grant each its permission on `registered_model` (created if
    it does not exist, so the grant has something to name); returns user -> permission."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    auth = AuthServiceClient(tracking_uri)
    registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        registry.get_registered_model(registered_model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registry.create_registered_model(registered_model)
    granted = {}
    for identity in identities:
        try:
            auth.create_user(identity.username, identity.password)
            log.info("created MLflow user %s", identity.username)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        permission = WRITER_PERMISSION if identity.writes else READER_PERMISSION
        _grant(auth, identity.username, registered_model, permission)
        granted[identity.username] = permission
    return granted


def _grant(auth, username: str, registered_model: str, permission: str) -> None:
    """Grant exactly `permission` (an existing different grant is replaced)."""
    try:
        auth.grant_user_permission(username, REGISTERED_MODEL, registered_model, permission)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        current = auth.get_user_permission(username, REGISTERED_MODEL, registered_model)
        if current.permission != permission:
            auth.revoke_user_permission(username, REGISTERED_MODEL, registered_model)
            auth.grant_user_permission(username, REGISTERED_MODEL, registered_model,
                                       permission)
