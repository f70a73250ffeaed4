"""The one-script Redis writer keeps Feast's format and its newer-wins rule."""
import pandas as pd
import pytest

from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP
from recsys.feature_repo.features.online import online_features, push_session_features
from recsys.feature_repo.features.session_writer import SessionFeatureWriter, session_protos
from recsys.feature_repo.features.store import materialize
from recsys.streaming.processor import feature_frame

pytestmark = pytest.mark.integration
T = pd.Timestamp("2026-11-01T10:00:00.250000Z")


def frame(user, items, stamp):
    rows = [{"user_id": user, "recent_items": items, "avg_view_price_10m": 19.99,
             "top_category_30m": "electronics.phone", "cart_abandonment_risk": True,
             "comparing_products": False, "last_event_ts": 1_763_000_000_123}]
    out = feature_frame(rows)
    out[FEATURE_TIMESTAMP] = stamp
    return out


def recent(store, user):
    users = online_features(store, [user]).users.set_index("user_id")
    return list(users.loc[user, "user_session__recent_items"])


def test_rows_read_back_as_pushed_ones(production_store):
    store, _ = production_store
    writer = SessionFeatureWriter(store)
    assert writer.redis is not None  # the production profile takes the script path
    push_session_features(store, frame("a1", ["i1", "i2"], pd.Timestamp.now(tz="UTC")))
    writer.write(frame("b1", ["i1", "i2"], pd.Timestamp.now(tz="UTC")))
    users = online_features(store, ["a1", "b1"]).users.set_index("user_id")
    session = [c for c in users.columns if c.startswith("user_session__")] + ["session_missing"]
    pd.testing.assert_series_equal(users.loc["a1", session], users.loc["b1", session],
                                   check_names=False)
    assert users.loc["b1", "user_session__avg_view_price_10m"] == pytest.approx(19.99)
    assert users.loc["b1", "user_session__cart_abandonment_risk"]


def test_only_a_newer_row_replaces_the_stored_one(production_store):
    store, _ = production_store
    rows = SessionFeatureWriter(store).redis
    write = lambda items, stamp: rows.write(session_protos(frame("u5", items, stamp)))  # noqa: E731
    assert write(["first"], T) == 1
    assert write(["older"], T - pd.Timedelta(seconds=1)) == 0
    assert write(["same instant"], T) == 0
    assert write(["older nanos"], T - pd.Timedelta(microseconds=100)) == 0
    assert recent(store, "u5") == ["first"]
    assert write(["newer nanos"], T + pd.Timedelta(microseconds=100)) == 1
    assert recent(store, "u5") == ["newer nanos"]
    assert write(["newer"], T + pd.Timedelta(hours=1)) == 1
    assert recent(store, "u5") == ["newer"]


def test_other_views_of_the_entity_and_the_key_ttl_are_kept(production_store):
    store, client = production_store
    materialize(store, pd.Timestamp.now(tz="UTC").to_pydatetime())
    SessionFeatureWriter(store).write(frame("u1", ["i9"], pd.Timestamp.now(tz="UTC")))
    users = online_features(store, ["u1"]).users.set_index("user_id")
    assert users.loc["u1", "user_stats__purchases"] == 3  # written by materialize, still there
    assert list(users.loc["u1", "user_session__recent_items"]) == ["i9"]
    ttls = {client.ttl(key) for key in client.scan_iter()}
    assert ttls and all(0 < ttl <= 3 for ttl in ttls)  # the profile's key_ttl_seconds=3
