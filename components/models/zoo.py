"""Every trainable model by name, with its default hyperparameters."""
from __future__ import annotations

from components.models.base import Recommender
from components.models.content import ContentRecommender
from components.models.ease import EASERecommender
from components.models.hybrid import HybridRecommender
from components.models.item_knn import ItemKNNRecommender
from components.models.lightfm_model import LightFMBPRRecommender, LightFMRecommender
from components.models.popularity import PopularityRecommender
from components.models.surprise_models import (
    KNNBaselineRecommender,
    KNNWithMeansRecommender,
    SVDRecommender,
)

MODELS: dict[str, type[Recommender]] = {model.name: model for model in (
    PopularityRecommender, ItemKNNRecommender, EASERecommender, SVDRecommender,
    KNNBaselineRecommender, KNNWithMeansRecommender, LightFMRecommender, LightFMBPRRecommender,
    ContentRecommender, HybridRecommender)}


def build_model(name: str, **params) -> Recommender:
    """Instantiate a model by name; an unknown name lists the known ones."""
    from components.common.errors import ConfigError

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    try:
        return MODELS[name](**params)
    except TypeError as error:
        raise ConfigError(f"model {name!r}: bad hyperparameters {params}: {error}") from error
