"""The contract of the next-item session models (`session_knn.py`, `session_ensemble.py`):
fit on sessions of int item ids (1..n, 0 = padding), score prefixes against every item.

Repeat consumption is explicit: after a model's scores are scaled to [0, 1], an item
already in the prefix gets `repeat_boost` / age added (age 1 for the newest; negative = a
penalty). Item popularity x `popularity_weight` orders what the model does not reach.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from recsys.core.errors import ConfigError
from recsys.core.models.base import NotFittedError

POPULARITY_WEIGHT = 1e-6
REPEAT_BOOST = 5.0
"""The default boost of a repeat: what every kNN and rules model chose on RetailRocket's
validation split (docs/models.md); the bench's default tuning revisits it first."""
REPEAT_HORIZON = 50
"""Repeats older than this many clicks get no boost (long leave-one-out histories)."""


class SessionModel(ABC):
    """Fit on sessions of int item ids; score prefixes against every item."""

    name = "session"
    search_space: dict[str, Sequence[float | str]] = {}
    """Values the validation search tries (name -> candidates), one parameter at a time."""

    # set by fit, absent before it (`_check_fitted`)
    n_items: int
    """Items are 1..n_items (0 is padding)."""
    popularity: np.ndarray
    """Click counts per item id (0..n_items) over the largest count."""

    def __init__(self, repeat_boost: float = REPEAT_BOOST,
                 popularity_weight: float = POPULARITY_WEIGHT) -> None:
        self.repeat_boost = float(repeat_boost)
        self.popularity_weight = float(popularity_weight)

    def params(self) -> dict[str, object]:
        return {key: value for key, value in vars(self).items()
                if isinstance(value, (int, float)) and key != "n_items"}

    def fit(self, sessions: list[list[int]], n_items: int) -> "SessionModel":
        """Learn from `sessions` (oldest first) over items 1..`n_items`."""
        if n_items < 1 or not sessions:
            raise ConfigError(f"{self.name}: needs sessions and n_items >= 1")
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])
        if flat.min() < 1 or flat.max() > n_items:
            raise ConfigError(f"{self.name}: item ids must run from 1 to {n_items}")
        self.n_items = int(n_items)
        counts = np.bincount(flat, minlength=n_items + 1).astype(np.float32)
        self.popularity = counts / max(counts.max(), 1.0)
        self._fit(sessions)
        return self

    @abstractmethod
    def _fit(self, sessions: list[list[int]]) -> None:
        """Learn the model's own state from the checked sessions."""

    @abstractmethod
    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        """Scores of every item (column 0: padding) for each prefix, before repeats."""

    def _check_fitted(self) -> None:
        if getattr(self, "n_items", None) is None:
            raise NotFittedError(f"{self.name}: call fit() before scoring")

    def _known(self, prefixes: list[list[int]]) -> list[list[int]]:
        return [[i for i in p if 0 < i <= self.n_items] for p in prefixes]

    def scaled_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        """The model's own scores, each row divided by its largest (so in [0, 1] when the
        model's scores are >= 0): no popularity, no repeat boost. What an ensemble adds."""
        self._check_fitted()
        scores = self._raw_scores(self._known(prefixes)).astype(np.float32, copy=False)
        top = scores.max(axis=1, keepdims=True)
        scores /= np.where(top > 0, top, 1.0)
        return scores

    def score(self, prefixes: list[list[int]]) -> np.ndarray:
        """(len(prefixes), n_items + 1) scores; column 0 (padding) is -inf. Items outside
        1..n_items in a prefix are ignored."""
        scores = self.scaled_scores(prefixes)
        prefixes = self._known(prefixes)
        scores += self.popularity_weight * self.popularity
        if self.repeat_boost:
            for row, prefix in enumerate(prefixes):
                newest: dict[int, int] = {}  # an item's age is that of its last click
                for age, item in enumerate(reversed(prefix[-REPEAT_HORIZON:]), start=1):
                    newest.setdefault(item, age)
                for item, age in newest.items():
                    scores[row, item] += self.repeat_boost / age
        scores[:, 0] = -np.inf
        return scores
