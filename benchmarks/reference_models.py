"""Published reference models (Cornac's BiVAE and BPR) on the same split as ours.

They run in their own environment (`make reference-env` builds `.venv-reference` with
cornac and the CPU build of PyTorch; neither belongs in the serving or pipeline image), as
a child process of `benchmarks/reference/cornac_topn.py`. Only their top-k lists come back:
the metrics are computed here, by the same code as for the zoo's models.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "reference" / "cornac_topn.py"
REFERENCE_MODELS = ("bivae", "bpr")
DEFAULT_PYTHON = REPO / ".venv-reference" / "bin" / "python"


@dataclass(frozen=True)
class ReferenceRun:
    recommendations: pd.DataFrame
    fit_seconds: float
    predict_seconds: float
    params: dict
    library: str


def reference_python() -> Path:
    path = Path(os.environ.get("RECSYS_REFERENCE_PYTHON", DEFAULT_PYTHON))
    if not path.exists():
        raise ConfigError(f"the reference models need their own environment: {path} is "
                          f"missing (run `make reference-env`, or set RECSYS_REFERENCE_PYTHON)")
    return path


def parse_reference_names(text: str | None) -> list[str]:
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in REFERENCE_MODELS]
    if unknown:
        raise ConfigError(f"unknown reference model(s) {unknown}; known: "
                          f"{', '.join(REFERENCE_MODELS)}")
    return names


def run_reference(name: str, train: pd.DataFrame, users, k: int = 10,
                  params: dict | None = None, timeout: float = 3600) -> ReferenceRun:
    """Fit reference model `name` on `train` (user_id, item_id, rating) and return its top-k
    for `users`, ids converted back to the types of `train`."""
    python = reference_python()
    with tempfile.TemporaryDirectory(prefix="recsys-reference-") as tmp:
        folder = Path(tmp)
        train[["user_id", "item_id", "rating"]].to_parquet(folder / "train.parquet")
        pd.DataFrame({"user_id": pd.unique(pd.Series(users))}).to_parquet(
            folder / "users.parquet")
        command = [str(python), str(SCRIPT), "--model", name, "--k", str(k),
                   "--train", str(folder / "train.parquet"),
                   "--users", str(folder / "users.parquet"),
                   "--out", str(folder / "recs.parquet"), "--params", json.dumps(params or {})]
        log.info("reference %s: fitting in %s", name, python.parent.parent.name)
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"reference model {name} failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        recs = pd.read_parquet(folder / "recs.parquet")
    return ReferenceRun(_restore_id_types(recs, train), info["fit_seconds"],
                        info["predict_seconds"], info["params"], f"cornac {info['cornac']}")


def _restore_id_types(recs: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """The child works on string ids; map them back to the training ids' own values."""
    for column in ("user_id", "item_id"):
        originals = pd.unique(train[column])
        lookup = pd.Series(originals, index=pd.Index(originals).astype(str))
        recs[column] = lookup.reindex(recs[column].astype(str)).to_numpy()
    return recs
