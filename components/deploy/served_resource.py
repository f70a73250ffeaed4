"""The serving resource a promotion moves, as plain data: which custom resource it is (a
Seldon Core v2 `Model` or a KServe `InferenceService`), the merge patch that points it at an
exported artifact and the one that puts it back, and whether its status says the new
generation is ready. No Kubernetes calls here (`rollout.py` makes them)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from recsys.core.errors import ConfigError

STORAGE_ENV = "STORAGE_URI"
"""The predictor container's variable KServe's storage initializer copies from
(infra/kserve/inference-service.yaml: a custom container, so no `model.storageUri`)."""
VERSION_ANNOTATION = "recsys.mlops/model-version"
SHA256_ANNOTATION = "recsys.mlops/model-sha256"
"""What the resource serves, readable with `kubectl get -o yaml`; the artifact's own
model-settings.json pins the same digest, and the runtime refuses files that differ."""
READY = "Ready"


@dataclass(frozen=True)
class ServedKind:
    label: str
    """How a pipeline parameter names it (`seldon:<name>`, `kserve:<name>`)."""
    group: str
    version: str
    plural: str
    kind: str


SELDON_MODEL = ServedKind("seldon", "mlops.seldon.io", "v1alpha1", "models", "Model")
KSERVE_SERVICE = ServedKind("kserve", "serving.kserve.io", "v1beta1", "inferenceservices",
                            "InferenceService")
KINDS = {kind.label: kind for kind in (SELDON_MODEL, KSERVE_SERVICE)}


class ServingTarget(BaseModel):
    """One serving resource in one namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    namespace: str
    name: str

    @property
    def kind(self) -> ServedKind:
        return KINDS[self.label]

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"


def parse_target(text: str, namespace: str) -> ServingTarget:
    """`seldon:<name>` or `kserve:<name>` in `namespace` (ConfigError naming the forms)."""
    label, separator, name = text.partition(":")
    if not separator or label not in KINDS or not name:
        raise ConfigError(f"serving target must be one of {sorted(f'{k}:<name>' for k in KINDS)}"
                          f", got {text!r}")
    return ServingTarget(label=label, namespace=namespace, name=name)


@dataclass(frozen=True)
class ExportedArtifact:
    uri: str
    version: str
    sha256: str


def pointing_patch(target: ServingTarget, resource: dict, artifact: ExportedArtifact) -> dict:
    """The merge patch that makes `resource` serve `artifact` (and records its version and
    digest as annotations)."""
    moved = copy.deepcopy(resource)
    holder, key = _storage_location(target, moved)
    holder[key] = artifact.uri
    return {"metadata": {"annotations": {VERSION_ANNOTATION: artifact.version,
                                         SHA256_ANNOTATION: artifact.sha256}},
            "spec": _storage_fields(target, moved)}


def restoring_patch(target: ServingTarget, before: dict) -> dict:
    """The merge patch that puts back what `pointing_patch` changed, as it was in `before`
    (an annotation it did not have is removed: null in a merge patch)."""
    annotations = (before.get("metadata") or {}).get("annotations") or {}
    return {"metadata": {"annotations": {key: annotations.get(key)
                                         for key in (VERSION_ANNOTATION, SHA256_ANNOTATION)}},
            "spec": _storage_fields(target, before)}


def storage_uri(target: ServingTarget, resource: dict) -> str:
    """Where `resource` loads its model from."""
    holder, key = _storage_location(target, resource)
    return str(holder.get(key) or "")


def _storage_location(target: ServingTarget, resource: dict) -> tuple[dict, str]:
    """The mapping in `resource` that holds its storage location, and the key: Seldon's
    `spec.storageUri`, KServe's `predictor.model.storageUri`, or the value of the one
    predictor container variable `STORAGE_URI` (a custom container)."""
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        raise ConfigError(f"{target} has no spec")
    if target.kind is SELDON_MODEL:
        return spec, "storageUri"
    predictor = spec.get("predictor") or {}
    if "model" in predictor:
        return predictor["model"], "storageUri"
    found = [env for container in predictor.get("containers") or []
             for env in container.get("env") or [] if env.get("name") == STORAGE_ENV]
    if len(found) != 1:
        raise ConfigError(f"{target} has no predictor.model and {len(found)} containers with "
                          f"{STORAGE_ENV}: cannot tell where its model's location goes")
    return found[0], "value"


def _storage_fields(target: ServingTarget, resource: dict) -> dict:
    """The part of `resource`'s spec that holds its storage location, as a merge patch. A
    merge patch replaces a list whole, so KServe's containers go as the full list."""
    spec = resource.get("spec") or {}
    if target.kind is SELDON_MODEL:
        return {"storageUri": spec.get("storageUri")}
    predictor = spec.get("predictor") or {}
    if "model" in predictor:
        return {"predictor": {"model": {"storageUri": (predictor["model"] or {})
                                        .get("storageUri")}}}
    return {"predictor": {"containers": predictor.get("containers")}}


def ready_condition(resource: dict) -> dict[str, Any] | None:
    """The resource's `Ready` condition (Seldon and KServe both aggregate into it)."""
    conditions = (resource.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == READY), None)


def is_ready_for(resource: dict, generation: int, ready_before: dict[str, Any] | None) -> bool:
    """Whether `resource`'s status says generation `generation` is ready. With
    `status.observedGeneration` (KServe): Ready True for that generation or a later one.
    Without it (Seldon Core v2's operator never writes it; it applies the scheduler's status
    only when it is for the current generation): Ready True by a transition other than the
    one in `ready_before`, the Ready condition read before the patch."""
    ready = ready_condition(resource)
    if ready is None or ready.get("status") != "True":
        return False
    observed = (resource.get("status") or {}).get("observedGeneration")
    if observed is not None:
        return int(observed) >= generation
    if ready_before is None or ready_before.get("status") != "True":
        return True
    return ready.get("lastTransitionTime") != ready_before.get("lastTransitionTime")


def describe_condition(resource: dict) -> str:
    """The Ready condition as one line, for an error message."""
    ready = ready_condition(resource)
    if ready is None:
        return "no Ready condition"
    words = [f"Ready={ready.get('status')}"]
    words += [f"{key}={ready[key]!r}" for key in ("reason", "message", "lastTransitionTime")
              if ready.get(key)]
    observed = (resource.get("status") or {}).get("observedGeneration")
    if observed is not None:
        words.append(f"observedGeneration={observed}")
    return ", ".join(words)
