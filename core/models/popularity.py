"""The baseline: every user gets the recency-weighted most popular items."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.models.base import Recommender


class PopularityRecommender(Recommender):
    """Recency-weighted popularity (weights halved every `popularity_half_life_days`)."""

    name = "popularity"

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        return None

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (user_rows.size, self.popularity.size)).copy()
