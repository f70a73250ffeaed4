"""A small kustomize renderer for the project's own kustomizations: resources (files and
folders), components, strategic-merge patches (maps merge, lists of named items merge by
`name`, other lists are replaced), the `images` transformer on pod templates, and
ConfigMap/Secret generators from files without a name hash. It covers what infra/ uses
(the infra tests, and `make kube-play`: tools/kube_play.py); tests/infra/test_k8s.py checks
it against `kubectl kustomize` where kubectl is installed."""
from __future__ import annotations

import base64
import copy
from pathlib import Path

import yaml

MERGE_KEY = "name"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(folder: Path, components: list[Path] | None = None) -> list[dict]:
    """The resources `kubectl kustomize folder` prints (in another order). `components`
    replaces the kustomization's own list (e.g. KServe instead of Seldon)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    resources: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        resources += render(path) if path.is_dir() else copy.deepcopy(documents(path))
    resources += generated(folder, kustomization)
    chosen = components if components is not None else [
        folder / c for c in kustomization.get("components", [])]
    for component in chosen:
        resources = _apply(component, resources + render_component_resources(component))
    return _apply(folder, resources)


def generated(folder: Path, kustomization: dict) -> list[dict]:
    """The ConfigMaps and Secrets of `configMapGenerator` / `secretGenerator` entries made
    of `files` (key: the file's name, or `key=path`), with `options.labels`. Only with
    `generatorOptions.disableNameSuffixHash: true` (the name hash is not computed here)."""
    kinds = {"configMapGenerator": "ConfigMap", "secretGenerator": "Secret"}
    entries = [(kind, entry) for key, kind in kinds.items() for entry in kustomization.get(key, [])]
    if entries and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise NotImplementedError(f"{folder}: generated names with a hash suffix")
    found = []
    for kind, entry in entries:
        assert set(entry) <= {"name", "namespace", "files", "options"}, entry
        data = {}
        for spec in entry["files"]:
            key, _, path = spec.rpartition("=")
            content = (folder / path).read_bytes()
            data[key or Path(path).name] = (_base64(content) if kind == "Secret"
                                            else content.decode())
        metadata = {"name": entry["name"], **({"namespace": entry["namespace"]}
                                               if "namespace" in entry else {})}
        labels = entry.get("options", {}).get("labels")
        if labels:
            metadata["labels"] = dict(labels)
        resource = {"apiVersion": "v1", "kind": kind, "metadata": metadata, "data": data}
        if kind == "Secret":
            resource["type"] = "Opaque"
        found.append(resource)
    return found


def _base64(content: bytes) -> str:
    """As kustomize writes a Secret's values: base64 in lines of 70 characters (a value of
    several lines ends with a line break)."""
    encoded = base64.b64encode(content).decode()
    lines = [encoded[i:i + 70] for i in range(0, len(encoded), 70)]
    return "\n".join(lines) + ("\n" if len(lines) > 1 else "")


def render_component_resources(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component", folder
    return [doc for name in kustomization.get("resources", [])
            for doc in copy.deepcopy(documents(folder / name))]


def _apply(folder: Path, resources: list[dict]) -> list[dict]:
    """The patches and image changes of `folder`'s kustomization, applied to `resources`."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    by_id = {(r["kind"], r["metadata"]["name"]): r for r in resources}
    for patch in kustomization.get("patches", []):
        for doc in documents(folder / patch["path"]):
            target = by_id[(doc["kind"], doc["metadata"]["name"])]  # KeyError: no target
            merge(target, doc)
    for image in kustomization.get("images", []):
        for container in containers(resources):
            name, _, tag = container["image"].rpartition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return resources


def merge(target: dict, patch: dict) -> None:
    """Strategic merge, in place, as far as infra/'s patches need it."""
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif (isinstance(value, list) and isinstance(current, list) and value
              and all(isinstance(v, dict) and MERGE_KEY in v for v in value + current)):
            named = {item[MERGE_KEY]: item for item in current}
            for item in value:
                if item[MERGE_KEY] in named:
                    merge(named[item[MERGE_KEY]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


def pod_spec(resource: dict) -> dict | None:
    """The pod spec a workload (or a serving custom resource) runs, if any."""
    spec = resource.get("spec", {})
    if "template" in spec:
        return spec["template"]["spec"]
    if resource["kind"] == "Server":
        return spec.get("podSpec")
    if resource["kind"] == "InferenceService":
        return spec["predictor"]
    return None


def containers(resources: list[dict]) -> list[dict]:
    return [c for r in resources if (pod := pod_spec(r)) for c in pod.get("containers", [])]
