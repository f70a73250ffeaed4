"""Top-N ranking metrics over users, from a recommendation frame and held-out interactions.

Every metric is averaged over the users that have held-out items (users with recommendations
but nothing relevant are not counted; users with relevant items but no recommendations score 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from components.common.columns import Columns

C = Columns


def _hits(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    top = recommendations[recommendations[C.rank] <= k][[C.user_id, C.item_id, C.rank]]
    pairs = relevant[[C.user_id, C.item_id]].drop_duplicates()
    hits = top.merge(pairs, on=[C.user_id, C.item_id], how="left", indicator=True)
    hits["_hit"] = hits.pop("_merge").eq("both")
    return hits


def ranking_metrics(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> dict:
    """Precision@k, Recall@k, NDCG@k, MAP@k and HitRate@k (binary relevance)."""
    n_relevant = relevant.drop_duplicates([C.user_id, C.item_id]).groupby(C.user_id).size()
    users = n_relevant.index
    if users.empty:
        return {f"{m}_at_{k}": 0.0 for m in ("precision", "recall", "ndcg", "map", "hit_rate")}
    hits = _hits(recommendations[recommendations[C.user_id].isin(users)], relevant, k)
    hits = hits.sort_values([C.user_id, C.rank])
    hit = hits["_hit"].to_numpy()
    rank = hits[C.rank].to_numpy()
    per_user = hits.assign(
        _gain=np.where(hit, 1.0 / np.log2(rank + 1), 0.0),
        _cum=hits.groupby(C.user_id)["_hit"].cumsum(),
    )
    per_user["_prec_at_hit"] = np.where(hit, per_user["_cum"] / rank, 0.0)
    grouped = per_user.groupby(C.user_id)
    n_hits = grouped["_hit"].sum().reindex(users, fill_value=0)
    dcg = grouped["_gain"].sum().reindex(users, fill_value=0.0)
    ap_sum = grouped["_prec_at_hit"].sum().reindex(users, fill_value=0.0)
    ideal_len = np.minimum(n_relevant.to_numpy(), k)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = discounts[ideal_len - 1]
    return {
        f"precision_at_{k}": float((n_hits / k).mean()),
        f"recall_at_{k}": float((n_hits / n_relevant).mean()),
        f"ndcg_at_{k}": float((dcg / idcg).mean()),
        f"map_at_{k}": float((ap_sum / ideal_len).mean()),
        f"hit_rate_at_{k}": float((n_hits > 0).mean()),
    }


def catalogue_coverage(recommendations: pd.DataFrame, catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in anyone's top-k."""
    if catalogue_size <= 0:
        return 0.0
    top = recommendations[recommendations[C.rank] <= k]
    return float(top[C.item_id].nunique() / catalogue_size)
