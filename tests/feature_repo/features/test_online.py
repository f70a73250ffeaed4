"""The Feast repo on a temp file registry + SQLite online store."""
import math

import pandas as pd
import pytest

from recsys.core.errors import ConfigError, SchemaError
from recsys.feature_repo.features.online import (
    online_features,
    push_session_features,
    training_features,
)
from recsys.feature_repo.features.store import materialize, redis_connection_string
from tests.feature_repo.conftest import T1, T2


def now():
    return pd.Timestamp.now(tz="UTC")


def test_online_read_after_materialize_with_defaults_for_unknowns(local_store):
    store, _ = local_store
    materialize(store, now().to_pydatetime())
    features = online_features(store, ["u1", "ghost"], ["i1", "nope"])
    users = features.users.set_index("user_id")
    assert users.loc["u1", "user_stats__purchases"] == 3  # the newest snapshot (T2)
    assert users.loc["u1", "user_session__recent_items"] == ["i2", "i1"]
    assert bool(users.loc["u1", "user_session__cart_abandonment_risk"]) is True
    assert not users.loc["u1", "user_missing"] and users.loc["ghost", "user_missing"]
    assert users.loc["ghost", "user_stats__purchases"] == 0
    assert users.loc["ghost", "user_session__recent_items"] == []
    assert math.isnan(users.loc["ghost", "user_stats__avg_spend"])
    assert users["user_stats__purchases"].dtype == "int64"
    items = features.items.set_index(["user_id", "item_id"])
    assert items.loc[("u1", "i1"), "item_stats__views"] == 15
    assert items.loc[("u1", "i1"), "price_fit__price_to_user_avg_spend"] == pytest.approx(0.5)
    assert items.loc[("u1", "nope"), "item_missing"]
    assert not items.loc[("u1", "i1"), "item_missing"]


def session_row(**overrides):
    row = {"user_id": "u2", "recent_items": ["i9"], "avg_view_price_10m": 12.5,
           "top_category_30m": "home", "cart_abandonment_risk": False,
           "comparing_products": True, "last_event_ts": now(), "feature_timestamp": now()}
    row.update(overrides)
    return pd.DataFrame([row])


def test_push_then_read_back(local_store):
    store, _ = local_store
    assert push_session_features(store, session_row()) == 1
    users = online_features(store, ["u2"]).users.set_index("user_id")
    assert users.loc["u2", "user_session__recent_items"] == ["i9"]
    assert users.loc["u2", "user_session__avg_view_price_10m"] == 12.5
    assert bool(users.loc["u2", "user_session__comparing_products"]) is True
    assert not users.loc["u2", "session_missing"]


@pytest.mark.parametrize("frame,message", [
    (session_row().drop(columns=["top_category_30m"]), "missing field(s) ['top_category_30m']"),
    (session_row(avg_view_price_10m="cheap"), "field 'avg_view_price_10m' must be a number"),
    (session_row(recent_items="i1,i2"), "field 'recent_items' must be a list of strings"),
    (session_row(cart_abandonment_risk="yes"), "field 'cart_abandonment_risk' must be a boolean"),
    (session_row().assign(mood="happy"), "unknown field(s) ['mood']"),
])
def test_push_refuses_a_bad_frame_naming_the_field(local_store, frame, message):
    store, _ = local_store
    with pytest.raises(SchemaError) as info:
        push_session_features(store, frame)
    assert message in str(info.value)


def test_point_in_time_join_never_leaks_later_values(local_store):
    store, repo = local_store
    entity_df = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2"], "item_id": ["i1", "i1", "i1", "i2"],
        "event_timestamp": [T1 - pd.Timedelta(days=1), T1 + pd.Timedelta(days=5),
                            T2 + pd.Timedelta(hours=1), T2 - pd.Timedelta(seconds=1)]})
    joined = training_features(store, repo, entity_df)
    got = {(u, pd.Timestamp(t)): (p, v) for u, t, p, v in zip(
        joined["user_id"], joined["event_timestamp"], joined["user_stats__purchases"],
        joined["item_stats__views"])}
    times = entity_df["event_timestamp"]
    # between T1 and T2: T1's values; after T2: T2's
    assert got[("u1", times[1])] == (2, 10)
    assert got[("u1", times[2])] == (3, 15)
    # one second before T2 still sees T1 (purchases 0, views 20), never T2's (1, 25)
    assert got[("u2", times[3])] == (0, 20)
    # before any snapshot there is nothing to see (Feast's file store drops such rows)
    before = got.get(("u1", times[0]), (None, None))
    assert all(pd.isna(x) for x in before)


def test_redis_connection_string():
    assert redis_connection_string("redis://127.0.0.1:6379/0") == "127.0.0.1:6379,db=0"
    assert redis_connection_string("redis://:pw@cache:6380/2") == "cache:6380,db=2,password=pw"
    with pytest.raises(ConfigError, match="redis://"):
        redis_connection_string("http://x")


def test_cached_reader_matches_the_uncached_read_and_expires(local_store):
    from recsys.feature_repo.features.online import OnlineFeatureReader

    store, _ = local_store
    materialize(store, now().to_pydatetime())
    reader = OnlineFeatureReader(store, item_ttl_seconds=60)
    plain = online_features(store, ["u1", "u2"], ["i1", "i2", "nope"]).items
    pd.testing.assert_frame_equal(reader.read(["u1", "u2"], ["i1", "i2", "nope"]).items, plain)
    # a newer materialized value is only seen after the TTL (or clear())
    store.write_to_online_store("item_stats", pd.DataFrame({
        "item_id": ["i1"], "views": [999], "unique_users": [1], "purchases": [0],
        "conversion_rate": [0.0], "avg_price": [1.0], "price_band": ["budget"],
        "popularity_score": [0.0], "category": ["books"], "brand": ["acme"],
        "feature_timestamp": [now()]}))
    assert reader.read(["u1"], ["i1"]).items["item_stats__views"].iloc[0] == 15
    reader.clear()
    assert reader.read(["u1"], ["i1"]).items["item_stats__views"].iloc[0] == 999
