"""The production profile against the real Redis and a SQL registry on PostgreSQL."""
import pandas as pd
import pytest
import redis
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from recsys.core.settings import Settings
from recsys.feature_repo.features.feast_adapter import redis_entity_key
from recsys.feature_repo.features.online import online_features, push_session_features
from recsys.feature_repo.features.store import apply_repo, materialize, open_store
from recsys.tools.local_services import temporary_postgres_database
from tests.feature_repo.conftest import REDIS_DB, T1, T2, write_tables
from tests.feature_repo.features.test_online import session_row


@pytest.mark.integration
def test_apply_materialize_read_push_and_ttl_on_redis(production_store):
    store, client = production_store
    assert {fv.name for fv in store.list_feature_views()} == {
        "user_stats", "item_stats", "user_session"}  # read back from the SQL registry
    materialize(store, pd.Timestamp.now(tz="UTC").to_pydatetime())
    assert client.dbsize() > 0
    users = online_features(store, ["u1", "ghost"], ["i1"]).users.set_index("user_id")
    assert users.loc["u1", "user_stats__purchases"] == 3
    assert users.loc["ghost", "user_missing"]
    push_session_features(store, session_row(user_id="u9", recent_items=["i7", "i8"]))
    pushed = online_features(store, ["u9"]).users.set_index("user_id")
    assert pushed.loc["u9", "user_session__recent_items"] == ["i7", "i8"]
    assert not pushed.loc["u9", "session_missing"]
    # key_ttl_seconds=3: Redis forgets entities nobody updated; the TTL is on every row
    keys = [redis_entity_key(store.config.project, EntityKeyProto(
        join_keys=["user_id"], entity_values=[ValueProto(string_val=user)]),
        store.config.entity_key_serialization_version) for user in ("u9", "u1")]
    assert all(0 < client.pttl(key) <= 3000 for key in keys)
    client.delete(*keys)  # what Redis does when the TTL runs out
    expired = online_features(store, ["u9", "u1"]).users.set_index("user_id")
    assert expired.loc["u9", "session_missing"] and expired.loc["u1", "user_missing"]


@pytest.mark.integration
def test_an_s3_lake_is_read_in_place_with_no_copy_on_the_pods_disk(tmp_path, s3_server,
                                                                   s3_lake):
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    write_tables(s3_lake, pd.Timestamp.now(tz="UTC").floor("s"))
    with temporary_postgres_database("feast_s3_test") as registry_url:
        settings = Settings(state_dir=tmp_path / "state", lake_uri=s3_lake.uri,
                            s3_endpoint_url=s3_server, feast_registry_url=registry_url,
                            redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}")
        store, repo = open_store(settings, profile="production")
        apply_repo(store, repo)
        try:
            sources = {view.name: view.batch_source for view in store.list_feature_views()}
            assert sources["user_stats"].path == f"{s3_lake.uri}/features/user_stats"
            assert sources["user_stats"].file_options.s3_endpoint_override == s3_server
            # point-in-time: each row sees the snapshot before its time, read from S3
            entities = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "event_timestamp": [
                T1 + pd.Timedelta(days=1), T2 + pd.Timedelta(days=1),
                T2 + pd.Timedelta(days=1)]})
            joined = store.get_historical_features(
                entity_df=entities, features=["user_stats:purchases"]).to_df()
            joined = joined.sort_values(["user_id", "event_timestamp"])
            assert joined["purchases"].tolist() == [2, 3, 1]
            materialize(store, pd.Timestamp.now(tz="UTC").to_pydatetime())
            users = online_features(store, ["u1", "u2"]).users.set_index("user_id")
            assert users.loc["u1", "user_stats__purchases"] == 3
            assert users.loc["u2", "user_stats__purchases"] == 1
        finally:
            client.flushdb()
    assert not (tmp_path / "state" / "feast" / "offline").exists()
