"""Hybrid: alpha * collaborative + (1 - alpha) * content, scores min-max scaled per user.

alpha is chosen on an inner validation split of the training data (NDCG@10 over a grid)
unless it is given (`validation`: temporal when timestamps exist, or random per user, to
match the protocol the model is judged by); new users get the popularity fallback like
every model, new items are reached through the content part.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.columns import Columns
from recsys.core.errors import ConfigError, DataQualityError
from recsys.core.metrics import ranking_metrics
from recsys.core.models.base import USER_BATCH, Recommender
from recsys.core.models.collaborative import COLLABORATIVE, instantiate
from recsys.core.models.content import ContentRecommender
from recsys.core.models.validation import validation_split

C = Columns
log = logging.getLogger(__name__)
ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
VALIDATION_USERS = 5000
"""Validation users sampled (seeded) for the alpha choice: bounds its cost on big shops."""
VALIDATION_K = 10


def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row's finite scores to [0, 1] (-inf stays -inf, constant rows become 0)."""
    finite = np.isfinite(scores)
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(finite, (scores - np.where(np.isfinite(low), low, 0.0)) / span, -np.inf)


class HybridRecommender(Recommender):
    """A collaborative model (`cf`, any zoo name) blended with the TF-IDF content model."""

    name = "hybrid"
    needs_item_features = True
    scores_cold_items = True
    search_space = {"cf": ["item_knn", "ease"]}

    def __init__(self, cf: str = "item_knn", cf_params: dict | None = None,
                 alpha: float | None = None, validation_fraction: float = 0.2,
                 validation: str = "auto", popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if cf in ("hybrid", "content"):
            raise ConfigError(f"hybrid: cf must be a collaborative model, got {cf!r}")
        if alpha is not None and not 0 <= alpha <= 1:
            raise ConfigError(f"hybrid: alpha must be in [0, 1], got {alpha}")
        self.cf, self.cf_params, self.alpha = cf, dict(cf_params or {}), alpha
        self.validation_fraction, self.validation = validation_fraction, validation
        self.chosen_alpha: float | None = None
        self.alpha_validation: dict[float, float] = {}
        self.cf_model: Recommender | None = None
        self.content_model: ContentRecommender | None = None

    def _parts(self, interactions: pd.DataFrame) -> tuple[Recommender, ContentRecommender]:
        items = None if self.item_meta is None else self.item_meta.reset_index(names=C.item_id)
        users = None if self.user_meta is None else self.user_meta.reset_index(names=C.user_id)
        half_life = {"popularity_half_life_days": self.popularity_half_life_days}
        cf = instantiate(COLLABORATIVE, self.cf, **{**half_life, **self.cf_params})
        cf = cf.fit(interactions, items, users)
        content = ContentRecommender(**half_life).fit(interactions, items, users)
        return cf, content

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        if self.alpha is None:
            self.chosen_alpha = self._choose_alpha(interactions)
        else:
            self.chosen_alpha = float(self.alpha)
        self.cf_model, self.content_model = self._parts(interactions)

    def _choose_alpha(self, interactions: pd.DataFrame) -> float:
        try:
            train, valid = validation_split(interactions, self.validation_fraction,
                                            mode=self.validation)
        except DataQualityError as error:
            log.warning("hybrid: %s; alpha = 0.5", error)
            return 0.5
        cf, content = self._parts(train)
        users = np.array([cf.user_index[u] for u in pd.unique(valid[C.user_id].astype(str))
                          if u in cf.user_index], dtype=np.int64)
        if users.size > VALIDATION_USERS:
            users = np.sort(np.random.default_rng(0).choice(users, VALIDATION_USERS,
                                                            replace=False))
            valid = valid[valid[C.user_id].astype(str).isin(set(cf.users[users]))]
        if users.size == 0:
            log.info("hybrid: no validation user is known to the inner model; alpha = 0.5")
            return 0.5
        frames: dict[float, list[pd.DataFrame]] = {a: [] for a in ALPHAS}
        k = min(VALIDATION_K, cf.items.size)
        for lo in range(0, users.size, USER_BATCH):
            batch = users[lo:lo + USER_BATCH]
            cf_scores, content_scores = _blend_inputs(cf, content, batch, exclude_seen=True)
            for a in ALPHAS:
                blended = _blend(a, cf_scores, content_scores)
                frames[a].append(cf._top_k(cf.users[batch], blended, k, False))
        key = f"ndcg_at_{VALIDATION_K}"
        self.alpha_validation = {a: ranking_metrics(pd.concat(frames[a]), valid,
                                                    VALIDATION_K)[key] for a in ALPHAS}
        best = max(ALPHAS, key=lambda a: (self.alpha_validation[a], a))
        log.info("hybrid(%s): alpha %.1f chosen on validation (%s %s)", self.cf, best, key,
                 {a: round(v, 4) for a, v in self.alpha_validation.items()})
        return best

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        cf_scores, content_scores = _blend_inputs(self.cf_model, self.content_model, user_rows,
                                                  exclude_seen=False)
        return _blend(self.chosen_alpha, cf_scores, content_scores)

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        a = self.chosen_alpha
        return a * minmax_rows(self.cf_model._item_similarity(rows)) + \
            (1 - a) * minmax_rows(self.content_model._item_similarity(rows))


def _blend(alpha: float, cf_scores: np.ndarray, content_scores: np.ndarray) -> np.ndarray:
    """alpha * cf + (1 - alpha) * content; items the cf part marks -inf (seen) stay -inf."""
    excluded = np.isneginf(cf_scores)
    blended = alpha * np.where(excluded, 0.0, cf_scores) + (1 - alpha) * content_scores
    blended[excluded] = -np.inf
    return blended


def _blend_inputs(cf: Recommender, content: Recommender, rows: np.ndarray, exclude_seen: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Both parts' scores for the same users, scaled per user (seen items at -inf in the cf
    part when `exclude_seen`)."""
    cf_scores = cf._score(rows).astype(np.float64)
    if cf.cold_items.any():
        cf_scores[:, cf.cold_items] = np.where(np.isfinite(cf_scores[:, cf.cold_items]),
                                               cf_scores[:, cf.cold_items], 0.0)
    cf_scores = minmax_rows(cf_scores)
    cf_scores[~np.isfinite(cf_scores)] = 0.0
    content_scores = minmax_rows(content._score(rows).astype(np.float64))
    if exclude_seen:
        seen = cf.seen[rows]
        owner = np.repeat(np.arange(rows.size), np.diff(seen.indptr))
        cf_scores[owner, seen.indices] = -np.inf
    return cf_scores, content_scores
