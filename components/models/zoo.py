"""Every trainable model by name, with its default hyperparameters."""
from __future__ import annotations

from components.models.base import Recommender
from components.models.item_knn import ItemKNNRecommender
from components.models.popularity import PopularityRecommender

MODELS: dict[str, type[Recommender]] = {
    PopularityRecommender.name: PopularityRecommender,
    ItemKNNRecommender.name: ItemKNNRecommender,
}


def build_model(name: str, **params) -> Recommender:
    """Instantiate a model by name; an unknown name lists the known ones."""
    from components.common.errors import ConfigError

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](**params)
