"""Content-based: TF-IDF over item metadata, cosine similarity (scikit-learn).

A user's profile is the interaction-weighted sum of the TF-IDF vectors of the items they
touched; items score by cosine with it. Items with metadata but no interactions score like
any other item, so this model answers the item cold start and `similar_items`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender
from recsys.core.models.metadata import item_tokens, l2_rows, token_matrix


class ContentRecommender(Recommender):
    """TF-IDF item vectors; user profile = sum of log(1 + weight) x item vector."""

    name = "content"
    needs_item_features = True
    scores_cold_items = True
    search_space = {"sublinear_tf": [True, False], "profile_weighting": ["log", "binary"]}
    item_vectors: sp.csr_matrix
    """items x vocabulary TF-IDF vectors (set by fit)."""

    def __init__(self, sublinear_tf: bool = True, profile_weighting: str = "log",
                 popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if profile_weighting not in ("log", "binary"):
            raise ConfigError(f"profile_weighting must be 'log' or 'binary', got "
                              f"{profile_weighting!r}")
        self.sublinear_tf, self.profile_weighting = sublinear_tf, profile_weighting
        self.vocabulary: list[str] = []

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        if self.item_meta is None:
            raise ConfigError("content: needs item_features (category, brand, price_band, "
                              "title or description) to describe items")
        counts, self.vocabulary = token_matrix(item_tokens(self.item_meta, self.items.size))
        if not self.vocabulary:
            raise ConfigError("content: item_features give no tokens (category, brand, "
                              "price_band, title and description are all empty)")
        from sklearn.feature_extraction.text import TfidfTransformer  # fit time only

        tfidf = TfidfTransformer(sublinear_tf=self.sublinear_tf, norm="l2")
        self.item_vectors = tfidf.fit_transform(counts).astype(np.float32).tocsr()

    def user_profiles(self, user_rows: np.ndarray) -> sp.csr_matrix:
        seen = self.seen[user_rows].copy()
        seen.data = np.log1p(seen.data) if self.profile_weighting == "log" \
            else np.ones_like(seen.data)
        return l2_rows(seen @ self.item_vectors)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.user_profiles(user_rows) @ self.item_vectors.T).toarray()
        return scores

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        similarity: np.ndarray = (self.item_vectors[rows] @ self.item_vectors.T).toarray()
        return similarity
