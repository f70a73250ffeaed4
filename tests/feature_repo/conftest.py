"""A tiny shop's feature tables with two snapshots, and stores over them."""
import pandas as pd
import pytest
import redis

from recsys.components.features.tables import (
    ITEM_STATS_COLUMNS,
    USER_SESSION_COLUMNS,
    USER_STATS_COLUMNS,
    write_snapshot,
)
from recsys.core.data.lake import Lake
from recsys.core.settings import Settings
from recsys.feature_repo.features.store import apply_repo, open_store
from recsys.tools.local_services import temporary_postgres_database

T1 = pd.Timestamp("2026-10-10T00:00:00Z")
T2 = pd.Timestamp("2026-10-20T00:00:00Z")


def user_stats(as_of, purchases):
    return pd.DataFrame({
        "user_id": ["u1", "u2"], "purchases": purchases, "events": [10, 20],
        "unique_items": [5, 6], "avg_spend": [40.0, float("nan")], "total_spend": [80.0, 0.0],
        "preferred_category": ["books", "home"], "preferred_time_of_day": ["evening", "night"],
        "days_since_last_event": [1.0, 2.0], "feature_timestamp": as_of})


def item_stats(as_of, views):
    return pd.DataFrame({
        "item_id": ["i1", "i2"], "views": views, "unique_users": [3, 4], "purchases": [1, 0],
        "conversion_rate": [0.1, 0.0], "avg_price": [20.0, 60.0],
        "price_band": ["budget", "luxury"], "popularity_score": [2.5, 1.0],
        "category": ["books", "home"], "brand": ["acme", None], "feature_timestamp": as_of})


def sessions(as_of):
    return pd.DataFrame({
        "user_id": ["u1"], "recent_items": [["i2", "i1"]], "avg_view_price_10m": [25.0],
        "top_category_30m": ["books"], "cart_abandonment_risk": [True],
        "comparing_products": [False], "last_event_ts": [as_of - pd.Timedelta(minutes=1)],
        "feature_timestamp": as_of})


def write_tables(lake_dir, session_time):
    """The two snapshots of each table, in a lake folder or a given Lake (say, on S3)."""
    lake = lake_dir if isinstance(lake_dir, Lake) else Lake(str(lake_dir))
    write_snapshot(lake, "user_stats", user_stats(T1, [2, 0]), USER_STATS_COLUMNS)
    write_snapshot(lake, "user_stats", user_stats(T2, [3, 1]), USER_STATS_COLUMNS)
    write_snapshot(lake, "item_stats", item_stats(T1, [10, 20]), ITEM_STATS_COLUMNS)
    write_snapshot(lake, "item_stats", item_stats(T2, [15, 25]), ITEM_STATS_COLUMNS)
    write_snapshot(lake, "user_session", sessions(session_time), USER_SESSION_COLUMNS)


@pytest.fixture
def local_settings(tmp_path):
    return Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))


@pytest.fixture
def local_store(local_settings, tmp_path):
    write_tables(tmp_path / "lake", pd.Timestamp.now(tz="UTC").floor("s"))
    store, repo = open_store(local_settings, profile="local")
    apply_repo(store, repo)
    return store, repo


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
