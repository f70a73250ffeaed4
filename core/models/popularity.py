"""The baseline: every user gets the recency-weighted most popular items."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import POPULARITY_SCORE, Columns
from recsys.core.errors import SchemaError, missing_columns_error
from recsys.core.models.base import Recommender

C = Columns


class PopularityRecommender(Recommender):
    """Recency-weighted popularity (weights halved every `popularity_half_life_days`)."""

    name = "popularity"

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        return None

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (user_rows.size, self.popularity.size)).copy()


def popularity_from_item_stats(item_stats: pd.DataFrame) -> PopularityRecommender:
    """The last-resort model serving falls back to when no registered version can serve: the
    feature pipeline's newest `item_stats` snapshot (item_id, popularity_score, category)
    as a popularity model with no known users. Built from the lake, never from the
    registry, so it serves while the registry or every stored model is broken."""
    if item_stats.empty:
        raise SchemaError("item_stats is empty: no items to fall back on")
    missing = [c for c in (C.item_id, POPULARITY_SCORE) if c not in item_stats.columns]
    if missing:
        raise missing_columns_error("popularity fallback", missing, item_stats.columns)
    stats = item_stats.assign(**{C.item_id: item_stats[C.item_id].astype(str)}) \
        .drop_duplicates(C.item_id, keep="last").sort_values(C.item_id)
    model = PopularityRecommender()
    model.users = np.array([], dtype=object)
    model.items = stats[C.item_id].to_numpy(dtype=object)
    model.user_index = {}
    model.item_index = {item: i for i, item in enumerate(model.items)}
    model.seen = sp.csr_matrix((0, model.items.size), dtype=np.float32)
    model.cold_items = np.zeros(model.items.size, dtype=bool)
    model.popularity = stats[POPULARITY_SCORE].fillna(0.0).to_numpy(dtype=float)
    meta = [c for c in (C.category, C.brand) if c in stats.columns]
    model.item_meta = stats.set_index(C.item_id)[meta] if meta else None
    return model
