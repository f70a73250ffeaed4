"""The champion as a model artifact that Seldon Core v2 (and KServe) deploy from object
storage: a folder, locally or under `s3://`, holding

- `model/`: the model's data-only files (`recsys.core.models.storage`);
- `model-settings.json`: MLServer's settings for it: the recsys runtime, `parameters.uri`
  `./model`, the registry version it came from and the SHA-256 of `model/`;
- for an online experiment (`recsys experiment export`): `experiment.json`, its definition,
  and `variants/<version>/`, every model variant's data-only files, their SHA-256 recorded
  in the settings too. The runtime then runs the experiment router on these, with the
  same per-user hashed assignment as a registry-served champion (`model/` answers the
  users outside the experiment);
- for one arm of such an experiment (`--arms`, `experiments/seldon.py`): the same, with
  only that arm's variant under `variants/`, and `experiment_arm` (its label) and
  `experiment_arm_models` (every arm's Seldon Model) in the settings: it answers its own
  users and forwards the others to their arm.

Seldon's agent copies the folder onto the Server and MLServer loads it from there; the
runtime resolves `./model` next to the settings file and refuses files whose digest is not
the recorded one. Such a deployment is pinned: no registry watch, a promotion is rolled out
by exporting the new champion and pointing the `Model`'s `storageUri` at it.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NotRequired, TypedDict

from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender
from recsys.core.models.storage import save_model

RUNTIME = "recsys.serving.runtime.RecsysRuntime"
MODEL_FOLDER = "model"
SETTINGS_FILE = "model-settings.json"
EXPERIMENT_FILE = "experiment.json"
VARIANTS_FOLDER = "variants"
ARTIFACT_FLAG = "model_artifact"
"""`parameters.extra` key that makes the runtime serve the artifact's own model folder."""


class WrittenArtifact(TypedDict):
    """Where `write_artifact` wrote the artifact, the version and the SHA-256 of `model/`
    (and of each variant's model, by registry version, for an experiment)."""

    uri: str
    version: str
    sha256: str
    variants: NotRequired[dict[str, str]]


def artifact_settings(name: str, version: str, sha256: str,
                      variant_sha256: dict[str, str] | None = None,
                      arm: Mapping[str, object] | None = None) -> dict[str, object]:
    """MLServer's `model-settings.json` of the artifact (`parameters.extra`: the service
    options, `ServiceConfig` fields)."""
    extra: dict[str, object] = {ARTIFACT_FLAG: True, "model_sha256": sha256,
                                "model_version": str(version), "watch_seconds": 0}
    if variant_sha256 is not None:
        extra["experiment_variants"] = dict(variant_sha256)
    extra.update(arm or {})
    return {"name": name, "implementation": RUNTIME,
            "parameters": {"uri": f"./{MODEL_FOLDER}", "version": str(version),
                           "extra": extra}}


def write_artifact(model: Recommender, out: str, name: str, version: str,
                   s3_endpoint_url: str | None = None, experiment: str | None = None,
                   variant_models: dict[str, Recommender] | None = None,
                   arm: Mapping[str, object] | None = None) -> WrittenArtifact:
    """Write the artifact to `out` (a folder, or `s3://bucket/prefix`); returns where, the
    version and the model's SHA-256. With `experiment` (a definition's JSON) the variants'
    models (`variant_models`, by registry version) go with it; `arm`: the settings that make
    it one arm of the experiment (`experiment_arm`, `experiment_arm_models`, where to
    forward)."""
    with tempfile.TemporaryDirectory(prefix="recsys-artifact-") as tmp:
        folder = Path(tmp)
        sha256 = save_model(model, folder / MODEL_FOLDER)
        variant_sha256 = None
        if experiment is not None:
            (folder / EXPERIMENT_FILE).write_text(experiment)
            variant_sha256 = {str(v): save_model(m, folder / VARIANTS_FOLDER / str(v))
                              for v, m in (variant_models or {}).items()}
        settings = artifact_settings(name, version, sha256, variant_sha256, arm)
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if out.startswith("s3://"):
            from recsys.core.data.lake import Lake

            store = Lake(out.rstrip("/"), s3_endpoint_url)
            for path in files:
                store.write_bytes(path.relative_to(folder).as_posix(), path.read_bytes())
        else:
            target = Path(out)
            if target.exists() and any(target.iterdir()):
                raise ConfigError(f"{out} is not empty: an artifact goes to a folder of its own")
            for path in files:
                destination = target / path.relative_to(folder)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(path.read_bytes())
    written: WrittenArtifact = {"uri": out, "version": str(version), "sha256": sha256}
    if variant_sha256 is not None:
        written["variants"] = variant_sha256
    return written


def artifact_options(extra: Mapping[str, object], model_folder: str) -> dict[str, object]:
    """Service options of an artifact's settings: its model folder, its digest required."""
    options = {k: v for k, v in extra.items() if k != ARTIFACT_FLAG}
    if not options.get("model_sha256"):
        raise ConfigError("a model artifact's settings must record model_sha256; export it "
                          "with `recsys registry export --artifact`")
    options["model_uri"] = model_folder
    if "experiment_variants" in options:
        options["experiment_folder"] = str(Path(model_folder).parent)
    return options
