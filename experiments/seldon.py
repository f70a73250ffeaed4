"""Seldon Core v2 objects for an experiment whose arms run as Models of their own.

`recsys experiment export NAME --out URI --arms` writes, next to the one-Model artifact,
an artifact per variant under `URI/arms/<label>/`. Each arm Model serves its own variant
and the champion (for users outside the experiment). A Seldon `Experiment` over the arm
Models carries the split, with the definition's weights (30/35/35 stays 30/35/35).

Seldon chooses a candidate per request. A user must see the same variant on every
request, so the assignment stays the project's: each arm computes the user's variant with
the experiment's salted hash and answers only its own users. A request Seldon sent to
another arm is forwarded to the right one (`serving/arm_forwarding.py`), through the mesh
with the arm Model's name in the `seldon-model` header. With weights w_i, Seldon sends a
request to the right arm with probability sum(w_i^2); the rest (66.5% at 30/35/35) takes
one more hop inside the cluster. Exposures are logged by the arm that answers.
"""
from __future__ import annotations

import re

from recsys.core.errors import ConfigError
from recsys.experiments.definition import ExperimentDefinition

API_VERSION = "mlops.seldon.io/v1alpha1"
ARMS_FOLDER = "arms"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A Kubernetes object name Seldon accepts for a Model (RFC 1123 label)."""


def experiment_object_name(experiment: str) -> str:
    return _dns_name(f"recsys-{experiment}")


def arm_model_name(experiment: str, label: str) -> str:
    """The Seldon Model serving one variant, e.g. `recsys-ab-1-control`."""
    return _dns_name(f"recsys-{experiment}-{label}")


def arm_model_names(definition: ExperimentDefinition) -> dict[str, str]:
    """Every variant's arm Model name, by label; refused when two labels give one name."""
    names = {v.label: arm_model_name(definition.name, v.label) for v in definition.variants}
    if len(set(names.values())) != len(names):
        raise ConfigError(f"experiment {definition.name!r}: variant labels {sorted(names)} "
                          "give the same Seldon Model name (`_` becomes `-`)")
    return names


def seldon_weights(definition: ExperimentDefinition) -> dict[str, int]:
    """The definition's weights as Seldon's integer candidate weights: whole weights as they
    are, others in basis points of the total."""
    weights = {v.label: v.weight for v in definition.variants}
    if all(float(w).is_integer() for w in weights.values()):
        return {label: int(w) for label, w in weights.items()}
    total = sum(weights.values())
    return {label: max(1, round(w / total * 10_000)) for label, w in weights.items()}


def arm_manifests(definition: ExperimentDefinition, storage_uri: str,
                  namespace: str = "recsys", server: str = "recsys-mlserver",
                  secret_name: str = "recsys-models-rclone", replicas: int = 2) -> list[dict]:
    """One `Model` per arm (storage `<storage_uri>/arms/<label>`) and the `Experiment` that
    splits requests between them with the definition's weights."""
    names = arm_model_names(definition)
    weights = seldon_weights(definition)
    root = storage_uri.rstrip("/")
    models = [{
        "apiVersion": API_VERSION, "kind": "Model",
        "metadata": {"name": names[v.label], "namespace": namespace,
                     "labels": {"recsys/experiment": _dns_name(definition.name),
                                "recsys/variant": _dns_name(v.label)}},
        "spec": {"storageUri": f"{root}/{ARMS_FOLDER}/{v.label}", "secretName": secret_name,
                 "requirements": ["recsys"], "server": server, "replicas": replicas},
    } for v in definition.variants]
    experiment = {
        "apiVersion": API_VERSION, "kind": "Experiment",
        "metadata": {"name": experiment_object_name(definition.name), "namespace": namespace},
        "spec": {"candidates": [{"name": names[v.label], "weight": weights[v.label]}
                                for v in definition.variants]},
    }
    return [*models, experiment]


def _dns_name(text: str) -> str:
    name = text.replace("_", "-")
    if not DNS_LABEL.match(name):
        raise ConfigError(f"{name!r} is not a valid Kubernetes name (lowercase letters, digits "
                          "and '-', at most 63, starting and ending alphanumeric)")
    return name
