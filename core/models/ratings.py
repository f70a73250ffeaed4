"""Ratings for the rating-prediction models: explicit stars when every interaction has one,
otherwise implicit weights mapped onto a 1-5 scale."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys.core.columns import Columns
from recsys.core.errors import ConfigError, SchemaError

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
