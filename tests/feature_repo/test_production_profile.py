"""The production profile against the real Redis and a SQL registry on PostgreSQL."""
import time

import pandas as pd
import pytest
import redis

from benchmarks.local_services import temporary_postgres_database
from components.common.settings import Settings
from feature_repo.online import online_features, push_session_features
from feature_repo.store import apply_repo, materialize, open_store
from tests.feature_repo.conftest import write_tables
from tests.feature_repo.test_online import session_row

REDIS_DB = 7  # a db of its own, flushed by the test


@pytest.fixture
def production_store(tmp_path):
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    write_tables(tmp_path / "lake", pd.Timestamp.now(tz="UTC").floor("s"))
    with temporary_postgres_database("feast_test") as registry_url:
        settings = Settings(
            state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"),
            redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}", feast_key_ttl_seconds=3,
            feast_registry_url=registry_url)
        store, repo = open_store(settings, profile="production")
        apply_repo(store, repo)
        try:
            yield store, client
        finally:
            client.flushdb()


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
    time.sleep(4)  # key_ttl_seconds=3: Redis forgets entities nobody updated
    expired = online_features(store, ["u9", "u1"]).users.set_index("user_id")
    assert expired.loc["u9", "session_missing"] and expired.loc["u1", "user_missing"]
