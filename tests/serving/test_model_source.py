"""The champion hot swap, on a real MLflow store with real pyfunc models."""
import pandas as pd
import pytest

from recsys.components.train.train import TrainConfig, log_trained, train_models
from recsys.core.decide import Decision
from recsys.core.errors import NotFoundError
from recsys.core.registry import promote, register_with_decision
from recsys.core.tracking import client_for
from recsys.serving.model_source import ModelSource
from tests.serving.conftest import ROWS


def test_refresh_swaps_to_a_newly_promoted_champion(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = ModelSource(uri, "recs")
    with pytest.raises(NotFoundError, match="no 'champion' yet"):
        source.load()
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(uri)
    versions = []
    for name in ("popularity", "item_knn"):
        fitted = train_models(frame, TrainConfig(models={name: {}}))[0]
        log_trained(fitted, uri, "swap-test", {"rows": len(frame)})
        versions.append(register_with_decision(client, "recs", fitted.model_uri, fitted.run_id,
                                               Decision(True, ["test"]), {}, {}))
        if name == "popularity":
            promote(client, "recs", versions[0], "first")
            first = source.load()
            assert first.version == versions[0] and first.recommender.name == "popularity"
            assert source.refresh() is False  # nothing moved
    promote(client, "recs", versions[1], "second")
    held = source.current  # a request in flight keeps its model
    assert source.refresh() is True
    assert source.current.version == versions[1]
    assert source.current.recommender.name == "item_knn"
    assert held.recommender.name == "popularity"
