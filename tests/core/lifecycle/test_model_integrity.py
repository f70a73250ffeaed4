"""Model files cannot run code: a tampered or swapped artifact is refused everywhere before
any of it is read, and serving answers from `previous`."""
import pickle
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from recsys.core.lifecycle.pyfunc import load_recommender
from recsys.core.lifecycle.tracking import client_for
from recsys.core.models.storage import ModelIntegrityError, load_model, save_model
from recsys.core.models.zoo import build_model
from recsys.serving.model_source import ModelSource, ModelUnhealthy
from tests.factories import WritesAMarker, register_trained
from tests.serving.conftest import ROWS

NAME = "recs"


def artifact_folder(uri: str, version: str) -> Path:
    client = client_for(uri)
    source = client.get_model_version(NAME, version).source  # models:/m-<logged model id>
    model_id = source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    return Path(urlparse(location).path) / "artifacts" / "recommender"


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    good = register_trained(uri, NAME, frame, "popularity")
    swapped = register_trained(uri, NAME, frame, "item_knn")
    return uri, good, swapped


def test_a_pickle_swapped_into_a_champion_is_refused_and_never_runs(registry, tmp_path,
                                                                     monkeypatch):
    uri, good, swapped = registry
    marker = tmp_path / "pwned"
    folder = artifact_folder(uri, swapped)
    (folder / "arrays.npz").write_bytes(pickle.dumps(WritesAMarker(str(marker))))

    with pytest.raises(ModelIntegrityError, match="do not match the registry"):
        load_recommender(f"models:/{NAME}@champion")  # evaluate's and export's loader
    loaded = ModelSource(uri, NAME).load()  # a serving pod starting now
    assert loaded.version == good and "do not match the registry" in loaded.fallback_reason
    assert loaded.recommender.top_items("u1", 2)[0].size == 2

    from recsys.cli.main import main

    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)
    assert main(["registry", "export", "--out", str(tmp_path / "export")]) != 0
    assert not marker.exists()


def test_one_changed_byte_is_refused(registry):
    uri, _, swapped = registry
    state = artifact_folder(uri, swapped) / "model.json"
    state.write_text(state.read_text().replace('"neighbours"', '"neighbourz"', 1))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_recommender(f"models:/{NAME}/{swapped}")


def test_even_unchecked_loading_never_unpickles(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    folder = tmp_path / "model"
    save_model(build_model("popularity").fit(frame), folder)
    marker = tmp_path / "pwned"
    (folder / "arrays.npz").write_bytes(pickle.dumps(WritesAMarker(str(marker))))
    with pytest.raises(Exception) as caught:
        load_model(folder)  # no expected digest: numpy refuses pickled data by itself
    assert not isinstance(caught.value, AssertionError)
    single = tmp_path / "old.pkl"
    single.write_bytes(pickle.dumps(WritesAMarker(str(marker))))
    with pytest.raises(ModelIntegrityError, match="pickles are never loaded"):
        load_model(single)
    assert not marker.exists()


def test_a_version_without_a_recorded_digest_is_refused(tmp_path):
    from recsys.core.lifecycle.gate import Decision
    from recsys.core.lifecycle.registry import register_with_decision

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = client_for(uri)
    run = client.create_run(client.create_experiment("old"))  # a run that tagged no digest
    version = register_with_decision(client, NAME, f"runs:/{run.info.run_id}/model",
                                     run.info.run_id, Decision(True, ["old"]), {}, {})
    with pytest.raises(ModelIntegrityError, match="records no recsys.model_sha256"):
        load_recommender(f"models:/{NAME}/{version}")


def test_with_champion_and_previous_both_tampered_serving_answers_from_the_lake_baseline(
        registry, tmp_path):
    import pyarrow as pa

    from recsys.core.data.feature_snapshots import snapshot_key
    from recsys.core.data.lake import Lake
    from recsys.serving.build import popularity_baseline
    from recsys.serving.model_source import BASELINE_VERSION

    uri, good, swapped = registry
    for version in (good, swapped):
        target = artifact_folder(uri, version) / "model.json"
        target.write_bytes(target.read_bytes() + b" ")
    lake = Lake(str(tmp_path / "lake"))
    lake.write_table(snapshot_key("item_stats", pd.Timestamp("2026-01-02", tz="UTC")),
                     pa.table({"item_id": ["a", "b", "c"], "popularity_score": [1.0, 5.0, 3.0],
                               "category": ["x", "y", "x"]}))

    source = ModelSource(uri, NAME, baseline=lambda: popularity_baseline(lake))
    loaded = source.load()
    assert loaded.version == BASELINE_VERSION
    assert f"previous v{good} unusable too" in loaded.fallback_reason
    picks = loaded.recommender.recommend(["u1", "someone-new"], 2)
    assert picks.groupby("user_id")["item_id"].apply(list).to_dict() == {
        "someone-new": ["b", "c"], "u1": ["b", "c"]}
    assert source.refresh() is False  # the broken champion is not retried until it moves

    nothing = ModelSource(uri, NAME, baseline=lambda: popularity_baseline(
        Lake(str(tmp_path / "empty-lake"))))
    with pytest.raises(ModelUnhealthy, match="popularity baseline is unusable too: "
                                             "NotFoundError: no item_stats snapshot"):
        nothing.load()
