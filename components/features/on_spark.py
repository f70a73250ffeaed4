"""The feature tables on the spark engine: `latest_tables`' three functions run per user
or item partition over the processed snapshot's events (read by tasks from its parts),
the price bands over the collected item table, then the same snapshot writer."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from recsys.components.features.tables import write_feature_tables
from recsys.core.data.columns import Columns
from recsys.core.data.entity_stats import (
    ITEM_STATS_SCHEMA,
    USER_FEATURES_SCHEMA,
    item_stats,
    user_features,
    with_price_bands,
)
from recsys.core.data.lake import Lake
from recsys.core.data.processed import EVENTS_SCHEMA, Processed
from recsys.core.data.spark.frames import collect, per_key
from recsys.core.data.spark.lake_io import read_files
from recsys.feature_repo.features.session_features import SESSION_FEATURES_SCHEMA, session_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

C = Columns


def write_feature_tables_on_spark(spark: "SparkSession", lake: Lake, processed: Processed,
                                  snapshot: Lake, prefix: str = "",
                                  half_life_days: float = 7.0,
                                  mirrors: tuple[Lake, ...] = ()) -> dict[str, list[str]]:
    """`write_feature_tables` with the latest tables computed by Spark from the events of
    the snapshot at `snapshot`/`prefix` (written in parts by the spark engine)."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    keys = snapshot.list(f"{base}events/") if not snapshot.exists(f"{base}events.parquet") \
        else [f"{base}events.parquet"]
    events = read_files(spark, snapshot, keys, EVENTS_SCHEMA)
    end = pd.Timestamp(processed.summary["window_end"])
    latest = {
        "user_stats": _sorted(collect(per_key(
            events, [C.user_id], lambda f: user_features(f, end), EVENTS_SCHEMA,
            USER_FEATURES_SCHEMA), USER_FEATURES_SCHEMA), C.user_id),
        "item_stats": with_price_bands(collect(per_key(
            events, [C.item_id], lambda f: item_stats(f, end, half_life_days),
            EVENTS_SCHEMA, ITEM_STATS_SCHEMA), ITEM_STATS_SCHEMA)),
        "user_session": _sorted(collect(per_key(
            events, [C.user_id], lambda f: session_features(f, end), EVENTS_SCHEMA,
            SESSION_FEATURES_SCHEMA), SESSION_FEATURES_SCHEMA), C.user_id),
    }
    return write_feature_tables(lake, processed, half_life_days, mirrors, latest=latest)


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)
