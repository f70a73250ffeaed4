"""Point a serving resource at an exported artifact through the Kubernetes API and wait
until it reports the new generation Ready; if it never does, put its previous spec back.
The registry's side (the champion alias) is `deploy.py`'s."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from recsys.components.deploy.served_resource import (
    ExportedArtifact,
    ServingTarget,
    describe_condition,
    is_ready_for,
    pointing_patch,
    ready_condition,
    restoring_patch,
)
from recsys.core.errors import RecsysError

log = logging.getLogger(__name__)


class RolloutFailed(RecsysError):
    """The serving resource refused the new artifact or never became ready on it."""


def roll_out(api_client: Any, target: ServingTarget, artifact: ExportedArtifact, *,
             timeout_seconds: float, poll_seconds: float = 5.0) -> dict:
    """Patch `target` to serve `artifact` and return it once Ready on that generation.
    RolloutFailed when the API refuses the patch (nothing changed) or when it is not ready
    within `timeout_seconds` (its previous spec is then restored)."""
    from kubernetes.client.exceptions import ApiException

    before = _read(api_client, target)
    try:
        patched = _patch(api_client, target, pointing_patch(target, before, artifact))
    except ApiException as exc:
        raise RolloutFailed(f"{target} refused the patch to {artifact.uri}: "
                            f"{api_message(exc)}") from exc
    generation = int(patched["metadata"].get("generation", 0))
    log.info("rollout: %s now points at %s (v%s), generation %d", target, artifact.uri,
             artifact.version, generation)
    # an unchanged spec keeps its generation: whatever Ready it has is this artifact's
    unchanged = generation == int(before["metadata"].get("generation", 0))
    ready_before = None if unchanged else ready_condition(before)
    try:
        return _wait_until_ready(api_client, target, generation, ready_before,
                                 timeout_seconds, poll_seconds)
    except Exception as exc:  # not ready, or the API went away while waiting
        reason = exc.message if isinstance(exc, RolloutFailed) else \
            f"waiting for {target} failed: {failure_message(exc)}"
        raise RolloutFailed(f"{reason}; {_restore(api_client, target, before)}") from exc


def _wait_until_ready(api_client: Any, target: ServingTarget, generation: int,
                      ready_before: dict | None, timeout_seconds: float,
                      poll_seconds: float) -> dict:
    deadline = time.monotonic() + timeout_seconds
    while True:
        current = _read(api_client, target)
        if is_ready_for(current, generation, ready_before):
            log.info("rollout: %s is ready on generation %d", target, generation)
            return current
        if time.monotonic() + poll_seconds > deadline:
            raise RolloutFailed(f"{target} was not ready on generation {generation} within "
                                f"{timeout_seconds:.0f}s (last condition: "
                                f"{describe_condition(current)})")
        time.sleep(poll_seconds)


def _restore(api_client: Any, target: ServingTarget, before: dict) -> str:
    """Put `before`'s storage location back; says what happened (a failed restore is
    reported, not raised: the step fails anyway and the operator must know)."""
    from kubernetes.client.exceptions import ApiException

    try:
        _patch(api_client, target, restoring_patch(target, before))
    except ApiException as exc:
        return f"restoring its previous spec FAILED ({api_message(exc)}): restore it by hand"
    return "its previous spec is restored"


def _read(api_client: Any, target: ServingTarget) -> dict:
    from kubernetes import client

    kind = target.kind
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        kind.group, kind.version, target.namespace, kind.plural, target.name)


def _patch(api_client: Any, target: ServingTarget, patch: dict) -> dict:
    """A JSON merge patch (the client sends application/merge-patch+json for a dict)."""
    from kubernetes import client

    kind = target.kind
    return client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        kind.group, kind.version, target.namespace, kind.plural, target.name, patch)


def api_message(exc: Any) -> str:
    """The API server's own message in an ApiException (its Status body), else its reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"{exc.status} {message or exc.reason}"


def failure_message(exc: BaseException) -> str:
    """One line for any failure: the API server's message for an ApiException."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return f"Kubernetes API answered {api_message(exc)}"
    if isinstance(exc, RecsysError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def in_cluster_api_client() -> Any:
    """A Kubernetes API client from the pod's service account (the step's identity)."""
    from kubernetes import client, config

    config.load_incluster_config()
    return client.ApiClient()
