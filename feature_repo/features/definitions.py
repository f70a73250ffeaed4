"""Feast definitions, one commented object per concept: Entity -> source -> FeatureView ->
FeatureService. Sources point at the lake's `features/` zone, so they are built for a
given folder by `feature_definitions(tables_dir)`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    ValueType,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Bool, Float64, Int64, String, UnixTimestamp

from recsys.core.data.columns import Columns
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP
from recsys.core.data.price_fit import price_to_user_avg_spend

C = Columns

# A shopper; user ids are strings (some sources use 64-hex hashes).
user = Entity(name="user", join_keys=[C.user_id], value_type=ValueType.STRING,
              description="A shopper")
# A product of the catalogue.
item = Entity(name="item", join_keys=[C.item_id], value_type=ValueType.STRING,
              description="A product")

USER_STATS_SCHEMA = [
    Field(name="purchases", dtype=Int64), Field(name="events", dtype=Int64),
    Field(name="unique_items", dtype=Int64), Field(name="avg_spend", dtype=Float64),
    Field(name="total_spend", dtype=Float64), Field(name="preferred_category", dtype=String),
    Field(name="preferred_time_of_day", dtype=String),
    Field(name="days_since_last_event", dtype=Float64),
]
ITEM_STATS_SCHEMA = [
    Field(name="views", dtype=Int64), Field(name="unique_users", dtype=Int64),
    Field(name="purchases", dtype=Int64), Field(name="conversion_rate", dtype=Float64),
    Field(name="avg_price", dtype=Float64), Field(name="price_band", dtype=String),
    Field(name="popularity_score", dtype=Float64), Field(name=C.category, dtype=String),
    Field(name=C.brand, dtype=String),
]
SESSION_VIEW = "user_session"  # the view the stream processor writes and serving reads
USER_SESSION_SCHEMA = [
    Field(name="recent_items", dtype=Array(String)),
    Field(name="avg_view_price_10m", dtype=Float64),
    Field(name="top_category_30m", dtype=String),
    Field(name="cart_abandonment_risk", dtype=Bool),
    Field(name="comparing_products", dtype=Bool),
    Field(name="last_event_ts", dtype=UnixTimestamp),
]
TABLES = {"user_stats": "user_stats", "item_stats": "item_stats",
          "user_session": "user_session"}


@dataclass
class FeatureRepo:
    """Every object `apply` registers, plus the names serving and training ask for."""

    objects: list
    user_stats: FeatureView
    item_stats: FeatureView
    user_session: FeatureView
    price_fit: object  # an OnDemandFeatureView
    recommender_v1: FeatureService
    training_v1: FeatureService


def table_path(tables_dir: str | Path, name: str) -> str:
    """The folder of one table's snapshots: a local path, or an `s3://` URI as it is."""
    base = str(tables_dir)
    if "://" in base:
        return f"{base.rstrip('/')}/{TABLES[name]}"
    return str(Path(base) / TABLES[name])


def batch_source(name: str, tables_dir: str | Path, table: str, offline_store: str = "file",
                 s3_endpoint_url: str | None = None):
    """The Parquet snapshots of `table` as a source of the offline store in use: a
    FileSource (local or `s3://`, read in place through s3fs at `s3_endpoint_url` when
    given), or a SparkSource for Feast's Spark offline store."""
    if offline_store == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(name=name, path=table_path(tables_dir, table), file_format="parquet",
                           timestamp_field=FEATURE_TIMESTAMP)
    path = table_path(tables_dir, table)
    endpoint = s3_endpoint_url if path.startswith("s3://") else None
    return FileSource(name=name, path=path, timestamp_field=FEATURE_TIMESTAMP,
                      s3_endpoint_override=endpoint)


def feature_definitions(tables_dir: str | Path, offline_store: str = "file",
                        s3_endpoint_url: str | None = None) -> FeatureRepo:
    """Build the repository's objects over Parquet tables under `tables_dir` (a folder or
    an `s3://` prefix), read by the `file` or the `spark` offline store."""
    # Batch features from preprocess, one row per user per snapshot (as of its split time).
    user_stats_source = batch_source("user_stats_source", tables_dir, "user_stats",
                                     offline_store, s3_endpoint_url)
    user_stats = FeatureView(name="user_stats", entities=[user], ttl=timedelta(days=90),
                             schema=USER_STATS_SCHEMA, source=user_stats_source, online=True,
                             description="Shopper history: purchases, spend, preferences")
    item_stats_source = batch_source("item_stats_source", tables_dir, "item_stats",
                                     offline_store, s3_endpoint_url)
    item_stats = FeatureView(name="item_stats", entities=[item], ttl=timedelta(days=90),
                             schema=ITEM_STATS_SCHEMA, source=item_stats_source, online=True,
                             description="Product traction, price band, category, brand")
    # Real-time session features: the stream processor pushes them; history lands in the
    # same lake table, so training and serving agree.
    session_batch = batch_source("user_session_batch", tables_dir, "user_session",
                                 offline_store, s3_endpoint_url)
    session_push = PushSource(name="user_session_push", batch_source=session_batch)
    user_session = FeatureView(name="user_session", entities=[user], ttl=timedelta(days=1),
                               schema=USER_SESSION_SCHEMA, source=session_push, online=True,
                               description="Live session signals from the event stream")

    # Request-time feature: an item's price against what this shopper usually spends.
    @on_demand_feature_view(
        sources=[user_stats, item_stats],
        schema=[Field(name="price_to_user_avg_spend", dtype=Float64)],
        mode="pandas",
    )
    def price_fit(inputs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"price_to_user_avg_spend": price_to_user_avg_spend(
            inputs["avg_price"], inputs["avg_spend"])})

    # What serving reads per request, and what training joins point-in-time.
    recommender_v1 = FeatureService(name="recommender_v1",
                                    features=[user_stats, item_stats, user_session, price_fit])
    training_v1 = FeatureService(name="training_v1", features=[user_stats, item_stats])
    objects = [user, item, user_stats_source, item_stats_source, session_batch, session_push,
               user_stats, item_stats, user_session, price_fit, recommender_v1, training_v1]
    return FeatureRepo(objects, user_stats, item_stats, user_session, price_fit,
                       recommender_v1, training_v1)
