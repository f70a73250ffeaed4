"""Drift of the batch feature tables: the snapshot the champion was trained with against
the newest one (user_stats and item_stats from the lake's features/ zone)."""
from __future__ import annotations

import pandas as pd

from recsys.core.data.feature_snapshots import latest_snapshot
from recsys.core.data.lake import Lake
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift

TABLES = {
    "user_stats": DriftConfig(
        numerical_columns=["purchases", "events", "unique_items", "avg_spend", "total_spend",
                           "days_since_last_event"],
        categorical_columns=["preferred_category", "preferred_time_of_day"], calibrate=False),
    "item_stats": DriftConfig(
        numerical_columns=["views", "unique_users", "purchases", "conversion_rate",
                           "avg_price", "popularity_score"],
        categorical_columns=["price_band", "category", "brand"], calibrate=False),
}


def feature_drift(lake: Lake, trained_at: pd.Timestamp) -> dict:
    """Per table: drift summary between the snapshot at the champion's split time and the
    newest snapshot (or a status saying why it was not computed)."""
    out = {}
    for table, config in TABLES.items():
        newest = latest_snapshot(lake, table)
        reference = latest_snapshot(lake, table, as_of=trained_at)
        if newest is None or reference is None or newest == reference:
            out[table] = {"status": "not computed: no newer snapshot than the champion's"}
            continue
        result = run_drift(lake.read_table(reference).to_pandas(),
                           lake.read_table(newest).to_pandas(), config)
        out[table] = {"status": "computed", "reference_snapshot": reference.rsplit("/", 1)[-1],
                      "current_snapshot": newest.rsplit("/", 1)[-1], **result.summary}
    return out
