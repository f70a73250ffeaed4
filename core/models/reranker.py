"""Feature re-ranker: a collaborative model's candidates re-scored with the shop's user and
item stats (the tables the features step publishes to Feast: user_stats, item_stats) and
the price fit (an item's price over the shopper's average spend, Feast's `price_fit`).

Per (user, candidate) the features are
- `base`: the base model's rank among the user's candidates, as 1 / log2(rank + 1);
- `popularity`: log1p(the item's recency-weighted popularity in the data the model learns
  from), scaled to [0, 1] - recomputed from the inner train when the weights are learned,
  so the validation window never leaks into its own features;
- `price_fit`: -|log(price / the shopper's usual price)| (0 is a perfect fit; the ratio is
  Feast's `price_fit` formula, `core/data/price_fit.py`), with `price_unknown` = 1 when either
  is unknown;
- `category`: 1 when the item's category is the shopper's preferred one.
The shopper's usual price (the weighted mean price of the items they took) and preferred
category (the heaviest) are computed from the interactions the model learns from, like the
popularity: the inner train's when the weights are learned, so the validation window never
leaks into its own features (the features tables are as of the outer split).
The score is a logistic regression on them, learned on an inner temporal validation split of
the training data (the base model refitted on the inner train; its top `candidates` per
validation user labelled by whether the user took the item in the validation window), then
the base model is refitted on everything. Items outside a user's candidates rank below them
in the base model's order. Like every zoo model it is a candidate of the pipeline's gate:
it is served only when it beats the champion on the temporal holdout.

Serving passes what the online store (Feast) knows of the shopper right now: the average
price viewed in the last 10 minutes and the session's top category replace the usual price
and preferred category of the history, where the session has them (`_score_live`), so the
price fit is the price sensitivity of this visit.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.data.price_fit import price_to_user_avg_spend
from recsys.core.errors import ConfigError, DataQualityError
from recsys.core.models.base import Hyperparameters, LiveFeatures, Recommender
from recsys.core.models.collaborative import COLLABORATIVE, instantiate
from recsys.core.models.validation import validation_split

C = Columns
log = logging.getLogger(__name__)
FEATURES = ("base", "popularity", "price_fit", "price_unknown", "category")
VALIDATION_USERS = 5000
MIXES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Weights of the learned score added to the base rank, tried on validation."""
BELOW = -1e6
"""Offset of the items outside the candidates: below every re-ranked score, base order kept."""


class FeatureReranker(Recommender):
    name = "reranked"
    needs_item_features = True
    search_space = {"base": ["item_knn", "ease"], "candidates": [50, 100, 200]}

    # set by fit
    base_model: Recommender
    """The base model, fitted on all the training data."""
    weights: np.ndarray
    """One weight per feature of FEATURES."""
    item_price: np.ndarray
    """Price per catalogue item (nan where unknown)."""
    item_category: np.ndarray
    """Category index per catalogue item (-1 where unknown)."""
    user_price: np.ndarray
    """Usual price per user (nan where unknown)."""
    user_category: np.ndarray
    """Preferred category index per user (-1 where unknown)."""
    category_names: np.ndarray
    """Category text per category index (live session categories are text)."""

    def __init__(self, base: str = "ease", base_params: Hyperparameters | None = None,
                 candidates: int = 100, validation_fraction: float = 0.2,
                 popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if base not in COLLABORATIVE:
            raise ConfigError(f"reranked: base must be a collaborative model "
                              f"({', '.join(COLLABORATIVE)}), got {base!r}")
        if candidates < 2:
            raise ConfigError(f"reranked: candidates must be at least 2, got {candidates}")
        self.base, self.base_params = base, dict(base_params or {})
        self.candidates, self.validation_fraction = int(candidates), validation_fraction
        self.intercept = 0.0
        self.chosen_mix = 0.0
        self.mix_validation: dict[float, float] = {}

    # ---- fit -------------------------------------------------------------------------
    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        if self.item_meta is None:
            raise ConfigError("reranked: needs item_features (the item stats table)")
        self._feature_arrays()
        items = self.item_meta.reset_index(names=C.item_id)
        users = None if self.user_meta is None else self.user_meta.reset_index(names=C.user_id)
        self.weights, self.intercept = self._learn_weights(interactions, items, users)
        self.base_model = self._base().fit(interactions, items, users)
        log.info("reranked(%s): weights %s", self.base,
                 dict(zip(FEATURES, np.round(self.weights, 3))))

    def _base(self) -> Recommender:
        return instantiate(COLLABORATIVE, self.base, **{
            "popularity_half_life_days": self.popularity_half_life_days, **self.base_params})

    def _feature_arrays(self) -> None:
        meta = self.item_meta
        self.item_price = _numbers(meta, "avg_price", np.nan).to_numpy(dtype=np.float64)
        item_category = _texts(meta, C.category)
        categories = pd.Index(pd.unique(item_category))
        categories = categories[categories != "\x00"]
        self.item_category = categories.get_indexer(item_category).astype(np.int64)
        self.category_names = categories.to_numpy(dtype=object)
        self.user_price, self.user_category = self._user_profile(self.seen)

    def _user_profile(self, matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Per user (rows of `matrix`, users x catalogue weights): the weighted mean price of
        the items taken (nan without prices) and the heaviest category (-1 without)."""
        priced = np.where(np.isfinite(self.item_price), self.item_price, 0.0)
        has_price = np.isfinite(self.item_price).astype(np.float64)
        weight = np.asarray(matrix @ has_price).ravel()
        total = np.asarray(matrix @ priced).ravel()
        price = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)
        known = self.item_category >= 0
        n_categories = int(self.item_category.max()) + 1 if known.any() else 0
        if n_categories == 0:
            return price, np.full(matrix.shape[0], -1, dtype=np.int64)
        columns = sp.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known),
                                                         self.item_category[known])),
                                shape=(matrix.shape[1], n_categories))
        per_category = (matrix @ columns).toarray()
        category = np.where(per_category.max(axis=1) > 0, per_category.argmax(axis=1), -1)
        return price, category.astype(np.int64)

    def _learn_weights(self, interactions: pd.DataFrame, items: pd.DataFrame,
                       users: pd.DataFrame | None) -> tuple[np.ndarray, float]:
        from sklearn.linear_model import LogisticRegression  # fit time only

        fallback = np.array([1.0, 0, 0, 0, 0]), 0.0  # the base order
        try:
            train, valid = validation_split(interactions, self.validation_fraction)
        except DataQualityError as error:
            log.warning("reranked: %s; the base model's order is kept", error)
            return fallback
        inner = self._base().fit(train, items, users)
        wanted = valid.groupby(valid[C.user_id].astype(str))[C.item_id].agg(
            lambda values: set(map(str, values)))
        known = [u for u in wanted.index if u in inner.user_index]
        inner_popularity = np.zeros(self.items.size)
        inner_columns = np.array([self.item_index[str(i)] for i in inner.items], dtype=np.int64)
        inner_popularity[inner_columns] = inner.popularity
        seen = inner.seen.tocoo()  # the inner train in the outer catalogue's columns
        outer_rows = np.array([self.user_index[str(u)] for u in inner.users], dtype=np.int64)
        inner_seen = sp.csr_matrix((seen.data, (outer_rows[seen.row], inner_columns[seen.col])),
                                   shape=self.seen.shape)
        profile = self._user_profile(inner_seen)
        if len(known) > VALIDATION_USERS:
            known = list(np.random.default_rng(0).choice(known, VALIDATION_USERS, replace=False))
        rows_x, rows_y = [], []
        for user in known:
            top, scores = inner.top_items(user, self.candidates)
            if top.size < 2:
                continue
            outer_items = np.array([self.item_index[str(i)] for i in top], dtype=np.int64)
            outer_user = self.user_index[user]
            rows_x.append(self._features(np.full(top.size, outer_user), outer_items, scores,
                                         inner_popularity, profile))
            rows_y.append(np.isin(top.astype(str), list(wanted[user])))
        if not rows_x or not np.concatenate(rows_y).any():
            log.warning("reranked: no validation user took a candidate; base order kept")
            return fallback
        x, y = np.vstack(rows_x), np.concatenate(rows_y)
        fitted = LogisticRegression(max_iter=500).fit(x, y)
        learned = fitted.coef_[0].astype(np.float64)
        # how much of the learned score to add to the base rank: chosen on the same
        # validation lists by NDCG@10 (0 keeps the base order when the features do not help)
        base_only = np.eye(len(FEATURES))[0]
        self.mix_validation = {
            mix: float(np.mean([_ndcg(xs @ (base_only + mix * learned), ys)
                                for xs, ys in zip(rows_x, rows_y)])) for mix in MIXES}
        self.chosen_mix = max(MIXES, key=lambda m: (self.mix_validation[m], -m))
        log.info("reranked(%s): validation NDCG@10 by mix %s", self.base,
                 {m: round(v, 4) for m, v in self.mix_validation.items()})
        return base_only + self.chosen_mix * learned, 0.0

    # ---- score -----------------------------------------------------------------------
    def _features(self, user_rows: np.ndarray, item_rows: np.ndarray, base_scores: np.ndarray,
                  popularity: np.ndarray, profile: tuple[np.ndarray, np.ndarray]
                  ) -> np.ndarray:
        """One row of FEATURES per (user, item) for one user's candidates; `popularity` and
        `profile` (usual price, preferred category, indexed by `user_rows`) as of the data
        learned from."""
        user_price, user_category = profile
        order = np.argsort(-base_scores, kind="stable")
        rank = np.empty(base_scores.size)
        rank[order] = np.arange(1, base_scores.size + 1)
        base = 1.0 / np.log2(rank + 1)  # the base model's rank, as NDCG discounts it
        # core/data/price_fit.py is shared with Feast's on-demand view and left untyped there
        ratio = price_to_user_avg_spend(  # type: ignore[no-untyped-call]
            self.item_price[item_rows], user_price[user_rows])
        scaled = np.log1p(np.clip(popularity, 0, None))
        top = scaled.max() if scaled.size else 0.0
        unknown = ~np.isfinite(ratio) | (ratio <= 0)
        fit = np.where(unknown, 0.0, -np.abs(np.log(np.where(unknown, 1.0, ratio))))
        same = (self.item_category[item_rows] == user_category[user_rows]) & \
            (self.item_category[item_rows] >= 0)
        x = np.column_stack([base, scaled[item_rows] / top if top > 0 else scaled[item_rows],
                             fit, unknown.astype(float), same.astype(float)])
        centred: np.ndarray = x - x.mean(axis=0)  # within the user's list: what ranks
        return centred

    def _score_live(self, user_rows: np.ndarray, live: LiveFeatures) -> np.ndarray:
        """The shopper's price level and preferred category as the online store has them
        now - the average price viewed in the last 10 minutes, the session's top category -
        in place of the ones learned from their history, where they are known."""
        price, category = self.user_price[user_rows].copy(), self.user_category[user_rows].copy()
        live_price = live.get("price")
        if live_price is not None and not isinstance(live_price, str) \
                and np.isfinite(live_price) and live_price > 0:
            price[:] = float(live_price)
        names = getattr(self, "category_names", None)
        if live.get("category") is not None and names is not None:
            found = np.flatnonzero(names == str(live["category"]))
            if found.size:
                category[:] = found[0]
        return self._score(user_rows, (price, category))

    def _score(self, user_rows: np.ndarray,
               profile: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """`profile`: usual price and preferred category per position of `user_rows`
        (default: the ones learned from the users' history)."""
        if profile is None:
            profile = (self.user_price[user_rows], self.user_category[user_rows])
        base = np.asarray(self.base_model._score(user_rows), dtype=np.float64)
        out = np.empty_like(base)
        n = min(self.candidates, base.shape[1])
        for position, row in enumerate(user_rows):
            scores = base[position].copy()
            seen = self.seen[row].indices
            ranked_scores = scores.copy()
            ranked_scores[seen] = -np.inf
            finite = np.isfinite(ranked_scores)
            low, high = (scores[finite].min(), scores[finite].max()) if finite.any() else (0, 1)
            span = high - low if high > low else 1.0
            out[position] = BELOW + (np.where(np.isfinite(scores), scores, low) - low) / span
            top = np.argpartition(-ranked_scores, n - 1)[:n] if n < scores.size \
                else np.arange(scores.size)
            top = top[np.isfinite(ranked_scores[top])]
            if top.size:
                x = self._features(np.full(top.size, position), top, scores[top],
                                   self.popularity, profile)
                out[position, top] = x @ self.weights + self.intercept
        return out

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        return self.base_model._item_similarity(rows)


def _numbers(frame: pd.DataFrame | None, name: str, default: float,
             size: int | None = None) -> pd.Series:
    """A numeric column (missing values `default`), or `default` throughout without it."""
    if frame is None or name not in frame.columns:
        return pd.Series(default, index=range(size or 0 if frame is None else len(frame)),
                         dtype=float)
    return pd.to_numeric(frame[name], errors="coerce").astype(float).fillna(default)


def _texts(frame: pd.DataFrame | None, name: str, size: int | None = None) -> pd.Series:
    """A text column ("\x00" where missing: matches no category)."""
    if frame is None or name not in frame.columns:
        return pd.Series("\x00", index=range(size or 0 if frame is None else len(frame)))
    return frame[name].astype("string").fillna("\x00").astype(str)


def _ndcg(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one candidate list ordered by `scores` (binary relevance)."""
    order = np.argsort(-scores, kind="stable")[:k]
    gains = relevant[order] / np.log2(np.arange(2, order.size + 2))
    ideal = (1 / np.log2(np.arange(2, min(k, int(relevant.sum())) + 2))).sum()
    return float(gains.sum() / ideal) if ideal > 0 else 0.0
