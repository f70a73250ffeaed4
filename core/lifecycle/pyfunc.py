"""The MLflow `pyfunc` face of a Recommender: what the registry stores and serving loads.

The logged model is code-based (MLflow's models-from-code: `core/lifecycle/pyfunc_model.py` is the
model's code, the fitted model a data-only folder artifact), so nothing in it is a pickled
object. It carries the `recsys` modules it imports (MLflow's `code_paths`: a `code/recsys`
folder MLflow puts on `sys.path` before it runs the model's code), and its requirements name
only public packages, so MLflow alone serves it (`mlflow models serve`, `build-docker`, a
Spark UDF) without the project installed. Loaded that way, the model checks its folder
against the SHA-256 recorded in its own `model_config` before reading it.
The project's own loaders do not even run that code: `load_recommender` downloads
the version's `recommender` folder, checks its files against the SHA-256 the registry
recorded for the version (`recsys.model_sha256`), and reads it as data.
"""
from __future__ import annotations

import ast
import re
import shutil
import sys
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
PACKAGE = "recsys"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder of the `recsys` package (the repository root in a checkout)."""
PIP_REQUIREMENTS = ["numpy>=1.26,<2.5", "pandas>=2.2,<3", "scipy>=1.11", "pyarrow>=15"]
"""What the model's `recsys` modules import besides MLflow and the standard library (a fitted
model is arrays, sparse matrices and frames; scikit-learn, Surprise and LightFM are needed
only to fit); MLflow adds itself. The project is no requirement: its code is in the model."""


class RecommenderPyfunc(PythonModel):
    """predict(DataFrame[user_id], params={k, exclude_seen}) -> top-k rows per user."""

    def load_context(self, context) -> None:
        expected = (context.model_config or {}).get(SHA_TAG)
        if not expected:
            raise ModelIntegrityError(
                f"this model records no {SHA_TAG} in its model_config: it was logged before "
                "the model carried its digest; serve it through recsys, or retrain it")
        self.recommender = load_model(context.artifacts[ARTIFACT_KEY], expected_sha256=expected)

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


def model_code_files(module: str = __name__) -> list[Path]:
    """The files of the `recsys` modules `module` needs, relative to the package's folder:
    every `recsys` module its import statements name, at any depth (imports inside functions
    too), and the packages holding them."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            relative = _module_file(prefix)
            if relative is None or relative in seen:
                continue
            seen.add(relative)
            pending.extend(_imported(relative, ".".join(prefix)))
    return sorted(seen)


def _module_file(parts: list[str]) -> Path | None:
    """`recsys.a.b` as `a/b.py` or `a/b/__init__.py` (relative), or None: not a module."""
    if parts[0] != PACKAGE:
        return None
    inner = Path(*parts[1:]) if len(parts) > 1 else Path()
    for relative in (inner / "__init__.py", inner.with_suffix(".py") if parts[1:] else None):
        if relative is not None and (PACKAGE_ROOT / relative).is_file():
            return relative
    return None


def _imported(relative: Path, name: str) -> list[str]:
    """The `recsys` names the module at `relative` (named `name`) imports: `from x import y`
    gives both `x` and `x.y` (y may be a module); relative imports resolved."""
    package = name if relative.name == "__init__.py" else name.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse((PACKAGE_ROOT / relative).read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")]


def stage_model_code(target: str | Path) -> Path:
    """Copy the `recsys` files the logged model imports (`model_code_files`) into
    `target/recsys`; returns that folder, the model's code path."""
    folder = Path(target) / PACKAGE
    for relative in model_code_files():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE_ROOT / relative, folder / relative)
    return folder


def log_recommender(model: Recommender, work_dir: str | Path):
    """Log `model` into the active MLflow run as a code-based pyfunc with its data-only
    folder as the `recommender` artifact and the `recsys` modules it imports as its code,
    and record the folder's SHA-256 as the run tag every loader checks and in the model's
    `model_config` (what the model checks when MLflow loads it); returns MLflow's ModelInfo."""
    path = Path(work_dir) / ARTIFACT_KEY
    digest = save_model(model, path)
    mlflow.set_tag(SHA_TAG, digest)
    code = stage_model_code(Path(work_dir) / "code")
    signature, example = signature_for(model)
    search_path = list(sys.path)
    try:
        return mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_CODE), artifacts={ARTIFACT_KEY: str(path)},
            code_paths=[str(code)], model_config={SHA_TAG: digest}, signature=signature,
            input_example=example, pip_requirements=PIP_REQUIREMENTS)
    finally:  # checking the input example loads the model, which puts its code on sys.path
        sys.path[:] = search_path


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
