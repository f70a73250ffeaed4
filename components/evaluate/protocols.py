"""Offline evaluation protocols beyond the pipeline's temporal holdout.

- `stratified_split`: each user's (or item's) interactions split at random by `ratio`,
  ranked by a seeded uniform draw exactly as microsoft/recommenders'
  `python_stratified_split` does (a row goes to train when its rank / group size <= ratio),
  so numbers can stand next to their published tables.
- `ratings_kfold`: k-fold cross-validation of rating prediction with Surprise's own
  `KFold(random_state=...)` and RMSE/MAE, as Surprise's published table.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys.core.columns import Columns
from recsys.core.errors import ConfigError
from recsys.core.metrics import rating_errors

C = Columns


def stratified_split(interactions: pd.DataFrame, ratio: float = 0.75, filter_by: str = "item",
                     seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): per group (`filter_by` = user or item), a random `ratio` to train."""
    if filter_by not in ("user", "item"):
        raise ConfigError(f"filter_by must be 'user' or 'item', got {filter_by!r}")
    if not 0 < ratio < 1:
        raise ConfigError(f"ratio must be in (0, 1), got {ratio}")
    key = C.user_id if filter_by == "user" else C.item_id
    np.random.seed(seed)  # the legacy global generator, as the reference splitter uses
    draw = np.random.rand(len(interactions))
    data = interactions.assign(_random=draw).sort_values([key, "_random"])
    grouped = data.groupby(key)
    share = (grouped.cumcount() + 1) / grouped[key].transform("count")
    in_train = (share <= ratio).to_numpy()
    data = data.drop(columns="_random")
    return data[in_train], data[~in_train]


def ratings_kfold(ratings: pd.DataFrame, scale: tuple[float, float], make_algo, folds: int = 5,
                  random_state: int = 0) -> dict:
    """Mean RMSE/MAE (and their spread) over Surprise KFold(folds, random_state), with the
    mean fit and test seconds per fold. `make_algo()` returns a fresh Surprise algorithm."""
    from surprise import Dataset, Reader
    from surprise.model_selection import KFold

    data = Dataset.load_from_df(ratings[[C.user_id, C.item_id, C.rating]],
                                Reader(rating_scale=scale))
    rows = []
    for trainset, testset in KFold(n_splits=folds, random_state=random_state).split(data):
        algo = make_algo()
        started = time.perf_counter()
        algo.fit(trainset)
        fitted = time.perf_counter()
        predictions = algo.test(testset)
        tested = time.perf_counter()
        errors = rating_errors([p.est for p in predictions], [p.r_ui for p in predictions])
        rows.append({**errors, "fit_seconds": fitted - started,
                     "predict_seconds": tested - fitted})
    table = pd.DataFrame(rows)
    return {"rmse": float(table["rmse"].mean()), "rmse_std": float(table["rmse"].std()),
            "mae": float(table["mae"].mean()), "mae_std": float(table["mae"].std()),
            "fit_seconds": float(table["fit_seconds"].mean()),
            "predict_seconds": float(table["predict_seconds"].mean()), "folds": folds}
