"""Reading a model pickled by recsys before 0.2, once, for `recsys registry migrate` only.

Nothing else in the project reads a pickle. This reader is still not `pickle.load`: the
unpickler resolves only the names a fitted recsys model is made of - the project's own
model classes (also under their pre-0.2 module `components.models.*`), NumPy arrays and
dtypes, SciPy CSR/CSC/COO matrices and the pandas frame and index internals - and
refuses every other global (`os.system`, `builtins.open`, `eval`, any class of any other
library) before it can be called. A pickle that names one fails with LegacyPickleRefused,
and nothing it holds is run.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

from recsys.core.errors import SchemaError
from recsys.core.models.base import Recommender
from recsys.core.models.zoo import model_classes

LEGACY_MODEL_MODULE = "components.models."
"""Where the model classes lived before 0.2 (now `recsys.core.models.`)."""

_ALLOWED = {
    "builtins": {"slice", "set", "frozenset", "complex", "bytearray"},
    "collections": {"OrderedDict"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.dtypes": {"Float64DType", "Float32DType", "Int64DType", "Int32DType",
                     "BoolDType", "ObjectDType", "StrDType", "DateTime64DType"},
    "scipy.sparse._csr": {"csr_matrix", "csr_array"},
    "scipy.sparse._csc": {"csc_matrix", "csc_array"},
    "scipy.sparse._coo": {"coo_matrix", "coo_array"},
    "pandas._libs.internals": {"_unpickle_block"},
    "pandas._libs.arrays": {"__pyx_unpickle_NDArrayBacked"},
    "pandas.core.frame": {"DataFrame"},
    "pandas.core.series": {"Series"},
    "pandas.core.internals.managers": {"BlockManager", "SingleBlockManager"},
    "pandas.core.indexes.base": {"Index", "_new_Index"},
    "pandas.core.indexes.range": {"RangeIndex"},
    "pandas.core.arrays.categorical": {"Categorical"},
    "pandas.core.arrays.datetimes": {"DatetimeArray"},
    "pandas.core.dtypes.dtypes": {"CategoricalDtype", "DatetimeTZDtype"},
}


class LegacyPickleRefused(SchemaError):
    """A pickle names something a recsys model is not made of; it was not loaded."""


class _ModelOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type[object]:
        if module.startswith(LEGACY_MODEL_MODULE) or module.startswith("recsys.core.models."):
            cls = model_classes().get(name)
            if cls is None:
                raise LegacyPickleRefused(f"{module}.{name} is not a recsys model class")
            return cls
        module = module.replace("numpy.core.", "numpy._core.", 1)  # pickled by NumPy 1.x
        if name not in _ALLOWED.get(module, ()):
            raise LegacyPickleRefused(f"the pickle names {module}.{name}, which no recsys "
                                      "model is made of: refused, nothing was run")
        found: type[object] = super().find_class(module, name)
        return found


def read_legacy_model(path: str | Path) -> Recommender:
    """The Recommender in a pre-0.2 `recommender.pkl`, read with the model-only unpickler."""
    data = Path(path).read_bytes()
    try:
        model = _ModelOnlyUnpickler(io.BytesIO(data)).load()
    except LegacyPickleRefused:
        raise
    except Exception as exc:
        raise SchemaError(f"{path} is not a readable recsys model pickle: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(model, Recommender):
        raise SchemaError(f"{path} holds a {type(model).__name__}, not a recsys model")
    return model
