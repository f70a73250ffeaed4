"""Strict JSON Schemas of the custom resources infra/ uses, from the upstream CRDs in
../shared/k8s-crds/ (its README gives each file's release and digest; they are never copied
into this repository). As kubeconform's openapi2jsonschema does in strict mode: an object
that declares `properties` refuses unknown fields unless the CRD preserves them, and
`x-kubernetes-int-or-string` takes an integer or a string."""
from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from tests.conftest import REPO

CRDS = REPO.parent / "shared" / "k8s-crds"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 7 MB of CRDs in ~1 s


def strict(schema: dict) -> dict:
    """A copy of an openAPIV3Schema as a strict JSON Schema."""
    schema = copy.deepcopy(schema)
    _tighten(schema)
    return schema


def _tighten(node):
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    preserves = node.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserves:
        node["additionalProperties"] = False
    for key, value in node.items():
        if key == "properties":
            for child in value.values():
                _tighten(child)
        elif key == "enum":
            continue
        else:
            _tighten(value)


@cache
def schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON Schema, for every served version of every CRD."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                found[(f"{group}/{version['name']}", kind)] = strict(
                    version["schema"]["openAPIV3Schema"])
    return found


def validate(resource: dict) -> None:
    """Raise jsonschema.ValidationError when `resource` breaks its CRD's schema (and
    KeyError for a kind no CRD defines)."""
    schema = schemas()[(resource["apiVersion"], resource["kind"])]
    jsonschema.Draft7Validator(schema).validate(resource)


def known(resource: dict) -> bool:
    return (resource.get("apiVersion"), resource.get("kind")) in schemas()


def available() -> bool:
    return CRDS.is_dir() and any(CRDS.glob("*.yaml"))


def repository_custom_resources(root: Path = REPO / "infra") -> list[tuple[Path, dict]]:
    """Every document under infra/ whose group is not a core Kubernetes one (kustomizations
    excluded): what the CRDs must cover."""
    core = ("v1", "apps/", "batch/", "policy/", "networking.k8s.io/", "rbac.authorization",
            "autoscaling/", "kustomize.config.k8s.io/")
    found = []
    for path in sorted(root.rglob("*.yaml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue
        for doc in docs:
            api = doc.get("apiVersion", "")
            if "kind" in doc and api and not api.startswith(core):
                found.append((path, doc))
    return found
