"""evaluate: score models on the same holdout, with items seen in training excluded."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.models.base import FALLBACK, Recommender
from recsys.core.models.metrics import (
    bootstrap_mean_ci,
    catalogue_coverage,
    intra_list_diversity,
    novelty,
    per_user_ranking,
    rating_errors,
)
from recsys.core.models.ratings import RatingRecommender

C = Columns
KS = (5, 10, 20)
CI_K = 10
BOOTSTRAP_SAMPLES = 1000


@dataclass
class Evaluation:
    """Aggregate metrics plus the per-user values at k=10 (for paired comparisons)."""

    metrics: dict
    per_user: pd.DataFrame


def evaluate_in_detail(model: Recommender, holdout: pd.DataFrame, ks: tuple[int, ...] = KS,
                       bootstrap_samples: int = BOOTSTRAP_SAMPLES) -> Evaluation:
    """`holdout` holds (user_id, item_id[, rating]) interactions after the split; every
    held-out item counts as relevant. Metrics: precision/recall/ndcg/map/hit_rate/coverage
    /diversity/novelty at each k, a bootstrap 95% interval of ndcg@10 over users, RMSE/MAE
    for rating models trained on explicit stars when the holdout has ratings, the cold-start
    share and the speed."""
    users = pd.unique(holdout[C.user_id].astype(str))
    started = time.perf_counter()
    recs = model.recommend(users, k=max(ks), exclude_seen=True)
    seconds = time.perf_counter() - started
    categories = model.item_categories()
    category = None if categories is None else pd.Series(categories, index=model.items)
    reach = pd.Series(np.diff(model.seen.tocsc().indptr), index=model.items)
    metrics: dict[str, float] = {}
    per_user = None
    for k in ks:
        table = per_user_ranking(recs, holdout, k)
        metrics.update({f"{m}_at_{k}": float(table[m].mean()) if len(table) else 0.0
                        for m in table.columns})
        metrics[f"coverage_at_{k}"] = catalogue_coverage(recs, len(model.items), k)
        metrics[f"novelty_at_{k}"] = novelty(recs, reach, len(model.users), k)
        if category is not None:
            metrics[f"diversity_at_{k}"] = intra_list_diversity(recs, category, k)
        if k == CI_K:
            per_user = table
    if per_user is not None and len(per_user):
        _, low, high = bootstrap_mean_ci(per_user["ndcg"].to_numpy(), bootstrap_samples)
        metrics[f"ndcg_at_{CI_K}_ci_low"], metrics[f"ndcg_at_{CI_K}_ci_high"] = low, high
    if isinstance(model, RatingRecommender) and model.explicit_ratings \
            and C.rating in holdout.columns:
        rated = holdout.dropna(subset=[C.rating])
        if len(rated):
            predicted = model.predict_ratings(rated[C.user_id].astype(str).to_numpy(),
                                              rated[C.item_id].astype(str).to_numpy())
            metrics.update(rating_errors(predicted, rated[C.rating].to_numpy()))
    cold = recs.drop_duplicates(C.user_id)[FALLBACK]
    metrics["cold_start_user_share"] = float(cold.mean()) if len(cold) else 0.0
    metrics["evaluated_users"] = float(len(users))
    metrics["users_per_second"] = float(len(users) / seconds) if seconds > 0 else 0.0
    return Evaluation(metrics, per_user if per_user is not None else pd.DataFrame())
