"""The champion hot swap, on a real MLflow store with real pyfunc models."""
import pandas as pd
import pytest

from recsys.core.errors import NotFoundError
from recsys.core.registry import promote
from recsys.core.registry_lock import registry_lock
from recsys.core.tracking import client_for
from recsys.serving.model_source import ModelSource
from tests.factories import register_trained
from tests.serving.conftest import ROWS


def test_refresh_swaps_to_a_newly_promoted_champion(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = ModelSource(uri, "recs")
    with pytest.raises(NotFoundError, match="no 'champion' yet"):
        source.load()
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(uri)
    versions = [register_trained(uri, "recs", frame, "popularity")]
    first = source.load()
    assert first.version == versions[0] and first.recommender.name == "popularity"
    assert source.refresh() is False  # nothing moved
    versions.append(register_trained(uri, "recs", frame, "item_knn", champion=False))
    assert source.refresh() is False  # registered, not yet champion
    promote(client, "recs", versions[1], "second", compared_with=versions[0],
            lock=registry_lock(uri, "recs"))
    held = source.current  # a request in flight keeps its model
    assert source.refresh() is True
    assert source.current.version == versions[1]
    assert source.current.recommender.name == "item_knn"
    assert held.recommender.name == "popularity"
