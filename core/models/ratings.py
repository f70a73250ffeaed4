"""Ratings for the rating-prediction models: explicit stars when every interaction has one,
otherwise implicit weights mapped onto a 1-5 scale."""
from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError, SchemaError
from recsys.core.models.base import Recommender

C = Columns
log = logging.getLogger(__name__)
RATING_SOURCES = ("auto", "explicit", "implicit")
IMPLICIT_SCALE = (1.0, 5.0)


def implicit_ratings(weights: pd.Series) -> pd.Series:
    """Map non-negative interaction weights to 1..5: log-scaled against the 99th percentile,
    so one heavy buyer does not squash everyone else to the bottom of the scale."""
    logs = np.log1p(weights.to_numpy(dtype=float))
    top = np.quantile(logs, 0.99) if logs.size else 0.0
    if top <= 0:
        return pd.Series(np.full(logs.size, IMPLICIT_SCALE[1]), index=weights.index)
    low, high = IMPLICIT_SCALE
    return pd.Series(low + (high - low) * np.minimum(logs / top, 1.0), index=weights.index)


def rating_frame(interactions: pd.DataFrame, source: str, where: str
                 ) -> tuple[pd.DataFrame, tuple[float, float]]:
    """(user_id, item_id, rating) rows and the rating scale, from `source`:
    explicit (the `rating` column, which must be complete), implicit (mapped weights) or
    auto (explicit when every row has a rating, else implicit)."""
    if source not in RATING_SOURCES:
        raise ConfigError(f"{where}: rating_source must be one of {RATING_SOURCES}, got {source!r}")
    has_column = C.rating in interactions.columns
    missing = int(interactions[C.rating].isna().sum()) if has_column else len(interactions)
    if source == "explicit" and missing:
        raise SchemaError(f"{where}: rating_source='explicit' needs a rating on every "
                          f"interaction; column {C.rating!r} is missing for {missing} of "
                          f"{len(interactions)} rows")
    explicit = source == "explicit" or (source == "auto" and missing == 0)
    frame = interactions[[C.user_id, C.item_id]].astype(str)
    if explicit:
        ratings = interactions[C.rating].astype(float)
        scale = (float(ratings.min()), float(ratings.max()))
    else:
        ratings = implicit_ratings(interactions[C.weight])
        scale = IMPLICIT_SCALE
    log.debug("%s: %s ratings on the scale %s", where, "explicit" if explicit else "implicit",
              scale)
    out = frame.assign(**{C.rating: ratings.to_numpy()})
    out.attrs["explicit"] = explicit
    return out, scale


class RatingRecommender(Recommender):
    """A model that estimates ratings (Surprise's, and blends of them): `predict_ratings`
    for rating metrics, and the same estimates over the whole catalogue as top-N scores."""

    def __init__(self, rating_source: str = "auto", popularity_half_life_days: float = 7.0
                 ) -> None:
        super().__init__(popularity_half_life_days)
        self.rating_source = rating_source
        self.rating_scale: tuple[float, float] = (1.0, 5.0)
        self.explicit_ratings = False
        """True when trained on explicit stars (only then are RMSE/MAE meaningful)."""

    def predict_ratings(self, user_ids: Iterable[object], item_ids: Iterable[object]
                        ) -> npt.NDArray[np.float64]:
        """Rating estimates clipped to the rating scale, as Surprise's predict() reports them
        (unknown users/items get the baseline parts that exist)."""
        self._check_fitted()
        users = np.array([self.user_index.get(str(u), -1) for u in user_ids], dtype=np.int64)
        items = np.array([self.item_index.get(str(i), -1) for i in item_ids], dtype=np.int64)
        out = np.full(users.size, np.nan)
        for row in np.unique(users):
            mask = users == row
            known = mask & (items >= 0)
            out[known] = self._estimates(int(row), items[known])
            out[mask & (items < 0)] = self._unknown_item_estimate(int(row))
        low, high = self.rating_scale
        clipped: npt.NDArray[np.float64] = np.clip(out, low, high)
        return clipped

    @abstractmethod
    def _unknown_item_estimate(self, user_row: int) -> float:
        """The estimate for an item the model never saw (user_row -1: an unknown user)."""

    @abstractmethod
    def _estimates(self, user_row: int, item_rows: np.ndarray) -> np.ndarray:
        """Estimates of one known user (row >= 0) or an unknown one (-1) for known items."""

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        every_item = np.arange(self.items.size)
        return np.vstack([self._estimates(int(r), every_item) for r in user_rows])
