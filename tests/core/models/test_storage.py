"""The data-only model format keeps every kind of state a fitted model holds."""
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.core.models.storage import ModelIntegrityError, files_sha256, load_model, save_model
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


def blend_in(folder):
    """A fitted blend (two nested models, `models/part_models.0` and `.1`) saved in
    `folder`; returns the model."""
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    model = build_model("blend", parts=[("popularity", {}), ("item_knn", {})],
                        weights=[0.5, 0.5]).fit(frame)
    save_model(model, folder)
    return model


def test_a_nested_model_named_with_dot_dot_is_refused(tmp_path):
    folder = tmp_path / "m"
    blend_in(folder)
    shutil.copytree(folder / "models" / "part_models.0", tmp_path / "outside")
    shutil.rmtree(folder / "models" / "part_models.0")
    state = folder / "model.json"
    state.write_text(state.read_text().replace('"part_models.0"', '"../../outside"'))
    with pytest.raises(ModelIntegrityError, match="leads outside the model folder"):
        load_model(folder, expected_sha256=files_sha256(folder))  # the digest matches


def test_a_symlink_out_of_the_model_folder_is_refused(tmp_path):
    folder = tmp_path / "m"
    blend_in(folder)
    outside = tmp_path / "outside"
    shutil.move(folder / "models" / "part_models.0", outside)
    (folder / "models" / "part_models.0").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelIntegrityError, match="leads outside the model folder"):
        load_model(folder, expected_sha256=files_sha256(folder))  # digest skips the link
    (folder / "models" / "part_models.0").unlink()
    shutil.move(outside, folder / "models" / "part_models.0")
    (tmp_path / "state.json").write_text((folder / "model.json").read_text())
    (folder / "model.json").unlink()
    (folder / "model.json").symlink_to(tmp_path / "state.json")  # a file link, too
    with pytest.raises(ModelIntegrityError, match="leads outside the model folder"):
        load_model(folder, expected_sha256=files_sha256(folder))


def test_nested_models_and_links_inside_the_folder_still_load(tmp_path):
    folder = tmp_path / "m"
    model = blend_in(folder)
    digest = files_sha256(folder)
    loaded = load_model(folder, expected_sha256=digest)
    assert [type(p).__name__ for p in loaded.part_models] == \
        [type(p).__name__ for p in model.part_models]
    assert loaded.recommend(["u1"], 2).equals(model.recommend(["u1"], 2))
    # a folder reached through a link (a mounted volume) and links within it load too
    (tmp_path / "mounted").symlink_to(folder, target_is_directory=True)
    (folder / "data").mkdir()
    (folder / "arrays.npz").rename(folder / "data" / "arrays.npz")
    (folder / "arrays.npz").symlink_to(folder / "data" / "arrays.npz")
    assert load_model(tmp_path / "mounted").recommend(["u1"], 2).equals(
        model.recommend(["u1"], 2))
