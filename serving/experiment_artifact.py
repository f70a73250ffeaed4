"""An online experiment served from an exported artifact (Seldon Core v2, KServe): the
definition and every model variant come with the artifact (`serving/artifact.py`), so the
router assigns users exactly as it does for a registry-served champion - per user, by the
experiment's salted hash, the same in every replica - without a registry to read.

Why not Seldon's own `Experiment` for the split: Seldon Core v2 (and KServe) choose a
candidate per request, so one user would see both variants within a session, and the
analysis has to drop such users (`crossovers`). Seldon's only stickiness is a route header
the client must echo back: per client, not per user, and lost on another device. The
experiment artifact keeps the split ours; `infra/seldon/experiment.yaml` shows the Seldon
objects (docs/experiments.md, "On a cluster"). With `--arms`, each variant is a Model of its
own behind a Seldon `Experiment` with the same weights, and each arm forwards the users of
the others (`experiments/seldon.py`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recsys.experiments.definition import ExperimentDefinition
from recsys.serving.artifact import EXPERIMENT_FILE, VARIANTS_FOLDER
from recsys.serving.experiment_router import ExperimentRouter
from recsys.serving.model_source import LoadedModel, ModelUnhealthy, checked_model


def artifact_router(folder: str, variant_sha256: dict[str, str],
                    champion: Callable[[], LoadedModel],
                    arm: str | None = None) -> ExperimentRouter:
    """The router of the experiment exported in `folder`. Each variant's files are checked
    against the SHA-256 the artifact's settings record before a byte is read; if one does
    not load, the experiment is not applied at all (the router says why). `arm`: the
    artifact is one arm's (`experiments/seldon.py`): only that variant is loaded."""
    root = Path(folder)
    definition = ExperimentDefinition.model_validate_json((root / EXPERIMENT_FILE).read_text())

    def load(version: str) -> LoadedModel:
        if version not in variant_sha256:
            raise ModelUnhealthy(f"variant version {version} is not in the artifact at {folder}")
        path = str(root / VARIANTS_FOLDER / version)
        return LoadedModel(checked_model(path, variant_sha256[version]), version, path)

    router = ExperimentRouter(lambda: definition, load, champion, own_arm=arm)
    router.refresh()
    return router
