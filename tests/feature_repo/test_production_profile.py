"""The production profile against the real Redis and a SQL registry on PostgreSQL."""
import pandas as pd
import pytest
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from recsys.feature_repo.feast_adapter import redis_entity_key
from recsys.feature_repo.online import online_features, push_session_features
from recsys.feature_repo.store import materialize
from tests.feature_repo.test_online import session_row


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
