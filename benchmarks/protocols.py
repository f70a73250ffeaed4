"""Offline evaluation protocols beyond the pipeline's temporal holdout.

- `stratified_split`: each user's (or item's) interactions split at random by `ratio`,
  ranked by a seeded uniform draw exactly as microsoft/recommenders'
  `python_stratified_split` does (a row goes to train when its rank / group size <= ratio),
  so numbers can stand next to their published tables.
- `ratings_kfold`: k-fold cross-validation of rating prediction on the folds of Surprise's
  `KFold(random_state=...)` and RMSE/MAE, as Surprise's published table.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError
from recsys.core.models.metrics import rating_errors

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


def kfold_positions(n: int, folds: int = 5, random_state: int = 0
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold, exactly as Surprise's `KFold(folds, random_state,
    shuffle=True)` splits a data set of `n` ratings: one seeded shuffle, then consecutive
    test slices, the first `n % folds` of them one longer."""
    if not 2 <= folds <= n:
        raise ConfigError(f"folds must be in [2, {n}], got {folds}")
    indices = np.arange(n)
    np.random.RandomState(random_state).shuffle(indices)
    out, stop = [], 0
    for fold in range(folds):
        start = stop
        stop += n // folds + (1 if fold < n % folds else 0)
        out.append((np.concatenate([indices[:start], indices[stop:]]), indices[start:stop]))
    return out


def ratings_kfold(ratings: pd.DataFrame, make_model, folds: int = 5,
                  random_state: int = 0) -> dict:
    """Mean RMSE/MAE (and their spread) over the folds of Surprise's KFold(folds,
    random_state), with the mean fit and test seconds per fold. `make_model()` returns a
    fresh rating model (`RatingRecommender`): it is fitted on the fold's ratings in their
    input order and judged by its own `predict_ratings`, the estimates it serves."""
    frame = ratings[[C.user_id, C.item_id, C.rating]].assign(**{C.weight: 1.0})
    rows = []
    for train_rows, test_rows in kfold_positions(len(frame), folds, random_state):
        test = frame.iloc[test_rows]
        started = time.perf_counter()
        model = make_model().fit(frame.iloc[train_rows])
        fitted = time.perf_counter()
        predicted = model.predict_ratings(test[C.user_id].to_numpy(), test[C.item_id].to_numpy())
        tested = time.perf_counter()
        errors = rating_errors(predicted, test[C.rating].to_numpy(dtype=float))
        rows.append({**errors, "fit_seconds": fitted - started,
                     "predict_seconds": tested - fitted})
    table = pd.DataFrame(rows)
    return {"rmse": float(table["rmse"].mean()), "rmse_std": float(table["rmse"].std()),
            "mae": float(table["mae"].mean()), "mae_std": float(table["mae"].std()),
            "fit_seconds": float(table["fit_seconds"].mean()),
            "predict_seconds": float(table["predict_seconds"].mean()), "folds": folds}
