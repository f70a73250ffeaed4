"""The MLflow `pyfunc` face of a Recommender: what the registry stores and serving loads.

The logged model is code-based (MLflow's models-from-code: `core/lifecycle/pyfunc_model.py` is the
model's code, the fitted model a data-only folder artifact), so nothing in it is a pickled
object. The project's own loaders do not even run that code: `load_recommender` downloads
the version's `recommender` folder, checks its files against the SHA-256 the registry
recorded for the version (`recsys.model_sha256`), and reads it as data.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from recsys.core.data.columns import Columns
from recsys.core.errors import NotFoundError
from recsys.core.models.base import Recommender
from recsys.core.models.storage import ModelIntegrityError, load_model, save_model

MODEL_SHA_TAG = "recsys.model_sha256"
"""Run and version tag: SHA-256 of the model's files (`recsys.core.models.storage`), checked
by every loader here."""

C = Columns
ARTIFACT_KEY = "recommender"
DEFAULT_PARAMS = {"k": 10, "exclude_seen": True}
SHA_TAG = MODEL_SHA_TAG
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
PIP_REQUIREMENTS = ["numpy", "pandas<3", "scipy", "scikit-learn", "recsys-mlops"]


class RecommenderPyfunc(PythonModel):
    """predict(DataFrame[user_id], params={k, exclude_seen}) -> top-k rows per user."""

    def load_context(self, context) -> None:
        self.recommender = load_model(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        params = {**DEFAULT_PARAMS, **(params or {})}
        return self.recommender.recommend(model_input[C.user_id].astype(str).tolist(),
                                          k=int(params["k"]),
                                          exclude_seen=bool(params["exclude_seen"]))


def signature_for(model: Recommender):
    """Input: a user_id column; output: the recommendation frame; params: k, exclude_seen."""
    example = pd.DataFrame({C.user_id: [str(model.users[0])]})
    output = model.recommend(example[C.user_id], k=2)
    return infer_signature(example, output, params=DEFAULT_PARAMS), example


def log_recommender(model: Recommender, work_dir: str | Path):
    """Log `model` into the active MLflow run as a code-based pyfunc with its data-only
    folder as the `recommender` artifact, and record the folder's SHA-256 as the run tag
    every loader checks; returns MLflow's ModelInfo."""
    path = Path(work_dir) / ARTIFACT_KEY
    mlflow.set_tag(SHA_TAG, save_model(model, path))
    signature, example = signature_for(model)
    return mlflow.pyfunc.log_model(
        name="model", python_model=str(MODEL_CODE), artifacts={ARTIFACT_KEY: str(path)},
        signature=signature, input_example=example, pip_requirements=PIP_REQUIREMENTS)


def registered_version(model_uri: str, client) -> tuple[str, str]:
    """(name, version) of `models:/name/version` or `models:/name@alias`."""
    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", model_uri)
    if not match:
        raise NotFoundError(f"not a registered model URI: {model_uri!r} "
                            "(models:/name/version or models:/name@alias)")
    name, version, alias = match.groups()
    if alias:
        version = client.get_model_version_by_alias(name, alias).version
    return name, str(version)


def verify_version(name: str, version: str) -> None:
    """Before an alias moves to `version`: its model's files exist, match the SHA-256 recorded
    on the version and load as data; otherwise ModelIntegrityError saying so (a registry or
    artifact store that cannot be reached raises as itself: that is not the model's fault)."""
    try:
        load_recommender(f"models:/{name}/{version}")
    except ModelIntegrityError as exc:
        raise ModelIntegrityError(
            f"{name} v{version} cannot be loaded, so no alias moves to it: {exc} (its model "
            "files are missing or changed since training; retrain)") from exc


def load_recommender(model_uri: str) -> Recommender:
    """The Recommender of a registered version, read as data after its files were checked
    against the SHA-256 recorded on the version (never through pickle or the model's code)."""
    client = mlflow.MlflowClient()
    name, version = registered_version(model_uri, client)
    expected = (client.get_model_version(name, version).tags or {}).get(SHA_TAG)
    if not expected:
        raise ModelIntegrityError(
            f"{name} v{version} records no {SHA_TAG}: it was registered before models were "
            "stored as data (a pickle); retrain it, nothing loads pickles")
    with tempfile.TemporaryDirectory(prefix="recsys-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp)
        return load_model(Path(local) / "artifacts" / ARTIFACT_KEY, expected_sha256=expected)
