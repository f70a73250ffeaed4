"""Offline metrics: top-N ranking, beyond-accuracy (coverage, diversity, novelty), rating error
and bootstrap confidence intervals.

Ranking metrics are averaged over the users that have held-out items (users with
recommendations but nothing relevant are not counted; users with relevant items but no
recommendations score 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns

C = Columns
RANKING = ("precision", "recall", "ndcg", "map", "hit_rate")


def _hits(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    top = recommendations[recommendations[C.rank] <= k][[C.user_id, C.item_id, C.rank]]
    pairs = relevant[[C.user_id, C.item_id]].drop_duplicates()
    hits = top.merge(pairs, on=[C.user_id, C.item_id], how="left", indicator=True)
    hits["_hit"] = hits.pop("_merge").eq("both")
    return hits


def per_user_ranking(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int
                     ) -> pd.DataFrame:
    """One row per user with held-out items: precision, recall, ndcg, map (AP normalised by
    min(k, relevant)), map_full (AP normalised by all relevant items, the definition of
    microsoft/recommenders' published tables) and hit_rate, at k."""
    n_relevant = relevant.drop_duplicates([C.user_id, C.item_id]).groupby(C.user_id).size()
    users = n_relevant.index
    columns = [*RANKING, "map_full"]
    if users.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    hits = _hits(recommendations[recommendations[C.user_id].isin(users)], relevant, k)
    hits = hits.sort_values([C.user_id, C.rank])
    hit = hits["_hit"].to_numpy()
    rank = hits[C.rank].to_numpy()
    scored = hits.assign(_gain=np.where(hit, 1.0 / np.log2(rank + 1), 0.0),
                         _cum=hits.groupby(C.user_id)["_hit"].cumsum())
    scored["_prec_at_hit"] = np.where(hit, scored["_cum"] / rank, 0.0)
    grouped = scored.groupby(C.user_id)
    n_hits = grouped["_hit"].sum().reindex(users, fill_value=0)
    dcg = grouped["_gain"].sum().reindex(users, fill_value=0.0)
    ap_sum = grouped["_prec_at_hit"].sum().reindex(users, fill_value=0.0)
    ideal_len = np.minimum(n_relevant.to_numpy(), k)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return pd.DataFrame({
        "precision": n_hits / k, "recall": n_hits / n_relevant,
        "ndcg": dcg / discounts[ideal_len - 1], "map": ap_sum / ideal_len,
        "hit_rate": (n_hits > 0).astype(float), "map_full": ap_sum / n_relevant,
    }, index=users).astype(float)


def ranking_metrics(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int
                    ) -> dict[str, float]:
    """Precision@k, Recall@k, NDCG@k, MAP@k and HitRate@k (binary relevance)."""
    per_user = per_user_ranking(recommendations, relevant, k)
    if per_user.empty:
        return {f"{m}_at_{k}": 0.0 for m in RANKING}
    return {f"{m}_at_{k}": float(per_user[m].mean()) for m in RANKING}


def catalogue_coverage(recommendations: pd.DataFrame, catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in anyone's top-k."""
    if catalogue_size <= 0:
        return 0.0
    top = recommendations[recommendations[C.rank] <= k]
    return float(top[C.item_id].nunique() / catalogue_size)


def intra_list_diversity(recommendations: pd.DataFrame, category: pd.Series, k: int) -> float:
    """Mean over users of the share of item pairs in the top-k that differ in category
    (`category`: item_id -> category; unknown categories count as one 'unknown')."""
    top = recommendations[recommendations[C.rank] <= k]
    cats = top[C.item_id].map(category).fillna("unknown")
    counts = top.assign(_cat=cats.to_numpy()).groupby([C.user_id, "_cat"]).size()
    per_user_n = counts.groupby(level=0).sum()
    same_pairs = (counts * (counts - 1)).groupby(level=0).sum()
    pairs = per_user_n * (per_user_n - 1)
    ok = pairs > 0
    if not ok.any():
        return 0.0
    return float((1 - same_pairs[ok] / pairs[ok]).mean())


def novelty(recommendations: pd.DataFrame, reach: pd.Series, n_users: int, k: int) -> float:
    """Mean self-information -log2(share of training users who interacted with the item) of
    the recommended items (`reach`: item_id -> users); items nobody touched count as one."""
    top = recommendations[recommendations[C.rank] <= k]
    if top.empty:
        return 0.0
    share = top[C.item_id].map(reach).fillna(1).clip(lower=1) / max(n_users, 1)
    return float((-np.log2(share)).mean())


def rating_errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of rating predictions."""
    error = np.asarray(predicted, dtype=float) - np.asarray(actual, dtype=float)
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}


def bootstrap_mean_ci(values: np.ndarray, samples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean over users."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 100):  # 100 resamples at a time bounds the memory
        n = min(100, samples - start)
        means[start:start + n] = values[rng.integers(0, values.size, (n, values.size))].mean(1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(values.mean()), float(low), float(high)


def paired_bootstrap(candidate: pd.Series, reference: pd.Series, samples: int = 1000,
                     confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Bootstrap of the mean per-user difference candidate - reference on the same users
    (a user missing on one side scores 0 there): difference, low, high."""
    users = candidate.index.union(reference.index)
    diff = candidate.reindex(users, fill_value=0.0) - reference.reindex(users, fill_value=0.0)
    mean, low, high = bootstrap_mean_ci(diff.to_numpy(), samples, confidence, seed)
    return {"difference": mean, "low": low, "high": high, "confidence": confidence,
            "samples": samples, "users": int(users.size)}
