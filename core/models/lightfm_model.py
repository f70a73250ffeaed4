"""LightFM (the maintained `rectools-lightfm` fork) with WARP or BPR loss, hybrid:
users and items are sums of an identity embedding and metadata-token embeddings, so an
item with metadata but no interactions still has a representation (item cold start)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender
from recsys.core.models.metadata import item_tokens, token_matrix, user_tokens

LOSSES = ("warp", "bpr", "warp-kos", "logistic")


def feature_matrix(tokens: list[list[str]], identity: np.ndarray) -> sp.csr_matrix:
    """[identity | metadata tokens], rows normalised to sum 1 (LightFM's convention).
    `identity` marks the rows that get their own identity feature (warm rows)."""
    from sklearn.preprocessing import normalize  # fit time only: scoring needs NumPy alone

    meta, _ = token_matrix(tokens)
    ident = sp.diags(identity.astype(np.float32)).tocsr()
    return normalize(sp.hstack([ident, meta]).tocsr(), norm="l1").astype(np.float32)


class LightFMRecommender(Recommender):
    """Hybrid matrix factorisation; `loss` is warp (default) or bpr.

    One thread by default: LightFM's threads update the factors without locks (Hogwild),
    so two fits of the same data and seed differ (MovieLens-small NDCG@10 0.351-0.360 over
    three fits with 2 threads, 0.3566 every time with one). A retrained candidate must be
    reproducible to be judged against the champion; `threads` > 1 trades that for speed."""

    name = "lightfm_warp"
    scores_cold_items = True
    search_space = {"no_components": [32, 64, 128], "learning_rate": [0.02, 0.05, 0.1],
                    "epochs": [10, 20, 40], "item_alpha": [0.0, 1e-6, 1e-5],
                    "max_sampled": [10, 100, 300]}
    # the learned representations (set by fit): biases per row, embeddings rows x components
    user_bias: np.ndarray
    user_embeddings: np.ndarray
    item_bias: np.ndarray
    item_embeddings: np.ndarray

    def __init__(self, loss: str = "warp", no_components: int = 64, epochs: int = 20,
                 learning_rate: float = 0.05, item_alpha: float = 0.0, user_alpha: float = 0.0,
                 max_sampled: int = 10, use_features: bool = True, threads: int = 1,
                 random_state: int = 42, popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if loss not in LOSSES:
            raise ConfigError(f"lightfm: loss must be one of {LOSSES}, got {loss!r}")
        self.loss, self.no_components, self.epochs = loss, no_components, epochs
        self.learning_rate, self.item_alpha, self.user_alpha = learning_rate, item_alpha, user_alpha
        self.max_sampled, self.use_features = max_sampled, use_features
        self.threads, self.random_state = threads, random_state

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        from lightfm import LightFM

        meta_items = self.item_meta if self.use_features else None
        meta_users = self.user_meta if self.use_features else None
        item_features = feature_matrix(item_tokens(meta_items, self.items.size),
                                       ~self.cold_items)
        user_features = feature_matrix(user_tokens(meta_users, self.users.size),
                                       np.ones(self.users.size, dtype=bool))
        positives = matrix.tocoo()
        positives.data = np.ones_like(positives.data)
        model = LightFM(no_components=self.no_components, loss=self.loss,
                        learning_rate=self.learning_rate, item_alpha=self.item_alpha,
                        user_alpha=self.user_alpha, max_sampled=self.max_sampled,
                        random_state=self.random_state)
        model.fit(positives, user_features=user_features, item_features=item_features,
                  epochs=self.epochs, num_threads=self.threads)
        self.user_bias, self.user_embeddings = model.get_user_representations(user_features)
        self.item_bias, self.item_embeddings = model.get_item_representations(item_features)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self.user_embeddings[user_rows] @ self.item_embeddings.T \
            + self.item_bias[None, :]
        return scores

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        unit = self.item_embeddings / (np.linalg.norm(self.item_embeddings, axis=1,
                                                      keepdims=True) + 1e-12)
        similarity: np.ndarray = unit[rows] @ unit.T
        return similarity


class LightFMBPRRecommender(LightFMRecommender):
    """LightFM with the BPR loss; pure collaborative by default (with the metadata features
    BPR fell to NDCG@10 0.02 on MovieLens-small, without them 0.24)."""

    name = "lightfm_bpr"
    search_space = {key: values for key, values in LightFMRecommender.search_space.items()
                    if key != "max_sampled"}  # WARP's negative sampling: BPR ignores it

    def __init__(self, loss: str = "bpr", use_features: bool = False,
                 **params: Any) -> None:  # LightFMRecommender's own keywords, typed there
        super().__init__(loss=loss, use_features=use_features, **params)
