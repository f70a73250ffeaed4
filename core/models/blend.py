"""Blends of top-N models: the weighted sum of their scores, each min-max scaled per user.

The weights come from a grid over the simplex (every combination of multiples of `step`
that sums to 1), chosen by NDCG@10 on an inner validation split of the training data
(`validation`: temporal when timestamps exist, or random per user, to match the protocol
the model is judged by), unless they are given. The parts are then refitted on all of it.
An item a part cannot score (a cold item, one EASE did not keep) gets that part's lowest
score. The default blend is EASE + LightFM-WARP + item-kNN: a linear item model, a factor
model and a neighbourhood model. On MovieLens-small (the tuning set) it beat the blend of
the simple baselines Dacrema et al. (2019) found hard to beat (EASE + RP3beta + item-kNN,
0.399 NDCG@10 with tuned parts); docs/models.md has its current figures.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError, DataQualityError
from recsys.core.models.base import USER_BATCH, PartSpec, Recommender
from recsys.core.models.collaborative import COLLABORATIVE, instantiate
from recsys.core.models.metrics import ranking_metrics
from recsys.core.models.validation import validation_split

C = Columns
log = logging.getLogger(__name__)
VALIDATION_USERS = 5000
"""Validation users sampled (seeded) for the weight choice: bounds its cost on big shops."""
VALIDATION_K = 10
DEFAULT_PARTS: tuple[PartSpec, ...] = (
    ("ease", {}), ("lightfm_warp", {}), ("item_knn", {}))


def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row's finite scores to [0, 1] (-inf stays -inf, constant rows become 0)."""
    finite = np.isfinite(scores)
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(finite, (scores - np.where(np.isfinite(low), low, 0.0)) / span, -np.inf)


def simplex_grid(parts: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of `parts` non-negative multiples of `step` summing to 1."""
    steps = round(1 / step)
    if steps < 1 or abs(steps * step - 1) > 1e-9:
        raise ConfigError(f"blend: step must divide 1 evenly, got {step}")
    return [tuple(c / steps for c in counts)
            for counts in itertools.product(range(steps + 1), repeat=parts)
            if sum(counts) == steps]


class BlendRecommender(Recommender):
    """Weighted sum of the per-user scaled scores of several zoo models (`parts`)."""

    name = "blend"
    chosen_weights: tuple[float, ...]
    """One weight per part: the given `weights` or the ones chosen on validation (set by
    fit)."""

    def __init__(self, parts: Sequence[PartSpec] | None = None,
                 weights: Sequence[float] | None = None,
                 step: float = 0.1, validation_fraction: float = 0.2,
                 validation: str = "auto", popularity_half_life_days: float = 7.0
                 ) -> None:
        super().__init__(popularity_half_life_days)
        parts = DEFAULT_PARTS if parts is None else parts
        self.parts = [(str(name), dict(params or {})) for name, params in parts]
        allowed = self._allowed_parts()
        if len(self.parts) < 2 or any(name not in allowed for name, _ in self.parts):
            raise ConfigError(f"{self.name}: needs two or more parts from {sorted(allowed)}, "
                              f"got {[name for name, _ in self.parts]}")
        if weights is not None and (len(weights) != len(self.parts) or min(weights) < 0
                                    or abs(sum(weights) - 1) > 1e-9):
            raise ConfigError(f"{self.name}: weights must be {len(self.parts)} non-negative "
                              f"numbers summing to 1, got {weights}")
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        simplex_grid(len(self.parts), step)  # refuses a step that does not divide 1
        self.step = float(step)
        self.validation_fraction, self.validation = validation_fraction, validation
        self.weight_validation: dict[tuple[float, ...], float] = {}
        """NDCG@10 on the inner validation split of every weight vector tried."""
        self.part_models: list[Recommender] = []

    @property
    def grid(self) -> list[tuple[float, ...]]:
        """The weight vectors tried on validation."""
        return simplex_grid(len(self.parts), self.step)

    def _allowed_parts(self) -> dict[str, type[Recommender]]:
        return COLLABORATIVE

    def _fit_parts(self, interactions: pd.DataFrame) -> list[Recommender]:
        items = None if self.item_meta is None else self.item_meta.reset_index(names=C.item_id)
        users = None if self.user_meta is None else self.user_meta.reset_index(names=C.user_id)
        half_life = {"popularity_half_life_days": self.popularity_half_life_days}
        return [instantiate(self._allowed_parts(), name, **{**half_life, **params}).fit(
            interactions, items, users) for name, params in self.parts]

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        self.chosen_weights = self.weights if self.weights is not None else \
            self._choose_weights(interactions)
        self.part_models = self._fit_parts(interactions)

    def _choose_weights(self, interactions: pd.DataFrame) -> tuple[float, ...]:
        equal = tuple(1 / len(self.parts) for _ in self.parts)
        try:
            train, valid = validation_split(interactions, self.validation_fraction,
                                            mode=self.validation)
        except DataQualityError as error:
            log.warning("%s: %s; equal weights", self.name, error)
            return equal
        parts = self._fit_parts(train)
        index = parts[0].user_index
        users = np.array([index[u] for u in pd.unique(valid[C.user_id].astype(str))
                          if u in index], dtype=np.int64)
        if users.size > VALIDATION_USERS:
            users = np.sort(np.random.default_rng(0).choice(users, VALIDATION_USERS,
                                                            replace=False))
            valid = valid[valid[C.user_id].astype(str).isin(set(parts[0].users[users]))]
        if users.size == 0:
            log.info("%s: no validation user is known to the inner models; equal weights",
                     self.name)
            return equal
        grid = self.grid
        frames: dict[tuple[float, ...], list[pd.DataFrame]] = {w: [] for w in grid}
        k = min(VALIDATION_K, parts[0].items.size)
        for lo in range(0, users.size, USER_BATCH):
            batch = users[lo:lo + USER_BATCH]
            inputs = part_scores(parts, batch)
            seen = parts[0].seen[batch]
            owner = np.repeat(np.arange(batch.size), np.diff(seen.indptr))
            for weights in grid:
                blended = combine(weights, inputs)
                blended[owner, seen.indices] = -np.inf
                frames[weights].append(parts[0]._top_k(parts[0].users[batch], blended, k,
                                                       False))
        key = f"ndcg_at_{VALIDATION_K}"
        self.weight_validation = {w: ranking_metrics(pd.concat(frames[w]), valid,
                                                     VALIDATION_K)[key] for w in grid}
        best = max(grid, key=lambda w: (self.weight_validation[w], w))
        log.info("%s(%s): weights %s chosen on validation (%s %.4f of %d tried)", self.name,
                 ",".join(name for name, _ in self.parts), best, key,
                 self.weight_validation[best], len(grid))
        return best

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return combine(self.chosen_weights, part_scores(self.part_models, user_rows))

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        return combine(self.chosen_weights, [
            lowest_where_unscored(minmax_rows(part._item_similarity(rows).astype(np.float64)))
            for part in self.part_models])


def lowest_where_unscored(scaled: np.ndarray) -> np.ndarray:
    """Scaled scores with the items a part could not score (-inf, NaN) at its lowest, 0."""
    return np.where(np.isfinite(scaled), scaled, 0.0)


def part_scores(parts: list[Recommender], rows: np.ndarray) -> list[np.ndarray]:
    """Every part's scores of the same users, scaled to [0, 1] per user."""
    return [lowest_where_unscored(minmax_rows(np.asarray(part._score(rows), dtype=np.float64)))
            for part in parts]


def combine(weights: Sequence[float], scaled: list[np.ndarray]) -> np.ndarray:
    out = np.zeros_like(scaled[0])
    for weight, scores in zip(weights, scaled):
        if weight:
            out += weight * scores
    return out
