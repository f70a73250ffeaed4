"""Fitted models on disk as data only: no file of a model can run code when it is loaded.

A model is a folder:

- `model.json`: the format version, the model's class (one of the project's own
  Recommender classes, looked up by name in `recsys.core.models.zoo`; nothing is
  imported because a file names it) and its state: numbers, strings, lists, tuples and
  dicts (typed, so that integer and float keys come back as such), with references to
- `arrays.npz`: NumPy arrays, written and read with `allow_pickle=False`; text arrays are
  stored as Unicode with a mask of missing values, sparse matrices as their CSR parts,
  data frames column by column;
- `models/<attribute>/`: a nested model (the hybrid's two halves, a recommender's next-item
  session model, an ensemble's members), in the same format.

`files_sha256(folder)` is the digest the registry records for every version and every
loader checks before reading a byte of state (`load_model(folder, expected_sha256)`).
Everything a load reads must be what that digest covered: a nested model named `../x`, or
any symbolic link that leads out of the folder, is refused before anything is read.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.errors import SchemaError
from recsys.core.models.base import Recommender
from recsys.core.models.session_base import SessionModel
from recsys.core.models.zoo import model_classes

NestedModel = Recommender | SessionModel
Arrays = Mapping[str, np.ndarray]
"""The arrays of `arrays.npz` by key (a dict while saving, the NpzFile while loading)."""
StateRef = dict[str, Any]
"""One value of `model.json`'s state as `json.loads` gives it (Any: `_decode` checks its
keys one by one)."""

FORMAT = "recsys-model"
FORMAT_VERSION = 1
STATE_FILE = "model.json"
DERIVED_PREFIX = "_derived_"
"""Attributes a model rebuilds from its state when first needed (serving caches): never
saved, so they neither grow the files nor change their digest."""
ARRAYS_FILE = "arrays.npz"
NESTED = "models"


class ModelIntegrityError(SchemaError):
    """A model's files are not the ones the registry recorded, or not a model at all."""


def save_model(model: NestedModel, folder: str | Path) -> str:
    """Write a fitted model into `folder` (created); returns its files' SHA-256."""
    model._check_fitted()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    state = {name: _encode(value, name, arrays, folder) for name, value in vars(model).items()
             if not name.startswith(DERIVED_PREFIX)}
    np.savez(folder / ARRAYS_FILE, allow_pickle=False, **arrays)
    document = {"format": FORMAT, "version": FORMAT_VERSION,
                "class": type(model).__name__, "state": state}
    (folder / STATE_FILE).write_text(json.dumps(document, indent=1, sort_keys=True))
    return files_sha256(folder)


def load_model(folder: str | Path, expected_sha256: str | None = None) -> Recommender:
    """Read a model written by `save_model`; with `expected_sha256`, refuse files that differ
    from the ones recorded. Only the project's own classes and plain data are created."""
    folder = Path(folder)
    if folder.is_file():
        raise ModelIntegrityError(
            f"{folder} is a single file (a pickle from before recsys 0.2?): models are folders "
            "of data now, and pickles are never loaded; retrain, or re-export the version")
    if not (folder / STATE_FILE).is_file():
        raise ModelIntegrityError(f"{folder} holds no {STATE_FILE}: not a recsys model")
    root = folder.resolve()
    _refuse_links_outside(root)
    if expected_sha256 is not None:
        actual = files_sha256(folder)
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"model files at {folder} do not match the registry: SHA-256 {actual}, "
                f"recorded {expected_sha256}; refusing to load them")
    model = _read_model(root, root)
    # a next-item session model's own folder loads here too (the session zoo's tests); what
    # the registry holds, and every caller relies on, is a recommender
    return model  # type: ignore[return-value]


def _read_model(folder: Path, root: Path) -> NestedModel:
    """The model in `folder` (`root` or a nested model inside it)."""
    if not (folder / STATE_FILE).is_file():
        raise ModelIntegrityError(f"{folder} holds no {STATE_FILE}: not a recsys model")
    document = json.loads((folder / STATE_FILE).read_text())
    if document.get("format") != FORMAT or document.get("version") != FORMAT_VERSION:
        raise ModelIntegrityError(f"{folder}: unknown model format {document.get('format')!r} "
                                  f"version {document.get('version')!r}")
    classes = model_classes()
    cls = classes.get(document["class"])
    if cls is None:
        raise ModelIntegrityError(f"{folder}: {document['class']!r} is not a recsys model class")
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
        model = cls.__new__(cls)
        for name, value in document["state"].items():
            setattr(model, name, _decode(value, arrays, folder, root))
    return model


def _inside(root: Path, path: Path) -> Path:
    """`path`, resolved; refused unless it stays inside `root` (a resolved folder)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ModelIntegrityError(
            f"{path} leads outside the model folder {root} (to {resolved}): a model loads "
            "only files inside its own folder, the ones its SHA-256 covers; refusing it")
    return resolved


def _refuse_links_outside(root: Path) -> None:
    """Refuse a model folder holding a symbolic link (file or folder) that leads outside
    it: the digest does not follow links, a load would. Links inside it (Kubernetes
    volumes lay files out that way) are fine."""
    for parent, folders, files in os.walk(root):
        for name in (*folders, *files):
            path = Path(parent) / name
            if path.is_symlink():
                _inside(root, path)


def files_sha256(folder: str | Path) -> str:
    """SHA-256 over every file of a model folder (relative names and contents, sorted)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ---- encoding ---------------------------------------------------------------------------
def _encode(value: object, name: str, arrays: dict[str, np.ndarray], folder: Path) -> object:
    """`value` as JSON-ready data (dicts, lists, numbers, text), its arrays put in `arrays`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return {"number": value.item() if hasattr(value, "item") else value,
                "type": "int" if isinstance(value, (int, np.integer)) else "float"}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple":
                [_encode(v, f"{name}.{i}", arrays, folder) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, f"{name}.k{i}", arrays, folder),
                          _encode(v, f"{name}.{i}", arrays, folder)]
                         for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, np.ndarray):
        return {"array": _store_array(value, name, arrays)}
    if sp.issparse(value):
        csr = sp.csr_matrix(value)
        return {"csr": {"data": _store_array(csr.data, f"{name}.data", arrays),
                        "indices": _store_array(csr.indices, f"{name}.indices", arrays),
                        "indptr": _store_array(csr.indptr, f"{name}.indptr", arrays),
                        "shape": list(csr.shape)}}
    if isinstance(value, pd.DataFrame):
        return {"frame": {
            "index": _store_array(value.index.to_numpy(), f"{name}.index", arrays),
            "index_name": value.index.name,
            "columns": [[str(c), _store_column(value[c], f"{name}.{c}", arrays)]
                        for c in value.columns]}}
    if isinstance(value, (Recommender, SessionModel)):
        save_model(value, folder / NESTED / name)
        return {"model": name}
    raise SchemaError(f"cannot store {name} of type {type(value).__name__} as data")


def _store_array(values: np.ndarray, name: str, arrays: dict[str, np.ndarray]
                 ) -> dict[str, str | bool]:
    key = f"a{len(arrays)}"
    if values.dtype == object:
        missing = pd.isna(values) if values.ndim == 1 else np.zeros(values.shape, dtype=bool)
        if any(not isinstance(v, str) for v in values[~missing].ravel()):
            raise SchemaError(f"cannot store {name}: an object array holding non-text values")
        arrays[key] = np.where(missing, "", values).astype(str)
        arrays[f"{key}.missing"] = missing
        return {"key": key, "text": True}
    arrays[key] = values
    return {"key": key}


def _store_column(column: pd.Series, name: str, arrays: dict[str, np.ndarray]
                  ) -> Mapping[str, object]:
    """A frame column: times as UTC nanoseconds with their time zone, pandas' nullable types
    as float64 with a mask, everything else as an array."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(column):
        tz = str(column.dt.tz) if column.dt.tz is not None else None
        utc = column.dt.tz_convert("UTC") if tz else column
        nanos = utc.astype("datetime64[ns, UTC]" if tz else "datetime64[ns]").array.asi8
        ref = _store_array(np.where(missing, 0, nanos), f"{name}.ns", arrays)
        return {"datetime": ref, "tz": tz,
                "missing": _store_array(missing, f"{name}.missing", arrays)}
    nullable_number = isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and \
        pd.api.types.is_numeric_dtype(column.dtype)
    nullable_bool = pd.api.types.is_bool_dtype(column.dtype) and column.dtype != bool
    if nullable_number or nullable_bool:
        values = column.astype("float64").to_numpy(na_value=np.nan)
        return {"nullable": _store_array(values, f"{name}.values", arrays),
                "dtype": str(column.dtype),
                "missing": _store_array(missing, f"{name}.missing", arrays)}
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    return _store_array(column.to_numpy(), name, arrays)


def _read_column(ref: StateRef, arrays: Arrays) -> object:
    if "datetime" in ref:
        nanos = _read_array(ref["datetime"], arrays)
        times = pd.to_datetime(nanos, unit="ns", utc=ref["tz"] is not None)
        if ref["tz"] is not None:
            times = times.tz_convert(ref["tz"])
        series = pd.Series(times)
        series[_read_array(ref["missing"], arrays)] = pd.NaT
        return series.to_numpy() if ref["tz"] is None else series.array
    if "nullable" in ref:
        values = pd.array(_read_array(ref["nullable"], arrays), dtype="Float64")
        values[_read_array(ref["missing"], arrays)] = pd.NA
        return values.astype(ref["dtype"])
    return _read_array(ref, arrays)


def _decode(value: Any, arrays: Arrays, folder: Path, root: Path) -> object:
    """The value `_encode` wrote (`value`: JSON data as loaded, checked key by key)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if "number" in value:
        return int(value["number"]) if value["type"] == "int" else float(value["number"])
    if "list" in value:
        return [_decode(v, arrays, folder, root) for v in value["list"]]
    if "tuple" in value:
        return tuple(_decode(v, arrays, folder, root) for v in value["tuple"])
    if "dict" in value:
        return {_decode(k, arrays, folder, root): _decode(v, arrays, folder, root)
                for k, v in value["dict"]}
    if "array" in value:
        return _read_array(value["array"], arrays)
    if "csr" in value:
        parts = value["csr"]
        return sp.csr_matrix((_read_array(parts["data"], arrays),
                              _read_array(parts["indices"], arrays),
                              _read_array(parts["indptr"], arrays)), shape=tuple(parts["shape"]))
    if "frame" in value:
        parts = value["frame"]
        index = pd.Index(_read_array(parts["index"], arrays), name=parts["index_name"])
        return pd.DataFrame({name: _read_column(ref, arrays) for name, ref in parts["columns"]},
                            index=index)
    if "model" in value:
        return _read_model(_inside(root, folder / NESTED / str(value["model"])), root)
    raise ModelIntegrityError(f"unknown value in {STATE_FILE}: {sorted(value)}")


def _read_array(ref: StateRef, arrays: Arrays) -> np.ndarray:
    values = arrays[ref["key"]]
    if not ref.get("text"):
        return values
    out = values.astype(object)
    out[arrays[f"{ref['key']}.missing"]] = None
    return out
