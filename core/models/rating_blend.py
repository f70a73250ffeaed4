"""A blend of rating models (linear stacking, as the Netflix Prize teams blended theirs).

The parts (SVD, SVD++, item- and user-based KNNBaseline by default) are fitted on an inner
split of the training ratings; a ridge regression of the held-out ratings on the parts'
estimates (clipped to the scale, plus an intercept) gives the blend's weights; the parts are
then refitted on all the ratings. The blend's estimate is that weighted sum, so it predicts
ratings and ranks the catalogue like any rating model.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError, DataQualityError
from recsys.core.models.base import PartSpec
from recsys.core.models.metrics import rating_errors
from recsys.core.models.ratings import RatingRecommender, rating_frame
from recsys.core.models.surprise_models import (
    KNNBaselineRecommender,
    KNNWithMeansRecommender,
    SVDppRecommender,
    SVDRecommender,
)
from recsys.core.models.validation import validation_split

C = Columns
log = logging.getLogger(__name__)
RATING_PARTS: dict[str, type[RatingRecommender]] = {model.name: model for model in (
    SVDRecommender, SVDppRecommender, KNNBaselineRecommender, KNNWithMeansRecommender)}
DEFAULT_PARTS: tuple[PartSpec, ...] = (("svd", {}), ("svdpp", {}),
                 ("knn_baseline", {"user_based": False, "k": 40}),
                 ("knn_baseline", {"user_based": True, "k": 40}))


class RatingBlendRecommender(RatingRecommender):
    """Weighted sum of rating models, the weights fitted on held-out ratings."""

    name = "rating_blend"
    search_space = {"l2": [0.1, 1.0, 10.0]}
    weights: np.ndarray
    """One weight per part (set by fit)."""

    def __init__(self, parts: Sequence[PartSpec] | None = None,
                 validation_fraction: float = 0.1,
                 l2: float = 1.0, seed: int = 0, rating_source: str = "auto",
                 popularity_half_life_days: float = 7.0) -> None:
        super().__init__(rating_source, popularity_half_life_days)
        parts = DEFAULT_PARTS if parts is None else parts
        self.parts = [(str(name), dict(params or {})) for name, params in parts]
        unknown = [name for name, _ in self.parts if name not in RATING_PARTS]
        if not self.parts or unknown:
            raise ConfigError(f"rating_blend: parts must name rating models from "
                              f"{sorted(RATING_PARTS)}, got {[n for n, _ in self.parts]}")
        if not 0 < validation_fraction < 1 or l2 < 0:
            raise ConfigError(f"rating_blend: validation_fraction must be in (0, 1) and l2 "
                              f">= 0, got {validation_fraction}, {l2}")
        self.validation_fraction, self.l2, self.seed = validation_fraction, float(l2), seed
        self.part_models: list[RatingRecommender] = []
        self.intercept = 0.0
        self.validation_rmse: dict[str, float] = {}
        """Held-out RMSE of every part and of the blend, on the inner split."""

    def _fit_parts(self, interactions: pd.DataFrame) -> list[RatingRecommender]:
        items = None if self.item_meta is None else self.item_meta.reset_index(names=C.item_id)
        users = None if self.user_meta is None else self.user_meta.reset_index(names=C.user_id)
        common = {"rating_source": self.rating_source,
                  "popularity_half_life_days": self.popularity_half_life_days}
        return [RATING_PARTS[name](**{**common, **params}).fit(interactions, items, users)
                for name, params in self.parts]

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        ratings, self.rating_scale = rating_frame(interactions, self.rating_source,
                                                  f"{self.name}.fit")
        self.explicit_ratings = bool(ratings.attrs.get("explicit"))
        self.weights, self.intercept = self._blend_weights(interactions, ratings)
        self.part_models = self._fit_parts(interactions)
        for part in self.part_models:  # same interactions and metadata: same catalogue
            if not np.array_equal(part.items, self.items) or \
                    not np.array_equal(part.users, self.users):
                raise DataQualityError("rating_blend: a part indexed a different catalogue")

    def _blend_weights(self, interactions: pd.DataFrame, ratings: pd.DataFrame
                       ) -> tuple[np.ndarray, float]:
        """Ridge weights of the parts' held-out estimates (equal weights when the data are
        too small to hold any out)."""
        equal = np.full(len(self.parts), 1.0 / len(self.parts))
        position = "_blend_row"
        try:
            inner, held = validation_split(interactions.assign(**{position: np.arange(len(
                interactions))}), self.validation_fraction, self.seed, mode="random")
        except DataQualityError as error:
            log.warning("rating_blend: %s; equal weights", error)
            return equal, 0.0
        parts = self._fit_parts(inner.drop(columns=position))
        truth = ratings[C.rating].to_numpy(dtype=float)[held[position].to_numpy()]
        users, items = held[C.user_id].astype(str).to_numpy(), held[C.item_id].astype(str)
        estimates = np.column_stack([p.predict_ratings(users, items.to_numpy())
                                     for p in parts])
        weights, intercept = ridge(estimates, truth, self.l2)
        blended = np.clip(estimates @ weights + intercept, *self.rating_scale)
        self.validation_rmse = {f"{name}_{i}": rating_errors(estimates[:, i], truth)["rmse"]
                                for i, (name, _) in enumerate(self.parts)}
        self.validation_rmse["blend"] = rating_errors(blended, truth)["rmse"]
        log.info("rating_blend: weights %s + %.3f on %d held-out ratings; RMSE %s",
                 np.round(weights, 3).tolist(), intercept, truth.size,
                 {k: round(v, 4) for k, v in self.validation_rmse.items()})
        return weights, intercept

    def _estimates(self, user_row: int, item_rows: np.ndarray) -> np.ndarray:
        low, high = self.rating_scale
        estimates: np.ndarray = self.intercept + sum(
            w * np.clip(part._estimates(user_row, item_rows), low, high)
            for w, part in zip(self.weights, self.part_models))
        return estimates

    def _unknown_item_estimate(self, user_row: int) -> float:
        low, high = self.rating_scale
        return float(self.intercept + sum(
            w * np.clip(part._unknown_item_estimate(user_row), low, high)
            for w, part in zip(self.weights, self.part_models)))

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        low, high = self.rating_scale
        scores: np.ndarray = self.intercept + sum(
            w * np.clip(part._score(user_rows), low, high)
            for w, part in zip(self.weights, self.part_models))
        return scores


def ridge(features: np.ndarray, target: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Least squares with an L2 penalty on the weights (not the intercept), centred."""
    mean_x, mean_y = features.mean(axis=0), float(target.mean())
    x, y = features - mean_x, target - mean_y
    weights = np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ y)
    return weights, mean_y - float(mean_x @ weights)
