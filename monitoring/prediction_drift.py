"""Prediction drift: what the served model recommends, from the serving request log.

Each served item becomes a row (category and price of the recommended item, its score,
the answering path); Evidently compares their distributions between two windows. The
summary adds list-level figures: fallback ratio and catalogue coverage.
"""
from __future__ import annotations

import pandas as pd

from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift

PREDICTION_CONFIG = DriftConfig(
    numerical_columns=["rec_price", "score"], categorical_columns=["rec_category", "path"],
    calibrate=False)


def served_items(log: pd.DataFrame, categories: dict, prices: dict) -> pd.DataFrame:
    """One row per recommended item of every served list."""
    rows = log[["path", "item_ids", "scores"]].explode(["item_ids", "scores"])
    rows = rows.dropna(subset=["item_ids"])
    items = rows["item_ids"].astype(str)
    return pd.DataFrame({
        "rec_category": items.map(categories).fillna("(unknown)").str.split(".").str[0],
        "rec_price": pd.to_numeric(items.map(prices), errors="coerce"),
        "score": pd.to_numeric(rows["scores"], errors="coerce"),
        "path": rows["path"].astype(str)}).reset_index(drop=True)


def list_figures(log: pd.DataFrame, catalogue_size: int) -> dict:
    served = {str(i) for items in log["item_ids"] for i in items}
    return {"lists": int(len(log)),
            "fallback_ratio": round(float(log["fallback"].mean()), 4) if len(log) else 0.0,
            "coverage": round(len(served) / catalogue_size, 4) if catalogue_size else 0.0}


def run_prediction_drift(reference_log: pd.DataFrame, current_log: pd.DataFrame,
                         categories: dict, prices: dict) -> dict:
    """Drift summary of the served items plus fallback ratio and coverage on both sides."""
    result = run_drift(served_items(reference_log, categories, prices),
                       served_items(current_log, categories, prices), PREDICTION_CONFIG)
    size = len(categories)
    return {**result.summary, "reference": list_figures(reference_log, size),
            "current": list_figures(current_log, size)}
