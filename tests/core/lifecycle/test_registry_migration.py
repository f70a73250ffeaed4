"""`recsys registry migrate` on a real MLflow store holding versions logged the pre-0.2 way:
a cloudpickled python model plus `artifacts/recommender.pkl`."""
import json
import os
import pickle
import sys
import types
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from recsys.cli.main import main
from recsys.core.lifecycle.pyfunc import load_recommender
from recsys.core.lifecycle.registry import MODEL_SHA_TAG, aliases
from recsys.core.lifecycle.registry_migration import legacy_versions
from recsys.core.lifecycle.tracking import client_for
from recsys.core.models.legacy_pickle import LegacyPickleRefused, read_legacy_model
from recsys.core.models.zoo import build_model
from tests.factories import WritesAMarker
from tests.serving.conftest import ROWS

NAME = "recs"


class LegacyPyfunc(mlflow.pyfunc.PythonModel):
    """Stands for the pre-0.2 cloudpickled wrapper; loading it would create a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def predict(self, context, model_input, params=None):
        raise AssertionError("the legacy wrapper must never be loaded")

    def __reduce__(self):
        return (open, (self.marker, "w"))


def legacy_pickle(model, path: Path, monkeypatch) -> Path:
    """The model pickled as recsys < 0.2 did (`pickle.HIGHEST_PROTOCOL`), with its class
    under its old module `components.models.<module>`."""
    cls = type(model)
    old = cls.__module__.replace("recsys.core.models.", "components.models.")
    with monkeypatch.context() as patch:
        for name in ("components", "components.models", old):
            patch.setitem(sys.modules, name, types.ModuleType(name))
        patch.setattr(sys.modules[old], cls.__name__, cls, raising=False)
        patch.setattr(cls, "__module__", old)
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    assert f"{old}".encode() in data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def register_legacy(uri: str, pickled: Path, marker: Path) -> str:
    client = client_for(uri)
    if not client.search_registered_models(f"name='{NAME}'"):
        client.create_registered_model(NAME)
    experiment = client.get_experiment_by_name("old-runs") or \
        client.get_experiment(client.create_experiment("old-runs"))
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=LegacyPyfunc(str(marker)),
                                       artifacts={"recommender": str(pickled)},
                                       pip_requirements=["recsys-mlops"])
    model_id = info.model_uri.split("/", 1)[1]
    version = client.create_model_version(NAME, source=info.model_uri, run_id=run.info.run_id,
                                          model_id=model_id).version
    client.set_model_version_tag(NAME, version, "gate.decision", "approved")
    return str(version)


@pytest.fixture
def legacy_registry(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)
    client = client_for(uri)
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    marker = tmp_path / "pwned"
    models = {"popularity": build_model("popularity").fit(frame),
              "item_knn": build_model("item_knn", shrinkage=0.0).fit(frame)}
    versions = {name: register_legacy(uri, legacy_pickle(
        model, tmp_path / name / "recommender.pkl", monkeypatch), marker)
        for name, model in models.items()}
    client.set_registered_model_alias(NAME, "previous", versions["popularity"])
    client.set_registered_model_alias(NAME, "champion", versions["item_knn"])
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps(WritesAMarker(str(marker))))
    versions["hostile"] = register_legacy(uri, hostile, marker)
    return uri, client, models, versions, marker


def test_migrate_converts_pickled_versions_and_moves_their_aliases(legacy_registry, capsys):
    uri, client, models, versions, marker = legacy_registry
    assert not marker.exists()
    with pytest.raises(Exception, match="records no recsys.model_sha256"):
        load_recommender(f"models:/{NAME}@champion")  # nothing loads a pickle implicitly

    assert main(["registry", "migrate", "--dry-run"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["legacy_versions"] == ["1", "2", "3"]
    assert aliases(client, NAME) == {"previous": "1", "champion": "2"}  # dry run moved nothing

    assert main(["registry", "migrate"]) == 1  # the hostile version fails, the others migrate
    report = json.loads(capsys.readouterr().out)
    assert report["migrated"] == {"1": "4", "2": "5"}
    assert report["moved_aliases"] == {"previous": "4", "champion": "5"}
    assert "LegacyPickleRefused" in report["failed"]["3"] and "io.open" in \
        report["failed"]["3"]
    assert not marker.exists()  # neither the hostile pickle nor a legacy wrapper ran

    assert aliases(client, NAME) == {"previous": "4", "champion": "5"}
    champion = load_recommender(f"models:/{NAME}@champion")  # checked against its SHA-256
    expected = models["item_knn"].recommend(["u1", "u5", "nobody"], 3)
    pd.testing.assert_frame_equal(champion.recommend(["u1", "u5", "nobody"], 3), expected)
    new = client.get_model_version(NAME, "5")
    assert new.tags[MODEL_SHA_TAG] and new.tags["registry.migrated_from_version"] == "2"
    assert new.tags["gate.decision"] == "approved"  # the old version's tags come along
    assert client.get_model_version(NAME, "2").tags["registry.migrated_to_version"] == "5"

    assert legacy_versions(client, NAME) == ["3"]  # a second run converts nothing twice
    assert main(["registry", "migrate"]) == 1
    assert json.loads(capsys.readouterr().out)["migrated"] == {}
    assert not marker.exists()


def test_the_legacy_reader_refuses_any_global_a_model_is_not_made_of(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (WritesAMarker(str(marker)), os.getcwd, {"x": pd.Timestamp("2026-01-01")}):
        path = tmp_path / "bad.pkl"
        path.write_bytes(pickle.dumps(payload))
        with pytest.raises(LegacyPickleRefused, match="refused, nothing was run"):
            read_legacy_model(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(Exception, match="holds a list, not a recsys model"):
        read_legacy_model(path)
    assert not marker.exists()
