"""The data-only model format keeps every kind of state a fitted model holds."""
import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.models.storage import files_sha256, load_model, save_model
from recsys.core.models.zoo import build_model

ROWS = [("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "c", 1.0),
        ("u3", "c", 2.0)]


def test_metadata_frames_with_times_gaps_and_nullable_types_round_trip(tmp_path):
    interactions = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    stamp = pd.Timestamp("2026-11-30T23:59:59.123456789Z")
    items = pd.DataFrame({
        "item_id": ["a", "b", "c"], "category": ["shoes", None, "bags"],
        "avg_price": [10.5, np.nan, 3.0], "views": pd.array([3, None, 7], dtype="Int64"),
        "feature_timestamp": [stamp, pd.NaT, stamp],
        "band": pd.Categorical(["mid", "low", "mid"])})
    model = build_model("popularity").fit(interactions, items)
    digest = save_model(model, tmp_path / "m")
    assert digest == files_sha256(tmp_path / "m")
    loaded = load_model(tmp_path / "m", expected_sha256=digest)
    meta, back = model.item_meta, loaded.item_meta
    assert list(back.index) == list(meta.index) and list(back.columns) == list(meta.columns)
    assert back["feature_timestamp"].iloc[0] == stamp and pd.isna(back["feature_timestamp"][1])
    assert str(back["feature_timestamp"].dtype) == str(meta["feature_timestamp"].dtype)
    assert back["views"].dtype == meta["views"].dtype and pd.isna(back["views"].iloc[1])
    assert back["category"].tolist() == ["shoes", None, "bags"]
    np.testing.assert_array_equal(back["avg_price"].to_numpy(), meta["avg_price"].to_numpy())
    assert back["band"].tolist() == ["mid", "low", "mid"]
    assert (loaded.seen != model.seen).nnz == 0 and sp.isspmatrix_csr(loaded.seen)
    assert loaded.item_index == model.item_index
