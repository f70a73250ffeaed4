"""Feast's Spark offline store and Spark compute engine (RECSYS_FEAST_OFFLINE_STORE=spark),
in local mode: the same point-in-time training rows and the same materialized online rows
as the file offline store over the same snapshots."""
import pandas as pd
import pytest

from recsys.core.settings import Settings
from recsys.feature_repo.features.online import online_features, training_features
from recsys.feature_repo.features.store import apply_repo, materialize, open_store
from tests.feature_repo.conftest import T1, T2, write_tables

pytestmark = pytest.mark.slow
ENTITIES = pd.DataFrame({
    "user_id": ["u1", "u1", "u2", "u2"], "item_id": ["i1", "i2", "i2", "i1"],
    "event_timestamp": [T1 + pd.Timedelta(days=5), T2 + pd.Timedelta(hours=1),
                        T2 - pd.Timedelta(seconds=1), T2 + pd.Timedelta(days=2)]})


@pytest.fixture
def own_spark_session():
    """Feast starts a Spark session of its own settings: stop it after the test, unless one
    was running before (later tests start theirs with the engine's settings)."""
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    yield
    started = SparkSession.getActiveSession()
    if before is None and started is not None:
        started.stop()


def store_for(tmp_path, name: str, offline_store: str):
    settings = Settings(state_dir=tmp_path / name, lake_uri=str(tmp_path / "lake"),
                        feast_offline_store=offline_store, spark_master="local[2]",
                        spark_shuffle_partitions=2)
    store, repo = open_store(settings, profile="local")
    apply_repo(store, repo)
    return store, repo


def by_row(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(event_timestamp=pd.to_datetime(frame["event_timestamp"], utc=True))
    return frame.sort_values(["user_id", "item_id", "event_timestamp"]).reset_index(drop=True)[
        sorted(frame.columns)]


def test_spark_offline_store_joins_and_materializes_like_the_file_store(tmp_path,
                                                                       own_spark_session):
    write_tables(tmp_path / "lake", pd.Timestamp.now(tz="UTC").floor("s"))
    file_store, file_repo = store_for(tmp_path, "file", "file")
    spark_store, spark_repo = store_for(tmp_path, "spark", "spark")
    assert type(spark_store._get_provider().offline_store).__name__ == "SparkOfflineStore"
    expected = by_row(training_features(file_store, file_repo, ENTITIES))
    got = by_row(training_features(spark_store, spark_repo, ENTITIES))
    assert len(got) == len(expected) == 4
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # u1 after T2 sees T2's snapshot (3 purchases), u2 just before T2 still T1's (0)
    assert got.set_index(["user_id", "item_id"]).loc[("u1", "i2"),
                                                      "user_stats__purchases"] == 3
    assert got.set_index(["user_id", "item_id"]).loc[("u2", "i2"),
                                                      "user_stats__purchases"] == 0
    end = pd.Timestamp.now(tz="UTC").to_pydatetime()
    materialize(file_store, end)
    materialize(spark_store, end)
    online = [online_features(s, ["u1", "u2"], ["i1", "i2"]) for s in (file_store, spark_store)]
    pd.testing.assert_frame_equal(online[1].users, online[0].users)
    pd.testing.assert_frame_equal(online[1].items, online[0].items)
    assert online[1].users.set_index("user_id").loc["u1", "user_stats__purchases"] == 3
