"""Item-kNN's serving path keeps the transposed similarity it builds once: same scores as
the plain product, never saved with the model, rebuilt after a refit."""
import json

import numpy as np
import pandas as pd

from recsys.core.models.storage import load_model, save_model
from recsys.core.models.zoo import build_model


def frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": [f"u{i}" for i in rng.integers(0, 60, 900)],
                         "item_id": [f"i{i}" for i in rng.integers(0, 120, 900)],
                         "weight": 1.0})


def test_scores_equal_the_plain_product_and_the_cache_is_not_saved(tmp_path):
    model = build_model("item_knn", neighbours=10).fit(frame(1))
    rows = np.arange(5)
    plain = np.asarray((model.seen[rows] @ model.similarity.T).todense())
    np.testing.assert_allclose(model._score(rows), plain, rtol=1e-6)
    save_model(model, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "model.json").read_text())["state"]
    assert not any(name.startswith("_derived_") for name in saved)
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again._score(rows), plain, rtol=1e-6)


def test_a_refit_rebuilds_the_cached_transpose():
    model = build_model("item_knn", neighbours=10).fit(frame(1))
    model._score(np.arange(3))
    model.fit(frame(2))
    rows = np.arange(3)
    plain = np.asarray((model.seen[rows] @ model.similarity.T).todense())
    np.testing.assert_allclose(model._score(rows), plain, rtol=1e-6)
