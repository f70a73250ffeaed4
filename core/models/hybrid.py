"""Hybrid: alpha * collaborative + (1 - alpha) * content, scores min-max scaled per user.

A two-part blend (`blend.py`) whose alpha is chosen on the same inner validation split from
0, 0.2, ..., 1 unless it is given; new users get the popularity fallback like every model,
new items are reached through the content part.
"""
from __future__ import annotations

from recsys.core.errors import ConfigError
from recsys.core.models.base import Hyperparameters, Recommender
from recsys.core.models.blend import BlendRecommender, simplex_grid
from recsys.core.models.collaborative import COLLABORATIVE
from recsys.core.models.content import ContentRecommender

ALPHA_STEP = 0.2
ALPHAS = tuple(sorted(weights[0] for weights in simplex_grid(2, ALPHA_STEP)))


class HybridRecommender(BlendRecommender):
    """A collaborative model (`cf`, any zoo name) blended with the TF-IDF content model."""

    name = "hybrid"
    needs_item_features = True
    scores_cold_items = True
    search_space = {"cf": ["item_knn", "ease"]}

    def __init__(self, cf: str = "item_knn", cf_params: Hyperparameters | None = None,
                 alpha: float | None = None, validation_fraction: float = 0.2,
                 validation: str = "auto", popularity_half_life_days: float = 7.0
                 ) -> None:
        if cf not in COLLABORATIVE:
            raise ConfigError(f"hybrid: cf must be a collaborative model "
                              f"({', '.join(COLLABORATIVE)}), got {cf!r}")
        if alpha is not None and not 0 <= alpha <= 1:
            raise ConfigError(f"hybrid: alpha must be in [0, 1], got {alpha}")
        super().__init__(parts=[(cf, cf_params), (ContentRecommender.name, {})],
                         weights=None if alpha is None else [alpha, 1 - alpha],
                         step=ALPHA_STEP, validation_fraction=validation_fraction,
                         validation=validation,
                         popularity_half_life_days=popularity_half_life_days)
        self.cf, self.cf_params, self.alpha = cf, dict(cf_params or {}), alpha

    def _allowed_parts(self) -> dict[str, type[Recommender]]:
        return {**COLLABORATIVE, ContentRecommender.name: ContentRecommender}
