"""An inner validation split of the training interactions, for choosing hyperparameters
(hybrid alpha, the search) without touching the pipeline's holdout."""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.errors import DataQualityError

C = Columns


MODES = ("auto", "temporal", "random")


def validation_split(interactions: pd.DataFrame, fraction: float = 0.2, seed: int = 42,
                     mode: str = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inner train, validation): the last `fraction` of the time span when interactions
    carry distinct timestamps (the pipeline's temporal protocol), else a per-user random
    `fraction` (at least one) of each user's interactions (users with one stay in train).
    `mode` forces one of the two ('temporal' needs timestamps)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    timed = C.timestamp in interactions.columns and interactions[C.timestamp].nunique() > 1
    if mode == "temporal" and not timed:
        raise DataQualityError("validation split: mode 'temporal' needs distinct timestamps")
    if timed and mode != "random":
        cut = interactions[C.timestamp].quantile(1 - fraction)
        train = interactions[interactions[C.timestamp] < cut]
        valid = interactions[interactions[C.timestamp] >= cut]
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(interactions))
        shuffled = interactions.iloc[order]
        position = shuffled.groupby(C.user_id).cumcount().to_numpy()
        size = shuffled.groupby(C.user_id)[C.user_id].transform("size").to_numpy()
        to_valid = (position < np.maximum(1, np.round(size * fraction))) & (size > 1)
        train, valid = shuffled[~to_valid], shuffled[to_valid]
    if train.empty or valid.empty:
        raise DataQualityError(f"validation split: {len(train)} train / {len(valid)} validation"
                               f" rows from {len(interactions)}; need both non-empty")
    return train, valid
