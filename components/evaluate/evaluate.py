"""evaluate: score models on the same holdout, with items seen in training excluded."""
from __future__ import annotations

import time

import pandas as pd

from components.common.columns import Columns
from components.evaluate.metrics import catalogue_coverage, ranking_metrics
from components.models.base import FALLBACK, Recommender

C = Columns
KS = (5, 10, 20)


def evaluate_model(model: Recommender, holdout: pd.DataFrame, ks: tuple[int, ...] = KS) -> dict:
    """Metrics at every k for the holdout's users (cold users answered by the fallback).

    `holdout` holds (user_id, item_id) interactions after the split; every held-out item
    counts as relevant. Returns precision/recall/ndcg/map/hit_rate/coverage at each k,
    the share of cold-start users and the scoring speed.
    """
    users = pd.unique(holdout[C.user_id].astype(str))
    started = time.perf_counter()
    recs = model.recommend(users, k=max(ks), exclude_seen=True)
    seconds = time.perf_counter() - started
    metrics: dict[str, float] = {}
    for k in ks:
        metrics.update(ranking_metrics(recs, holdout, k))
        metrics[f"coverage_at_{k}"] = catalogue_coverage(recs, len(model.items), k)
    cold = recs.drop_duplicates(C.user_id)[FALLBACK]
    metrics["cold_start_user_share"] = float(cold.mean()) if len(cold) else 0.0
    metrics["evaluated_users"] = float(len(users))
    metrics["users_per_second"] = float(len(users) / seconds) if seconds > 0 else 0.0
    return metrics
