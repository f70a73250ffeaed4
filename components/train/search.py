"""A small hyperparameter search per model under a time budget.

Trials are drawn from the model's `search_space` (the configured parameters first, then
random combinations, seeded), each fitted on an inner split of the training data and scored
by NDCG@10 on its validation part. The best parameters are then refitted on all of it by
`train`; every trial becomes an MLflow child run of the model's run.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.core.models.metrics import ranking_metrics
from recsys.core.models.validation import validation_split
from recsys.core.models.zoo import MODELS, build_model

log = logging.getLogger(__name__)
SEARCH_METRIC = "ndcg_at_10"


class SearchConfig(BaseModel):
    """How much searching each model gets (0 trials = no search)."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(0, ge=0)
    """Most trials per model, the configured parameters included."""
    budget_seconds: float = Field(60.0, gt=0)
    """Wall-clock budget per model; no new trial starts after it."""
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    validation: Literal["auto", "temporal", "random"] = "auto"
    """The inner split: the protocol the model is judged by (`validation_split`)."""
    seed: int = 42


@dataclass
class Trial:
    params: dict
    metrics: dict
    seconds: float


@dataclass
class SearchResult:
    best_params: dict
    trials: list[Trial] = field(default_factory=list)


def candidate_params(name: str, base: dict, trials: int, seed: int) -> list[dict]:
    """The configured parameters, then distinct random picks from the search space."""
    space = MODELS[name].search_space
    if not space or trials <= 1:
        return [dict(base)]
    keys = sorted(space)
    grid = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    order = np.random.default_rng(seed).permutation(len(grid))
    out, seen = [dict(base)], {repr(sorted(base.items()))}
    for index in order:
        params = {**base, **grid[index]}
        key = repr(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            out.append(params)
        if len(out) >= trials:
            break
    return out


def search(name: str, base: dict, train: pd.DataFrame, config: SearchConfig,
           item_features: pd.DataFrame | None = None,
           user_features: pd.DataFrame | None = None) -> SearchResult:
    """Try parameter sets for model `name` until `trials` or the budget runs out."""
    inner, valid = validation_split(train, config.validation_fraction, config.seed,
                                    mode=config.validation)
    users = pd.unique(valid["user_id"].astype(str))
    started = time.perf_counter()
    trials: list[Trial] = []
    for params in candidate_params(name, base, config.trials, config.seed):
        if trials and time.perf_counter() - started > config.budget_seconds:
            log.info("search %s: budget of %.0fs used after %d trials", name,
                     config.budget_seconds, len(trials))
            break
        trial_start = time.perf_counter()
        model = build_model(name, **params).fit(inner, item_features, user_features)
        metrics = ranking_metrics(model.recommend(users, k=10), valid, 10)
        trials.append(Trial(params, metrics, time.perf_counter() - trial_start))
        log.info("search %s trial %d %s: %s=%.4f", name, len(trials), params, SEARCH_METRIC,
                 metrics[SEARCH_METRIC])
    best = max(trials, key=lambda t: t.metrics[SEARCH_METRIC])
    return SearchResult(best.params, trials)
