"""Drift of the batch feature tables: the snapshot the champion was trained with against
the newest one (user_stats and item_stats from the lake's features/ zone)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

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


def snapshot_at_or_before(folder: Path, moment: pd.Timestamp) -> Path | None:
    stamps = {p: pd.Timestamp(p.stem.split("=", 1)[1], tz="UTC")
              for p in folder.glob("as_of=*.parquet")}
    eligible = [p for p, t in stamps.items() if t <= moment]
    return max(eligible, key=stamps.get) if eligible else None


def feature_drift(lake_dir: str | Path, trained_at: pd.Timestamp) -> dict:
    """Per table: drift summary between the snapshot at the champion's split time and the
    newest snapshot (or a status saying why it was not computed)."""
    out = {}
    for table, config in TABLES.items():
        folder = Path(lake_dir) / "features" / table
        newest = max(folder.glob("as_of=*.parquet"), default=None)
        reference = snapshot_at_or_before(folder, trained_at) if folder.exists() else None
        if newest is None or reference is None or newest == reference:
            out[table] = {"status": "not computed: no newer snapshot than the champion's"}
            continue
        result = run_drift(pd.read_parquet(reference), pd.read_parquet(newest), config)
        out[table] = {"status": "computed", "reference_snapshot": reference.name,
                      "current_snapshot": newest.name, **result.summary}
    return out
