"""Serving's per-request session read: the same answer on both profiles; the session's
cache key follows what can change a recommendation."""
import pandas as pd
import pytest

from recsys.feature_repo.features.live_session import LiveSession
from recsys.feature_repo.features.online import push_session_features
from recsys.feature_repo.features.session_reader import SessionReader
from tests.feature_repo.features.test_online import session_row

WRITTEN = pd.Timestamp("2026-11-01T10:00:00.123456Z")


def check_reader(store, reader):
    push_session_features(store, session_row(user_id="u7", recent_items=["i3", "i1"],
                                             top_category_30m="home.kitchen",
                                             feature_timestamp=WRITTEN))
    push_session_features(store, session_row(user_id="u8", top_category_30m=None,
                                             avg_view_price_10m=None,
                                             feature_timestamp=WRITTEN))
    assert reader.read("u7") == LiveSession(["i3", "i1"], "home.kitchen", 12.5)
    assert reader.read("u8").top_category is None and reader.read("u8").avg_view_price is None
    assert reader.read("nobody") is None


def test_feast_path_on_the_local_profile(local_store):
    store, _ = local_store
    reader = SessionReader(store)
    assert reader.rows is None  # SQLite: read through Feast
    check_reader(store, reader)


@pytest.mark.integration
def test_redis_path_on_the_production_profile(production_store):
    store, _ = production_store
    reader = SessionReader(store)
    assert reader.rows is not None  # plain Redis: one HMGET in Feast's format
    check_reader(store, reader)


def test_the_session_key_changes_with_the_items_the_category_or_the_price_only():
    base = LiveSession(["i1", "i2"], "home", 25.0)
    assert base.key() == LiveSession(["i1", "i2"], "home", 25.0).key()
    assert base.key() == LiveSession(["i1", "i2"], "home", 25.01).key()  # 3 digits
    others = [LiveSession(["i1", "i2", "i3"], "home", 25.0),
              LiveSession(["i2", "i1"], "home", 25.0),
              LiveSession(["i1", "i2"], "garden", 25.0), LiveSession(["i1", "i2"], None, 25.0),
              LiveSession(["home", "i1", "i2"], None, 25.0), LiveSession([], None, 25.0),
              LiveSession(["i1", "i2"], "home", 26.0), LiveSession(["i1", "i2"], "home")]
    assert len({base.key(), *(other.key() for other in others)}) == len(others) + 1
